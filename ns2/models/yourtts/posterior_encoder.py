"""The posterior encoder of VITS / YourTTS: the linear spectrogram to the latent ``z ~ q(z | x_lin)``.

VITS (Kim et al. 2021, §2.1 and §2.5.2) encodes the *linear* magnitude spectrogram (``n_fft / 2 + 1`` bins,
not mel) with a 1x1 convolution, 16 WaveNet layers (:class:`~ns2.models.yourtts.wn.WN`, kernel 5, dilation 1)
and a 1x1 projection to a diagonal Gaussian, and samples with the reparameterisation trick (eq. 2-3)::

    m_q, logs_q = Proj(WN(Pre(x_lin), g))          z = m_q + ε · exp(logs_q),  ε ~ N(0, I)

YourTTS (Casanova et al. 2022, §2) conditions the WaveNet on the speaker embedding ``g`` (global, [B, gin, 1]).
Shapes: ``spec: [B, F, T]``, ``lengths: [B]`` frames -> ``z, m_q, logs_q: [B, C, T]``, ``mask: [B, 1, T]``; every
output is zero on padded frames.
"""
from __future__ import annotations

import torch
from torch import nn

from ns2.models.yourtts.wn import WN
from ns2.modules.masks import sequence_mask

__all__ = ["PosteriorEncoder"]


class PosteriorEncoder(nn.Module):
    """spec [B, in, T], lengths [B], g [B, gin, 1] or None -> (z, m_q, logs_q [B, out, T], mask [B, 1, T]).

    ``noise_scale`` scales ε (1.0 is VITS's sampling; 0.0 returns the mean), ``generator`` seeds it.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, kernel_size: int = 5,
                 dilation_rate: int = 1, num_layers: int = 16, gin_channels: int = 0) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, num_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, 2 * out_channels, 1)

    def forward(self, spec: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None = None,
                noise_scale: float = 1.0, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = sequence_mask(lengths, spec.shape[2])[:, None, :].to(spec.dtype)
        h = self.enc(self.pre(spec) * mask, mask, g=g)
        m, logs = (self.proj(h) * mask).split(self.out_channels, dim=1)
        z = m
        if noise_scale:
            eps = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
            z = m + eps * torch.exp(logs) * noise_scale
        return z * mask, m, logs, mask
