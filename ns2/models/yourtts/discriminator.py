"""The VITS / YourTTS discriminator: one HiFi-GAN scale discriminator plus multi-period discriminators.

VITS (and YourTTS, which keeps it unchanged) discriminates the waveform with

* :class:`ScaleDiscriminator`: HiFi-GAN's ``DiscriminatorS`` on the raw waveform (no average-pooled
  scales: VITS uses the single full-rate one). Six weight-normalised 1-D convs, four of them strided by 4
  and grouped, each followed by LeakyReLU(0.1), then a (3,) conv to one channel. VITS's sizes: channels
  16, 64, 256, 1024, 1024, 1024; kernels 15, 41, 41, 41, 41, 5; strides 1, 4, 4, 4, 4, 1; groups 1, 4,
  16, 64, 256, 1.
* :class:`PeriodDiscriminator`: HiFi-GAN's period discriminators at periods (2, 3, 5, 7, 11): the waveform
  reflect-padded to a multiple of ``p`` and folded to ``[B, 1, S/p, p]``, five (5, 1) convs strided 3 along
  time (channels 32, 128, 512, 1024, 1024; the last one unstrided), a (3, 1) conv to one channel.

  This is the network of :class:`ns2.codec.discriminators.PeriodDiscriminator`, with the same state-dict
  layout (``convs.i.0.parametrizations.weight.*``, ``conv_post.*``) and the same output, so weights move
  between the two unchanged (tests/models/test_yourtts_parts.py checks it). It is restated here rather
  than imported because ``ns2.models`` and ``ns2.codec`` are one layer of the package graph, and packages
  of one layer do not import each other (tests/test_layering.py).

:class:`VITSDiscriminator` runs them all on the same waveform and returns, like
:class:`ns2.codec.discriminators.Discriminator`, ``(logits, features)``: one logits tensor and one list of
feature maps per sub-discriminator (scale first, then the periods in order). Unlike DAC's discriminator
there is no preprocessing (no DC removal, no peak normalisation): VITS feeds the waveform as is.

Conventions shared with :mod:`ns2.codec.discriminators` (so :mod:`ns2.losses.codec`'s LSGAN and
feature-matching losses apply as they are): logits are not flattened (``[B, 1, S']`` for the
scale discriminator, ``[B, 1, S'/p, p]`` for a period one) and ``features`` holds the activations of the
layers *before* the last conv. (Coqui's implementation also appends the last conv's output to the
feature list; a feature-matching loss over these lists therefore has one term fewer per
sub-discriminator than Coqui's.)

Pure modules: losses live in :mod:`ns2.losses`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["DiscriminatorOutput", "PeriodDiscriminator", "ScaleDiscriminator", "VITSDiscriminator"]

DiscriminatorOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]
"""``(logits, features)``: one logits tensor and one list of feature maps per sub-discriminator."""

SCALE_CHANNELS = (16, 64, 256, 1024, 1024, 1024)
SCALE_KERNELS = (15, 41, 41, 41, 41, 5)
SCALE_STRIDES = (1, 4, 4, 4, 4, 1)
SCALE_GROUPS = (1, 4, 16, 64, 256, 1)
PERIODS = (2, 3, 5, 7, 11)
PERIOD_CHANNELS = (32, 128, 512, 1024, 1024)


def _as_wav(x: torch.Tensor, who: str) -> torch.Tensor:
    if x.dim() == 2:
        x = x[:, None]
    if x.dim() != 3 or x.shape[1] != 1:
        raise ValueError(f"{who}: audio must be shaped [B, 1, S] or [B, S], got {tuple(x.shape)}")
    return x


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN period discriminator. x: [B, 1, S] -> (logits [B, 1, S'/p, p], features).

    Args:
        period: p, the fold of the waveform.
        channels: output channels of the convs (HiFi-GAN / VITS: 32, 128, 512, 1024, 1024); all but the last
            have stride 3 along time.
    """

    def __init__(self, period: int, channels: Sequence[int] = PERIOD_CHANNELS):
        super().__init__()
        if int(period) < 1:
            raise ValueError(f"PeriodDiscriminator: period must be >= 1, got {period}")
        if len(channels) < 1:
            raise ValueError("PeriodDiscriminator: channels must name at least one conv")
        self.period = int(period)
        convs, c_in = [], 1
        for i, c in enumerate(channels):
            stride = (3, 1) if i < len(channels) - 1 else 1
            convs.append(nn.Sequential(weight_norm(nn.Conv2d(c_in, int(c), (5, 1), stride, padding=(2, 0))),
                                       nn.LeakyReLU(0.1)))
            c_in = int(c)
        self.convs = nn.ModuleList(convs)
        self.conv_post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), 1, padding=(1, 0)))

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


