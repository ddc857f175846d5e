"""A non-causal conditional WaveNet (DiffWave-style residual stack) with optional cross-attention + FiLM.

Channel-first: ``x: [B, C, T]``, ``mask: [B, T]`` true on valid frames, ``cond: [B, C_c, T]`` a
frame-level condition, ``step: [B, C]`` a per-item embedding (the diffusion time), ``context:
[B, Tk, C_k]`` a sequence the attention layers read (``context_mask: [B, Tk]``).

One layer::

    y   = x + Linear(step)                                   (masked)
    pre = DilatedConv_k(y) + CondConv_kc(cond)               [B, 2C, T]
    pre = FiLM(pre | Attention(LN(y), context))              (attention layers only)
    g   = tanh(pre[:C]) · sigmoid(pre[C:])                   (dropout)
    res, skip = Conv_1(g)                                    [B, C, T] each
    x   = (x + res) / √2

The stack returns the skip outputs averaged as ``Σ skip / √N`` (DiffWave's normalisation, which keeps
the variance of N roughly uncorrelated skips at one skip's).

Speed: ``CondConv_kc(cond)`` does not depend on x or the step, so :meth:`WaveNet.condition` computes it
for every layer at once (one convolution per dilation, the layers' weights stacked) and a sampler may
compute it once per synthesis and pass it to every call (``cond_proj``). Masking happens where it
matters: before each dilated convolution (which reads neighbouring frames) and once on the output;
the pointwise parts between leave padded frames unread, so results equal masking after every step.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ns2.modules.attention import MultiHeadAttention
from ns2.modules.conv import MaskedConv1d
from ns2.modules.dropout import Dropout
from ns2.modules.masks import apply_mask

__all__ = ["FiLM", "WaveNetLayer", "WaveNet", "attention_layer_indices"]


def attention_layer_indices(layers: int, every: int) -> list[int]:
    """Layers that carry attention + FiLM: one after every ``every`` layers, i.e. i with (i + 1) % every == 0
    (40 layers, every 3 -> 13 layers: 2, 5, ..., 38). ``every <= 0`` -> none."""
    return [i for i in range(layers) if every > 0 and (i + 1) % every == 0]


class FiLM(nn.Module):
    """Feature-wise linear modulation: x · (1 + γ(a)) + β(a).

    x: [B, C, T], a: [B, T, C_a] (per frame) -> [B, C, T]. Parameters: C_a · 2C + 2C.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        # proj(a) formed channel-first ([B, 2·2C, T], as x) by a pointwise convolution of the transposed
        # (narrower) a: proj(a).transpose would make every elementwise step stride across a [B, T, 2·2C]
        # tensor and its backward copy the gradient back to that layout
        h = F.conv1d(a.transpose(1, 2), self.proj.weight[:, :, None], self.proj.bias)
        gamma, beta = h.chunk(2, dim=1)
        return x * (1 + gamma) + beta


class WaveNetLayer(nn.Module):
    """One gated residual layer (see the module docstring).

    Args:
        channels: C, the residual width; the gated convolution has 2C filters.
        kernel_size, dilation: of the dilated convolution.
        cond_channels: C_c of the frame-level condition.
        cond_kernel_size: kernel of the condition's convolution (same dilation); 1 is DiffWave's
            pointwise conditioner.
        dropout: on the gated activations.
        heads: attention heads; 0 means no attention / FiLM in this layer.
        context_dim: C_k of the attended context (default C).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        cond_channels: int | None = None,
        cond_kernel_size: int = 1,
        dropout: float = 0.0,
        heads: int = 0,
        context_dim: int | None = None,
    ) -> None:
        super().__init__()
        cond_channels = channels if cond_channels is None else cond_channels
        self.channels = channels
        self.step_proj = nn.Linear(channels, channels)
        self.dilated_conv = MaskedConv1d(channels, 2 * channels, kernel_size, dilation=dilation)
        self.cond_conv = MaskedConv1d(cond_channels, 2 * channels, cond_kernel_size, dilation=dilation)
        self.out_conv = MaskedConv1d(channels, 2 * channels, 1)
        self.dropout = Dropout(dropout)
        self.has_attention = heads > 0
        if self.has_attention:
            self.attn_norm = nn.LayerNorm(channels)
            self.attn = MultiHeadAttention(channels, heads, dropout, context_dim=context_dim)
            self.film = FiLM(channels, 2 * channels)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        cond: torch.Tensor | None,
        step: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        cond_proj: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (x_next [B, C, T], skip [B, C, T]), valid on unpadded frames (padded frames are not zeroed
        here: the next layer masks before its dilated convolution, :class:`WaveNet` masks the output).

        x: [B, C, T]; cond: [B, C_c, T] zero at padding, or ``cond_proj`` [B, 2C, T] = CondConv(cond)
        computed beforehand (:meth:`WaveNet.condition`)."""
        y = apply_mask(x + self.step_proj(step)[:, :, None], mask)
        if cond_proj is None:
            if cond is None:
                raise ValueError("WaveNetLayer needs cond [B, C_c, T] or cond_proj [B, 2C, T]")
            cond_proj = nn.Conv1d.forward(self.cond_conv, cond)
        pre = nn.Conv1d.forward(self.dilated_conv, y) + cond_proj
        if self.has_attention:
            if context is None:
                raise ValueError("this WaveNet layer attends to a context: pass context [B, Tk, C_k]")
            a = self.attn(self.attn_norm(y.transpose(1, 2)), context, context_mask)
            pre = self.film(pre, a)
        filt, gate = pre.chunk(2, dim=1)  # (chunk's backward is one cat; two slices' would zero-fill and add)
        g = self.dropout(torch.tanh(filt) * torch.sigmoid(gate))
        res, skip = nn.Conv1d.forward(self.out_conv, g).chunk(2, dim=1)
        return (x + res) * (1.0 / math.sqrt(2.0)), skip


