"""The Transformer layer VALL-E's two decoders share, with an optional stage-conditioned AdaLN and a
key/value cache for step-by-step decoding.

Time-major throughout (``x: [B, S, H]``). Pre-LayerNorm residual blocks::

    x = x + Dropout(SelfAttention(N1(x, stage)))     (boolean attention mask [B, 1, S, Sk])
    x = x + Dropout(FFN(N2(x, stage)))               (H -> F -> H, GELU)

``N`` is a LayerNorm, or in the NAR decoder an AdaLN: ``AdaLN(x, s) = a(s) · LayerNorm(x) + b(s)`` with
``a, b`` linear in the stage embedding ``s`` (VALL-E §4.2.2). Parameters per layer: ``4·H² + 4·H``
(attention) + ``2·H·F + F + H`` (FFN) + the two norms (``4·H`` plain, ``2·(2·H·H + 2·H)`` adaptive).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ns2.modules.attention import attention
from ns2.modules.dropout import Dropout

__all__ = ["AdaLayerNorm", "DecoderLayer", "KVCache", "SinePositions", "positions_of"]


def positions_of(mask: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """0-based positions of the valid entries of ``mask`` [B, S] (padding anywhere keeps its neighbour's
    position; it is masked out anyway), plus ``offset`` [B]. -> [B, S] long."""
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    return pos if offset is None else pos + offset[:, None]


class SinePositions(nn.Module):
    """Sinusoidal positions scaled by a learned ``alpha`` (one per segment, text or audio), added to
    embeddings: ``x + alpha · PE(pos)``. x: [B, S, H]; pos: [B, S] -> [B, S, H]."""

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"position width must be even, got {dim}")
        self.alpha = nn.Parameter(torch.ones(1))
        self.register_buffer("freqs", torch.exp(-math.log(max_period) * torch.arange(dim // 2) / (dim // 2)),
                             persistent=False)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        angles = pos.to(x.dtype)[..., None] * self.freqs.to(x.dtype)
        return x + self.alpha * torch.cat([angles.sin(), angles.cos()], dim=-1)


class AdaLayerNorm(nn.Module):
    """``a(s) · LayerNorm(x) + b(s)``: x [B, S, H], s [B, H] (a stage embedding) -> [B, S, H].
    Initialised to the identity norm (a = 1, b = 0)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.proj = nn.Linear(dim, 2 * dim)
        nn.init.zeros_(self.proj.weight)
        with torch.no_grad():
            self.proj.bias.copy_(torch.cat([torch.ones(dim), torch.zeros(dim)]))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        a, b = self.proj(s)[:, None, :].chunk(2, dim=-1)
        return a * self.norm(x) + b


@dataclass
class KVCache:
    """Keys and values of every layer for the positions decoded so far.

    ``keys[i]``, ``values[i]``: [B, heads, S, H/heads]; ``key_mask``: [B, S] (valid positions);
    ``audio_len``: [B] audio tokens so far (the next audio token's position).
    """

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    key_mask: torch.Tensor | None = None
    audio_len: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.key_mask is None else int(self.key_mask.shape[1])


class DecoderLayer(nn.Module):
    """One pre-LN Transformer layer (module docstring).

    Args:
        dim: H.  heads: attention heads.  ffn: F, the feed-forward width.  dropout: on attention
        weights and both residual branches.  adaptive: AdaLN norms taking a stage embedding.
    """

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float = 0.1, adaptive: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} must be divisible by heads={heads}")
        self.dim, self.heads, self.dropout_p, self.adaptive = dim, heads, float(dropout), bool(adaptive)
        norm = AdaLayerNorm if adaptive else nn.LayerNorm
        self.norm1, self.norm2 = norm(dim), norm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), Dropout(dropout), nn.Linear(ffn, dim))
        self.drop = Dropout(dropout)

    def _norm(self, norm: nn.Module, x: torch.Tensor, stage: torch.Tensor | None) -> torch.Tensor:
        return norm(x, stage) if self.adaptive else norm(x)

    def attention_weights(self, x: torch.Tensor, attn_mask: torch.Tensor, stage: torch.Tensor | None = None
                          ) -> torch.Tensor:
        """This layer's attention weights for input x [B, S, H], averaged over heads -> [B, S, S] (for plots)."""
        b, s, _ = x.shape
        q, k, _ = self.qkv(self._norm(self.norm1, x, stage)).view(b, s, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        return scores.masked_fill(~attn_mask, float("-inf")).softmax(-1).mean(1)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor, stage: torch.Tensor | None = None,
                cache: KVCache | None = None, index: int = 0) -> torch.Tensor:
        """x: [B, S, H]; attn_mask: [B, 1, S, Sk] bool (true: may attend), Sk = cached + S; stage: [B, H]
        (adaptive layers). With ``cache``, this layer's keys/values at ``index`` are extended by the S
        new positions. -> [B, S, H]."""
        b, s, _ = x.shape
        h = self._norm(self.norm1, x, stage)
        q, k, v = self.qkv(h).view(b, s, 3, self.heads, self.dim // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if index < len(cache.keys):
                k = torch.cat([cache.keys[index], k], dim=2)
                v = torch.cat([cache.values[index], v], dim=2)
                cache.keys[index], cache.values[index] = k, v
            else:
                cache.keys.append(k)
                cache.values.append(v)
        y = attention(q, k, v, attn_mask, self.dropout_p if self.training else 0.0)
        x = x + self.drop(self.out(y.transpose(1, 2).reshape(b, s, self.dim)))
        return x + self.drop(self.ffn(self._norm(self.norm2, x, stage)))
