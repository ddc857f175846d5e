"""The GAN discriminators of DAC (Improved RVQGAN): multi-period and multi-resolution complex STFT.

Every discriminator maps audio ``[B, 1, S]`` to ``(logits, features)``: ``logits`` the last layer's
output, ``features`` the activations of the layers before it (for the feature-matching loss). The
combined :class:`Discriminator` returns one such pair per sub-discriminator, as two lists::

    logits, features = disc(wav)      # logits: list[Tensor]; features: list[list[Tensor]]

* :class:`PeriodDiscriminator` (HiFi-GAN's MPD): the waveform folded into ``[B, 1, S/p, p]`` (reflect
  padded to a multiple of the period ``p``), five strided (5, 1) convs, a (3, 1) conv to one channel.
* :class:`ComplexSTFTDiscriminator` (DAC's MRD): the complex STFT (real and imaginary parts as two
  channels, ``[B, 2, frames, bins]``, hop = ``window_length * hop_factor``) split into frequency bands;
  each band has its own stack of 2-D convs (strided along frequency); the band outputs are joined along
  frequency and a last conv gives the logits.
* :class:`Discriminator`: DAC's preprocessing (DC removed, peak-normalised to 0.8), then MPD at
  ``periods`` (2, 3, 5, 7, 11) and MRD at ``fft_sizes`` (2048, 1024, 512), both with DAC's sizes by
  default; smaller channel counts give the CPU-sized variant used in tests.

Pure modules: no losses here (see :mod:`ns2.losses.codec`). All convs are weight-normalised and
followed by LeakyReLU(0.1), except the last. The STFT runs in float32 even under autocast.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = [
    "BANDS",
    "ComplexSTFTDiscriminator",
    "Discriminator",
    "DiscriminatorOutput",
    "MultiPeriodDiscriminator",
    "MultiResolutionSTFTDiscriminator",
    "PeriodDiscriminator",
]

BANDS: tuple[tuple[float, float], ...] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
"""DAC's frequency bands, as fractions of the STFT's bins."""

DiscriminatorOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]
"""``(logits, features)``: one logits tensor and one list of feature maps per sub-discriminator."""


def _conv2d(c_in: int, c_out: int, kernel, stride=1, padding=0, act: bool = True) -> nn.Module:
    conv = weight_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding))
    return nn.Sequential(conv, nn.LeakyReLU(0.1)) if act else conv


def _as_wav(x: torch.Tensor, who: str) -> torch.Tensor:
    if x.dim() == 2:
        x = x[:, None]
    if x.dim() != 3 or x.shape[1] != 1:
        raise ValueError(f"{who}: audio must be shaped [B, 1, S] or [B, S], got {tuple(x.shape)}")
    return x


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN / DAC period discriminator. x: [B, 1, S] -> (logits [B, 1, S'/p, p], features).

    Args:
        period: p, the fold of the waveform.
        channels: output channels of the five convs (DAC: 32, 128, 512, 1024, 1024); the first four
            have stride 3 along time.
    """

    def __init__(self, period: int, channels: Sequence[int] = (32, 128, 512, 1024, 1024)):
        super().__init__()
        if int(period) < 1:
            raise ValueError(f"PeriodDiscriminator: period must be >= 1, got {period}")
        if len(channels) < 1:
            raise ValueError("PeriodDiscriminator: channels must name at least one conv")
        self.period = int(period)
        convs, c_in = [], 1
        for i, c in enumerate(channels):
            stride = (3, 1) if i < len(channels) - 1 else 1
            convs.append(_conv2d(c_in, int(c), (5, 1), stride, padding=(2, 0)))
            c_in = int(c)
        self.convs = nn.ModuleList(convs)
        self.conv_post = _conv2d(c_in, 1, (3, 1), padding=(1, 0), act=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _as_wav(x, "PeriodDiscriminator")
        pad = (-x.shape[-1]) % self.period
        if pad:
            x = F.pad(x, (0, pad), mode="reflect" if pad < x.shape[-1] else "constant")
        b, c, t = x.shape
        x = x.view(b, c, t // self.period, self.period)  # [B, 1, S/p, p]
        features = []
        for conv in self.convs:
            x = conv(x)
            features.append(x)
        return self.conv_post(x), features


class ComplexSTFTDiscriminator(nn.Module):
    """DAC's multi-band complex spectrogram discriminator at one resolution.

    x: [B, 1, S] -> (logits [B, 1, frames, bins'], features). The STFT uses a Hann window of
    ``window_length`` samples, hop ``int(window_length * hop_factor)``, centred frames.

    Args:
        window_length: STFT window (= n_fft).
        hop_factor: hop as a fraction of the window (DAC: 0.25).
        bands: frequency bands as fractions of the ``window_length // 2 + 1`` bins.
        channels: channels of every conv (DAC: 32).
    """

    def __init__(
        self,
        window_length: int,
        hop_factor: float = 0.25,
        bands: Sequence[Sequence[float]] = BANDS,
        channels: int = 32,
    ):
        super().__init__()
        self.window_length = int(window_length)
        self.hop_length = max(1, int(self.window_length * hop_factor))
        n_bins = self.window_length // 2 + 1
        self.bands = [(int(lo * n_bins), int(hi * n_bins)) for lo, hi in bands]
        empty = [b for b in self.bands if b[1] <= b[0]]
        if empty:
            raise ValueError(
                f"ComplexSTFTDiscriminator: window_length {window_length} leaves empty bands {empty} "
                f"of {n_bins} bins; use a longer window or fewer bands"
            )
        ch = int(channels)

        def stack() -> nn.ModuleList:
            return nn.ModuleList(
                [
                    _conv2d(2, ch, (3, 9), (1, 1), padding=(1, 4)),
                    _conv2d(ch, ch, (3, 9), (1, 2), padding=(1, 4)),
                    _conv2d(ch, ch, (3, 9), (1, 2), padding=(1, 4)),
                    _conv2d(ch, ch, (3, 9), (1, 2), padding=(1, 4)),
                    _conv2d(ch, ch, (3, 3), (1, 1), padding=(1, 1)),
                ]
            )

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = _conv2d(ch, 1, (3, 3), (1, 1), padding=(1, 1), act=False)
        self.register_buffer("window", torch.hann_window(self.window_length), persistent=False)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 1, S] -> [B, 2, frames, bins] (real, imaginary)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = torch.stft(
                x[:, 0].float(), n_fft=self.window_length, hop_length=self.hop_length,
                window=self.window.to(x.device), center=True, return_complex=True,
            )  # [B, bins, frames]
        return torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, frames, bins]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _as_wav(x, "ComplexSTFTDiscriminator")
        spec = self.spectrogram(x)
        features, outs = [], []
        for (lo, hi), convs in zip(self.bands, self.band_convs):
            band = spec[..., lo:hi]
            for conv in convs:
                band = conv(band)
                features.append(band)
            outs.append(band)
        return self.conv_post(torch.cat(outs, dim=-1)), features


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`PeriodDiscriminator` per period. x: [B, 1, S] -> (logits, features), one per period."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), channels: Sequence[int] = (32, 128, 512, 1024, 1024)):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        outs = [d(x) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class MultiResolutionSTFTDiscriminator(nn.Module):
    """One :class:`ComplexSTFTDiscriminator` per window length. x: [B, 1, S] -> (logits, features)."""

    def __init__(
        self,
        fft_sizes: Sequence[int] = (2048, 1024, 512),
        bands: Sequence[Sequence[float]] = BANDS,
        channels: int = 32,
        hop_factor: float = 0.25,
    ):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ComplexSTFTDiscriminator(w, hop_factor, bands, channels) for w in fft_sizes
        )

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        outs = [d(x) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class Discriminator(nn.Module):
    """DAC's discriminator: multi-period + multi-resolution complex STFT, on preprocessed audio.

    x: [B, 1, S] (or [B, S]) -> (logits, features): ``len(periods) + len(fft_sizes)`` entries each.

    Args:
        periods: MPD periods (DAC: 2, 3, 5, 7, 11); empty to leave MPD out.
        fft_sizes: MRD window lengths (DAC: 2048, 1024, 512); empty to leave MRD out.
        bands: MRD frequency bands (fractions of the bins).
        period_channels: MPD conv channels (DAC: 32, 128, 512, 1024, 1024).
        stft_channels: MRD conv channels (DAC: 32).
        normalize: DAC's preprocessing (remove DC, peak-normalise to 0.8) before every sub-discriminator.
    """

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        fft_sizes: Sequence[int] = (2048, 1024, 512),
        bands: Sequence[Sequence[float]] = BANDS,
        period_channels: Sequence[int] = (32, 128, 512, 1024, 1024),
        stft_channels: int = 32,
        normalize: bool = True,
    ):
        super().__init__()
        if not periods and not fft_sizes:
            raise ValueError("Discriminator: give at least one period or one fft size")
        self.mpd = MultiPeriodDiscriminator(periods, period_channels) if periods else None
        self.mrd = MultiResolutionSTFTDiscriminator(fft_sizes, bands, stft_channels) if fft_sizes else None
        self.normalize = bool(normalize)

    @property
    def num_discriminators(self) -> int:
        return sum(len(m.discriminators) for m in (self.mpd, self.mrd) if m is not None)

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """Remove the DC offset and peak-normalise to 0.8, per item. [B, 1, S] -> [B, 1, S]."""
        x = x - x.mean(dim=-1, keepdim=True)
        return 0.8 * x / (x.abs().amax(dim=-1, keepdim=True) + 1e-9)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        x = _as_wav(x, "Discriminator")
        if self.normalize:
            x = self.preprocess(x)
        logits: list[torch.Tensor] = []
        features: list[list[torch.Tensor]] = []
        for m in (self.mpd, self.mrd):
            if m is not None:
                lg, ft = m(x)
                logits += lg
                features += ft
        return logits, features