class WaveNet(nn.Module):
    """A stack of :class:`WaveNetLayer` with dilations ``dilation_base ** (i % dilation_cycle)`` and
    attention + FiLM in the layers of :func:`attention_layer_indices` (none when ``heads == 0`` or
    ``attention_every <= 0``).

    forward(x [B, C, T], mask [B, T], cond [B, C_c, T], step [B, C], context [B, Tk, C_k] | None,
    context_mask [B, Tk] | None) -> averaged skips [B, C, T] (zero at padding).
    """

    def __init__(
        self,
        channels: int,
        layers: int,
        kernel_size: int = 3,
        dilation_base: int = 2,
        dilation_cycle: int = 2,
        cond_channels: int | None = None,
        cond_kernel_size: int = 1,
        dropout: float = 0.0,
        heads: int = 0,
        attention_every: int = 3,
        context_dim: int | None = None,
    ) -> None:
        super().__init__()
        if layers < 1 or dilation_cycle < 1:
            raise ValueError(f"WaveNet needs layers >= 1 and dilation_cycle >= 1, got {layers}, {dilation_cycle}")
        attending = set(attention_layer_indices(layers, attention_every)) if heads > 0 else set()
        self.attention_layers = sorted(attending)
        self.layers = nn.ModuleList(
            WaveNetLayer(
                channels,
                kernel_size,
                dilation_base ** (i % dilation_cycle),
                cond_channels,
                cond_kernel_size,
                dropout,
                heads if i in attending else 0,
                context_dim,
            )
            for i in range(layers)
        )

    def condition(self, cond: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every layer's CondConv(cond): cond [B, C_c, T] -> a list of N tensors [B, 2C, T].

        Independent of x and the step: computed once per call, or once per synthesis by a sampler.
        Layers sharing a dilation share one convolution with their weights stacked."""
        cond = apply_mask(cond, mask)
        out: list[torch.Tensor | None] = [None] * len(self.layers)
        groups: dict[tuple, list[int]] = {}
        for i, layer in enumerate(self.layers):
            c = layer.cond_conv
            groups.setdefault((c.dilation, c.padding, c.kernel_size), []).append(i)
        for idx in groups.values():
            convs = [self.layers[i].cond_conv for i in idx]
            weight = torch.cat([c.weight for c in convs]) if len(idx) > 1 else convs[0].weight
            bias = torch.cat([c.bias for c in convs]) if len(idx) > 1 else convs[0].bias
            y = F.conv1d(cond, weight, bias, padding=convs[0].padding, dilation=convs[0].dilation)
            for i, part in zip(idx, y.split(convs[0].out_channels, dim=1)):
                out[i] = part
        return out  # type: ignore[return-value]

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        cond: torch.Tensor | None,
        step: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        cond_proj: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``cond_proj``: :meth:`condition`'s output, to reuse across calls (then ``cond`` is unused)."""
        if cond_proj is None:
            if cond is None:
                raise ValueError("WaveNet needs cond [B, C_c, T] or cond_proj (WaveNet.condition)")
            cond_proj = self.condition(cond, mask)
        if len(cond_proj) != len(self.layers):
            raise ValueError(f"cond_proj must hold one tensor per layer ({len(self.layers)}), got {len(cond_proj)}")
        skips = None
        for layer, c in zip(self.layers, cond_proj):
            x, skip = layer(x, mask, None, step, context, context_mask, cond_proj=c)
            skips = skip if skips is None else skips + skip
        return apply_mask(skips * (1.0 / math.sqrt(len(self.layers))), mask)
