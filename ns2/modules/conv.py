"""Masked 1-D convolution blocks (channel-first: ``x: [B, C, T]``, ``mask: [B, T]`` true on valid frames).

Every convolution here sees padded positions as zeros and every block zeroes its output there, so a
sequence convolved inside a padded batch gives exactly what it gives alone ('same' zero padding at its
end). Inside a block the mask is applied where it matters: before a convolution that reads
neighbouring frames (kernel > 1) and once on the output; pointwise steps between leave padded frames
unread, so results equal masking after every step.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ns2.modules.dropout import Dropout
from ns2.modules.masks import apply_mask

__all__ = ["ChannelLayerNorm", "MaskedConv1d", "ConvFFN", "ConvBlock"]


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a channel-first tensor. x: [B, C, T] -> [B, C, T].

    The transposes are views into torch's fused layer_norm; a dim-1 version without them
    (``var_mean`` + scale + shift) was measured 2.8× slower forward + backward at [2, 256, 400] on CPU.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class MaskedConv1d(nn.Conv1d):
    """A 'same'-length Conv1d (odd kernel) that zeroes padded inputs and outputs.

    x: [B, C_in, T], mask: [B, T] or None -> [B, C_out, T].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for a 'same' convolution, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size - 1) // 2, dilation=dilation, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return apply_mask(super().forward(apply_mask(x, mask)), mask)


class ConvFFN(nn.Module):
    """The convolutional feed-forward network of FastSpeech-style Transformer blocks.

    ``conv(k_1) -> ReLU -> dropout -> conv(k_2) -> ... ``: H -> filter -> ... -> H, the kernel sizes
    given by ``kernel_sizes`` (NaturalSpeech 2's encoders: ``(9, 1)``, i.e. a kernel-9 convolution to
    the 2048-wide filter and a pointwise one back: ``9·H·F + F·H`` weights).
    x: [B, H, T], mask: [B, T] -> [B, H, T].
    """

    def __init__(self, dim: int, filter_size: int, kernel_sizes: Sequence[int] = (9, 1), dropout: float = 0.0) -> None:
        super().__init__()
        if len(kernel_sizes) < 1:
            raise ValueError("kernel_sizes must hold at least one kernel size")
        widths = [dim] + [filter_size] * (len(kernel_sizes) - 1) + [dim]
        self.convs = nn.ModuleList(MaskedConv1d(widths[i], widths[i + 1], k) for i, k in enumerate(kernel_sizes))
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            if conv.kernel_size[0] > 1:  # reads neighbouring frames
                x = apply_mask(x, mask)
            x = nn.Conv1d.forward(conv, x)
            if i + 1 < len(self.convs):
                x = self.dropout(F.relu(x))
        return apply_mask(x, mask)


class ConvBlock(nn.Module):
    """``conv(k) -> ReLU -> LayerNorm -> dropout``, residual when the widths match.

    The convolution stack of NaturalSpeech 2's duration and pitch predictors.
    x: [B, C_in, T] zero at padding (as every ConvBlock's output is), mask: [B, T] -> [B, C_out, T]
    (zero at padding).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = MaskedConv1d(in_channels, out_channels, kernel_size)
        self.norm = ChannelLayerNorm(out_channels)
        self.dropout = Dropout(dropout)
        self.residual = in_channels == out_channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.dropout(self.norm(F.relu(nn.Conv1d.forward(self.conv, x))))
        return apply_mask(x + y if self.residual else y, mask)
