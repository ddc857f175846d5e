"""Losses of the codec's GAN training (DAC / Improved RVQGAN), as pure functions and one module.

Shapes: ``B`` batch, ``S`` samples. Discriminator outputs follow :mod:`ns2.codec.discriminators`:
``(logits: list[Tensor], features: list[list[Tensor]])``, one entry per sub-discriminator.

* :class:`MultiScaleMelLoss`: Σ over scales of L1(log10 mel(x̂), log10 mel(x)), mel magnitudes clamped
  at ``clamp_eps``; scale i has window/n_fft ``window_lengths[i]``, hop a quarter of it and
  ``n_mels[i]`` bands (DAC: 5..320 bands over 32..2048-sample windows). Built on
  :class:`ns2.modules.mel.MelSpectrogram` (whose natural log is rescaled to log10).
* Adversarial: least squares (DAC's; ``lsgan_*``) or hinge (``hinge_*``), summed over
  sub-discriminators, each a mean over its logits.
* :func:`feature_matching_loss`: Σ over sub-discriminators and layers of L1(f(x̂), f(x).detach()).
* :func:`si_sdr`: scale-invariant SDR in dB per item (a metric; higher is better).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ns2.modules.mel import MelSpectrogram

__all__ = [
    "ADVERSARIAL_LOSSES",
    "DAC_MEL_N_MELS",
    "DAC_MEL_WINDOWS",
    "MultiScaleMelLoss",
    "feature_matching_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "si_sdr",
]

DAC_MEL_N_MELS: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320)
DAC_MEL_WINDOWS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
_LN10 = math.log(10.0)


class MultiScaleMelLoss(nn.Module):
    """DAC's multi-scale mel loss. (x_hat, x): [B, 1, S] or [B, S] -> scalar.

    :meth:`distance` gives the same quantity per item ([B]), for metrics on unbatched lengths.
    """

    def __init__(
        self,
        sample_rate: int,
        n_mels: Sequence[int] = DAC_MEL_N_MELS,
        window_lengths: Sequence[int] = DAC_MEL_WINDOWS,
        clamp_eps: float = 1e-5,
        f_min: float = 0.0,
        f_max: float | None = None,
    ):
        super().__init__()
        if len(n_mels) != len(window_lengths) or not n_mels:
            raise ValueError(
                f"MultiScaleMelLoss: n_mels ({list(n_mels)}) and window_lengths ({list(window_lengths)}) "
                "must be non-empty and of equal length"
            )
        self.sample_rate = int(sample_rate)
        self.n_mels = [int(n) for n in n_mels]
        self.window_lengths = [int(w) for w in window_lengths]
        f_max = self.sample_rate / 2 if f_max is None else float(f_max)
        self.mels = nn.ModuleList(
            MelSpectrogram(
                sample_rate=self.sample_rate, n_fft=w, hop_length=max(1, w // 4), win_length=w,
                n_mels=n, f_min=f_min, f_max=f_max, clamp_min=clamp_eps,
            )
            for n, w in zip(self.n_mels, self.window_lengths)
        )

    def log10_mels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: [B, 1, S] or [B, S] -> one log10 mel spectrogram [B, n_mels_i, T_i] per scale."""
        return [mel(x) / _LN10 for mel in self.mels]

    def distance(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-item loss: Σ_scales mean |log10 mel(x̂) − log10 mel(x)|. -> [B]."""
        if x_hat.shape != x.shape:
            raise ValueError(
                f"MultiScaleMelLoss: x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must have the same shape"
            )
        total = x.new_zeros(x.shape[0], dtype=torch.float32)
        for mel in self.mels:
            total = total + (mel(x_hat) - mel(x)).abs().mean(dim=(1, 2)) / _LN10
        return total

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.distance(x_hat, x).mean()


# --- adversarial -------------------------------------------------------------------------------
Logits = Sequence[torch.Tensor]


def lsgan_discriminator_loss(real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
    """Σ_d mean((1 − D_d(x))²) + mean(D_d(x̂)²). Pass fake logits computed on detached audio."""
    return sum(torch.mean((1 - r.float()) ** 2) + torch.mean(f.float() ** 2) for r, f in zip(real_logits, fake_logits))


def lsgan_generator_loss(fake_logits: Logits) -> torch.Tensor:
    """Σ_d mean((1 − D_d(x̂))²)."""
    return sum(torch.mean((1 - f.float()) ** 2) for f in fake_logits)


def hinge_discriminator_loss(real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
    """Σ_d mean(relu(1 − D_d(x))) + mean(relu(1 + D_d(x̂)))."""
    return sum(
        torch.mean(F.relu(1 - r.float())) + torch.mean(F.relu(1 + f.float())) for r, f in zip(real_logits, fake_logits)
    )


def hinge_generator_loss(fake_logits: Logits) -> torch.Tensor:
    """Σ_d mean(−D_d(x̂))."""
    return sum(torch.mean(-f.float()) for f in fake_logits)


ADVERSARIAL_LOSSES: dict[str, tuple[Callable, Callable]] = {
    "lsgan": (lsgan_discriminator_loss, lsgan_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
}
"""name -> (discriminator loss, generator loss)."""


def feature_matching_loss(
    real_features: Sequence[Sequence[torch.Tensor]], fake_features: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Σ over sub-discriminators and layers of mean |f(x̂) − f(x)| (the real features are detached)."""
    if len(real_features) != len(fake_features):
        raise ValueError(
            f"feature_matching_loss: {len(real_features)} real and {len(fake_features)} fake feature lists"
        )
    total = None
    for real, fake in zip(real_features, fake_features):
        for r, f in zip(real, fake):
            term = F.l1_loss(f.float(), r.detach().float())
            total = term if total is None else total + term
    if total is None:
        raise ValueError("feature_matching_loss: no feature maps given")
    return total


# --- metrics -----------------------------------------------------------------------------------
def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (zero-mean). [B, ..., S] -> [B] (higher is better)."""
    if estimate.shape != reference.shape:
        raise ValueError(
            f"si_sdr: estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} must have the same shape"
        )
    est = estimate.reshape(estimate.shape[0], -1).double()
    ref = reference.reshape(reference.shape[0], -1).double()
    est = est - est.mean(dim=-1, keepdim=True)
    ref = ref - ref.mean(dim=-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    ratio = (target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps)
    return (10 * torch.log10(ratio)).float()
