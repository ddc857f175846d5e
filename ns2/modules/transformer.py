"""Transformer encoder with convolutional feed-forward networks (FastSpeech's "FFT block").

Channel-first at the module boundary (``x: [B, H, T]``, ``mask: [B, T]`` true on valid positions);
attention runs time-major inside. Pre-LayerNorm residual blocks with a final LayerNorm:

    x = x + Dropout(SelfAttention(LN(x)))        (padded keys masked)
    x = x + Dropout(ConvFFN(LN(x)))              (kernels e.g. (9, 1))

Parameters per block: ``4·H² + 4·H`` (attention) + ``Σ_i k_i·w_i·w_{i+1} + biases`` (ConvFFN) + ``4·H``
(two LayerNorms).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ns2.modules.attention import MultiHeadAttention
from ns2.modules.conv import ConvFFN
from ns2.modules.dropout import Dropout
from ns2.modules.masks import apply_mask

__all__ = ["sinusoidal_embedding", "FFTBlock", "TransformerEncoder"]


def sinusoidal_embedding(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) positions or times. x: [...] -> [..., dim].

    Half the features are sines, half cosines, of ``x · max_period^(-i / (dim/2))``.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal embedding width must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = x.float()[..., None] * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class FFTBlock(nn.Module):
    """One pre-LN Transformer block with a convolutional FFN. x: [B, H, T], mask: [B, T] -> [B, H, T]."""

    def __init__(self, dim: int, heads: int, filter_size: int, kernel_sizes: Sequence[int] = (9, 1), dropout: float = 0.0) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = ConvFFN(dim, filter_size, kernel_sizes, dropout)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.attn_norm(x.transpose(1, 2))
        x = apply_mask(x + self.dropout(self.attn(h, key_mask=mask)).transpose(1, 2), mask)
        h = self.ffn_norm(x.transpose(1, 2)).transpose(1, 2)
        return x + self.dropout(self.ffn(h, mask))  # both terms are zero at padding


class TransformerEncoder(nn.Module):
    """Sinusoidal positions + ``layers`` FFT blocks + a final LayerNorm.

    x: [B, H, T], mask: [B, T] (true on valid positions) -> [B, H, T], zero at padding.

    Args:
        dim: H. heads: attention heads. filter_size: the ConvFFN's inner width.
        kernel_sizes: the ConvFFN's kernels. dropout: on the input, attention and FFN.
    """

    def __init__(
        self,
        dim: int,
        layers: int,
        heads: int,
        filter_size: int,
        kernel_sizes: Sequence[int] = (9, 1),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.blocks = nn.ModuleList(FFTBlock(dim, heads, filter_size, kernel_sizes, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.dim:
            raise ValueError(f"encoder input must be [B, {self.dim}, T], got {tuple(x.shape)}")
        pos = sinusoidal_embedding(torch.arange(x.shape[-1], device=x.device), self.dim).to(x.dtype)
        x = apply_mask(self.dropout(x + pos.t()[None]), mask)
        for block in self.blocks:
            x = block(x, mask)
        return apply_mask(self.norm(x.transpose(1, 2)).transpose(1, 2), mask)
