"""VITS's WN: the non-causal WaveNet residual stack of the posterior encoder and the flow's couplings.

VITS (Kim et al. 2021, §2.5 and App. A) takes WaveGlow's / Glow-TTS's ``WN``: ``N`` layers of a gated dilated
convolution with a global condition ``g`` (YourTTS: the 512-d speaker embedding, Casanova et al. 2022, §2),
residual and skip 1x1 convolutions, every convolution weight-normalised. Channel-first: ``x: [B, H, T]``,
``mask: [B, 1, T]`` (1.0 on valid frames, 0.0 on padding), ``g: [B, gin, 1]``. Layer ``i``::

    a      = Dropout(Conv_k,dil=r^i(x)) + G_i(g)               [B, 2H, T]   (G_i: slice i of one 1x1 conv)
    acts   = tanh(a[:H]) · sigmoid(a[H:])                        [B, H, T]
    res, skip = Conv_1(acts)                                     (the last layer has a skip only)
    x      = (x + res) · mask;   out += skip

and the stack returns ``out · mask``. Padded frames are zero before every dilated convolution, so an item's
output does not depend on what it is batched with.

Weight norm uses ``torch.nn.utils.parametrizations.weight_norm`` (keys ``parametrizations.weight.original0``
= ``g`` and ``original1`` = ``v``, where Coqui's / VITS's older ``weight_norm`` writes ``weight_g`` / ``weight_v``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ns2.modules.dropout import Dropout

__all__ = ["WN"]


class WN(nn.Module):
    """Gated dilated conv stack. x: [B, H, T], mask: [B, 1, T], g: [B, gin, 1] or None -> [B, H, T].

    Dilation of layer ``i`` is ``dilation_rate ** i``; ``gin_channels = 0`` builds no ``cond_layer``.
    """

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int, num_layers: int,
                 gin_channels: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.gin_channels = gin_channels
        self.drop = Dropout(dropout)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels > 0:
            self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden_channels * num_layers, 1))
        for i in range(num_layers):
            dilation = dilation_rate**i
            self.in_layers.append(weight_norm(nn.Conv1d(
                hidden_channels, 2 * hidden_channels, kernel_size, dilation=dilation,
                padding=dilation * (kernel_size - 1) // 2)))
            out = 2 * hidden_channels if i < num_layers - 1 else hidden_channels
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden_channels, out, 1)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden_channels
        x = x * mask
        out = torch.zeros_like(x)
        cond = None
        if g is not None and self.gin_channels > 0:
            cond = self.cond_layer(g)  # [B, 2H·N, 1]
        for i, (conv, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            a = self.drop(conv(x))
            if cond is not None:
                a = a + cond[:, 2 * h * i: 2 * h * (i + 1)]
            acts = torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:])
            rs = res_skip(acts)
            if i < self.num_layers - 1:
                x = (x + rs[:, :h]) * mask
                out = out + rs[:, h:]
            else:
                out = out + rs
        return out * mask