class ScaleDiscriminator(nn.Module):
    """HiFi-GAN scale discriminator (VITS's ``DiscriminatorS``). x: [B, 1, S] -> (logits [B, 1, S'], features).

    Args:
        channels: output channels of the convs before the last one.
        kernel_sizes, strides, groups: per conv, same length as ``channels``; every conv is padded by
            ``kernel // 2``. ``groups[i]`` must divide both its input and output channels.
        post_kernel: kernel of the last conv (to one channel).
    """

    def __init__(
        self,
        channels: Sequence[int] = SCALE_CHANNELS,
        kernel_sizes: Sequence[int] = SCALE_KERNELS,
        strides: Sequence[int] = SCALE_STRIDES,
        groups: Sequence[int] = SCALE_GROUPS,
        post_kernel: int = 3,
    ):
        super().__init__()
        n = len(channels)
        if n < 1:
            raise ValueError("ScaleDiscriminator: channels must name at least one conv")
        if not (len(kernel_sizes) == len(strides) == len(groups) == n):
            raise ValueError(
                f"ScaleDiscriminator: channels, kernel_sizes, strides and groups must have the same length, got "
                f"{n}, {len(kernel_sizes)}, {len(strides)}, {len(groups)}"
            )
        convs, c_in = [], 1
        for i, (c, k, s, g) in enumerate(zip(channels, kernel_sizes, strides, groups)):
            c, k, s, g = int(c), int(k), int(s), int(g)
            if g < 1 or c_in % g or c % g:
                raise ValueError(
                    f"ScaleDiscriminator: conv {i} has groups={g}, which must divide its {c_in} input and {c} output channels"
                )
            convs.append(weight_norm(nn.Conv1d(c_in, c, k, s, padding=k // 2, groups=g)))
            c_in = c
        self.convs = nn.ModuleList(convs)
        self.conv_post = weight_norm(nn.Conv1d(c_in, 1, int(post_kernel), 1, padding=int(post_kernel) // 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _as_wav(x, "ScaleDiscriminator")
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        return self.conv_post(x), features


class VITSDiscriminator(nn.Module):
    """VITS's discriminator: ``nets[0]`` a :class:`ScaleDiscriminator`, ``nets[1:]`` one
    :class:`PeriodDiscriminator` per period.

    x: [B, 1, S] or [B, S] -> ``(logits, features)`` with ``1 + len(periods)`` entries each.

    Args:
        periods: the periods of the period discriminators (VITS: 2, 3, 5, 7, 11).
        period_channels: channels of the period discriminators' five convs (VITS: 32, 128, 512, 1024, 1024).
        scale_channels, scale_kernel_sizes, scale_strides, scale_groups: the scale discriminator's convs
            (see :class:`ScaleDiscriminator`; VITS's sizes by default).
    """

    def __init__(
        self,
        periods: Sequence[int] = PERIODS,
        period_channels: Sequence[int] = PERIOD_CHANNELS,
        scale_channels: Sequence[int] = SCALE_CHANNELS,
        scale_kernel_sizes: Sequence[int] = SCALE_KERNELS,
        scale_strides: Sequence[int] = SCALE_STRIDES,
        scale_groups: Sequence[int] = SCALE_GROUPS,
    ):
        super().__init__()
        self.periods = tuple(int(p) for p in periods)
        nets: list[nn.Module] = [ScaleDiscriminator(scale_channels, scale_kernel_sizes, scale_strides, scale_groups)]
        nets += [PeriodDiscriminator(p, period_channels) for p in self.periods]
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        x = _as_wav(x, "VITSDiscriminator")
        outs = [net(x) for net in self.nets]
        return [o[0] for o in outs], [o[1] for o in outs]
