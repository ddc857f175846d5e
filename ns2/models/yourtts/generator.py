"""The waveform decoder of VITS / YourTTS: the HiFi-GAN V1 generator from latent frames to samples.

VITS (Kim et al. 2021, §2.5.4) decodes the latent ``z`` (a random window of it in training) with the HiFi-GAN
generator (Kong et al. 2020): a 7-tap input convolution, transposed convolutions upsampling by
``upsample_rates`` (their product is the hop length: one latent frame -> ``hop`` samples), after each a
multi-receptive-field fusion (the mean of ``len(resblock_kernel_sizes)`` ResBlock1s with dilations
``resblock_dilation_sizes``), and a 7-tap output convolution with tanh. YourTTS (Casanova et al. 2022, §2)
adds the speaker embedding after the input convolution (``cond_layer``, 1x1)::

    o = ConvPre(z) + CondLayer(g)
    for each rate u:  o = mean_j ResBlock1_j(ConvT_u(LReLU_0.1(o)))
    y = tanh(ConvPost(LReLU_0.01(o)))                         (ConvPost without bias, as in VITS)

ResBlock1: ``x = x + Conv_d=1(LReLU(Conv_d(LReLU(x))))`` for each dilation ``d``. The upsampling and ResBlock
convolutions are weight-normalised (``torch.nn.utils.parametrizations.weight_norm``); ``conv_pre`` /
``conv_post`` are not (VITS's reference; Coqui builds them with weight norm and removes it).
Shapes: ``z: [B, C, T]``, ``g: [B, gin, 1]`` -> ``y: [B, 1, T · hop]``. An optional frame mask ``[B, 1, T]`` zeroes
padded positions before each convolution (upsampled with the signal), so the frames past an item's end in a
padded batch read as the zeros they would be alone; without it (or with no padding) this is HiFi-GAN exactly.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["ResBlock1", "HifiganGenerator"]

LRELU_SLOPE = 0.1


def _init(conv: nn.Module) -> nn.Module:
    """HiFi-GAN's init N(0, 0.01) on the raw weight, then weight norm (whose g starts at the weight's norm)."""
    nn.init.normal_(conv.weight, 0.0, 0.01)
    return weight_norm(conv)


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class ResBlock1(nn.Module):
    """HiFi-GAN V1 residual block. x: [B, C, T], mask: [B, 1, T] or None -> [B, C, T]."""

    def __init__(self, channels: int, kernel_size: int = 3, dilations: Sequence[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            _init(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            _init(nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2)) for _ in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(_masked(F.leaky_relu(x, LRELU_SLOPE), mask))
            x = x + c2(_masked(F.leaky_relu(xt, LRELU_SLOPE), mask))
        return x


class HifiganGenerator(nn.Module):
    """z [B, in, T], g [B, gin, 1] or None -> waveform [B, 1, T · prod(upsample_rates)] in [-1, 1].

    Each upsampling layer has channels ``upsample_initial_channel / 2^(i+1)`` and padding ``(k - u) / 2``;
    ``k - u`` must be even so that every layer multiplies the length exactly by ``u``.
    """

    def __init__(self, in_channels: int, upsample_rates: Sequence[int] = (8, 8, 2, 2),
                 upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4), upsample_initial_channel: int = 512,
                 resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
                 resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
                 gin_channels: int = 0, hop_length: int | None = None) -> None:
        super().__init__()
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError(f"{len(upsample_rates)} upsample rates for {len(upsample_kernel_sizes)} kernel sizes")
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes must have the same length")
        for u, k in zip(upsample_rates, upsample_kernel_sizes):
            if k < u or (k - u) % 2:
                raise ValueError(f"upsample kernel {k} for rate {u}: need k >= u and k - u even for an exact length")
        self.hop_length = math.prod(upsample_rates)
        if hop_length is not None and hop_length != self.hop_length:
            raise ValueError(f"the upsample rates {list(upsample_rates)} multiply to {self.hop_length}, "
                             f"not the hop length {hop_length}")
        self.num_kernels = len(resblock_kernel_sizes)
        self.upsample_rates = tuple(upsample_rates)
        self.conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            ch = upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(_init(nn.ConvTranspose1d(upsample_initial_channel // 2**i, ch, k, u, padding=(k - u) // 2)))
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(ch, rk, rd))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3, bias=False)
        if gin_channels:
            self.cond_layer = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, z: torch.Tensor, g: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` [B, 1, T] (frames), optional: zero padded positions before every convolution, at each stage's
        rate, so an item of a padded batch decodes exactly as it decodes alone. None is plain HiFi-GAN."""
        o = self.conv_pre(z if mask is None else z * mask)
        if g is not None and hasattr(self, "cond_layer"):
            o = o + self.cond_layer(g)
        for i, (up, rate) in enumerate(zip(self.ups, self.upsample_rates)):
            o = up(_masked(F.leaky_relu(o, LRELU_SLOPE), mask))
            mask = None if mask is None else mask.repeat_interleave(rate, dim=2)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            o = sum(block(o, mask) for block in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(_masked(F.leaky_relu(o), mask)))
