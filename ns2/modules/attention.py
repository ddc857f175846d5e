"""Masked multi-head Q-K-V attention (self- or cross-attention).

Shapes: ``B`` batch, ``Tq`` queries, ``Tk`` keys, ``H`` model width, ``Hk`` context width.
Sequences are time-major here (``[B, T, H]``), the natural layout for attention; the convolutional
modules around it are channel-first (``[B, H, T]``) and transpose at the boundary.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ns2.modules.dropout import dropout
from ns2.modules.masks import attention_bias_mask

__all__ = ["MultiHeadAttention", "attention"]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
              dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(q kᵀ / √d) v with dropout on the weights. q: [B, h, Tq, d], k, v: [B, h, Tk, d],
    attn_mask: bool, broadcastable to [B, h, Tq, Tk], true where a query may attend -> [B, h, Tq, d].

    torch's ``scaled_dot_product_attention``, except with dropout on CPU: there it draws the mask
    with ``bernoulli_`` (see :mod:`ns2.modules.dropout`), so the weights are formed explicitly and
    dropped with :func:`~ns2.modules.dropout.dropout` (the same arithmetic as its math path)."""
    if dropout_p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return dropout(scores.softmax(-1), dropout_p) @ v


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with a key padding mask.

    Parameters: q/k/v/output projections with biases, ``4·H² + 4·H`` when ``Hk = H``.

    Args:
        dim: H, the query (and output) width.
        heads: number of heads (must divide ``dim``).
        dropout: dropout on the attention weights (training only).
        context_dim: Hk, the key/value input width (default ``dim``).
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, context_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} must be divisible by heads={heads}")
        context_dim = dim if context_dim is None else context_dim
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(context_dim, dim)
        self.v = nn.Linear(context_dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.dim // self.heads).transpose(1, 2)  # [B, heads, T, H/heads]

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: [B, Tq, H] queries; context: [B, Tk, Hk] keys/values (default x: self-attention);
        key_mask: [B, Tk] bool, true on valid keys (padded keys get zero weight) -> [B, Tq, H].

        An item with no valid key at all gets a zero output instead of NaN.
        """
        context = x if context is None else context
        if context.shape[0] != x.shape[0]:
            raise ValueError(f"context batch {context.shape[0]} != query batch {x.shape[0]}")
        q, k, v = self._split(self.q(x)), self._split(self.k(context)), self._split(self.v(context))
        attn_mask, has_keys = None, None
        if key_mask is not None:
            if key_mask.shape != context.shape[:2]:
                raise ValueError(f"key_mask must have shape [B, Tk] = {list(context.shape[:2])}, got {list(key_mask.shape)}")
            attn_mask, has_keys = attention_bias_mask(key_mask.to(device=x.device, dtype=torch.bool))
        y = attention(q, k, v, attn_mask, self.dropout if self.training else 0.0)
        y = self.out(y.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.dim))
        if has_keys is not None:
            y = y * has_keys[:, None, None].to(y.dtype)
        return y
