"""The normalizing flow of VITS / YourTTS: the posterior latent ``z`` to the prior's space ``z_p = f(z)``.

VITS (Kim et al. 2021, §2.1 eq. 4 and §2.5.3) makes the prior more expressive with a flow ``f_θ``:
``p(z | c) = N(f_θ(z); μ_θ(c), σ_θ(c)) |det ∂f_θ(z)/∂z|``. The flow is a stack of 4 *mean-only* affine
coupling layers (RealNVP, Dinh et al. 2017), each with 4 WaveNet layers, and a channel flip after each::

    x0, x1 = split(x)                                  x: [B, C, T], halves of C/2 channels
    x1     = x1 + Post(WN(Pre(x0), g))                 (masked; Post zero-initialised: identity at start)
    x      = flip_channels(cat(x0, x1))

Mean-only couplings are volume-preserving (log-det 0), so the KL term needs no Jacobian. YourTTS
(Casanova et al. 2022, §2) conditions every coupling's WaveNet on the speaker embedding ``g: [B, gin, 1]``.
``reverse=True`` runs the exact inverse (inference: prior sample -> ``z``). The flips are done in
:meth:`ResidualCouplingBlocks.forward`, not by parameter-free modules in the list, so the couplings are
``flows.0 .. flows.{n-1}`` (Coqui's numbering; the VITS reference interleaves ``Flip`` modules: ``flows.0, 2, 4, 6``).
"""
from __future__ import annotations

import torch
from torch import nn

from ns2.models.yourtts.wn import WN

__all__ = ["ResidualCouplingBlock", "ResidualCouplingBlocks"]


class ResidualCouplingBlock(nn.Module):
    """A mean-only affine coupling. x: [B, C, T], mask: [B, 1, T], g: [B, gin, 1] or None -> [B, C, T]."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, num_layers: int,
                 gin_channels: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling channels must be even, got {channels}")
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, num_layers, gin_channels=gin_channels,
                      dropout=dropout)
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        x0, x1 = x.split(self.half_channels, dim=1)
        shift = self.post(self.enc(self.pre(x0) * mask, mask, g=g)) * mask
        x1 = (x1 - shift) * mask if reverse else (x1 + shift) * mask
        return torch.cat([x0, x1], dim=1)


class ResidualCouplingBlocks(nn.Module):
    """``num_flows`` couplings, each followed by a channel flip. x: [B, C, T], mask: [B, 1, T] -> [B, C, T]."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int = 5, dilation_rate: int = 1,
                 num_layers: int = 4, num_flows: int = 4, gin_channels: int = 0) -> None:
        super().__init__()
        self.flows = nn.ModuleList(
            ResidualCouplingBlock(channels, hidden_channels, kernel_size, dilation_rate, num_layers, gin_channels)
            for _ in range(num_flows))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        if not reverse:
            for flow in self.flows:
                x = torch.flip(flow(x, mask, g=g), [1])
        else:
            for flow in reversed(self.flows):
                x = flow(torch.flip(x, [1]), mask, g=g, reverse=True)
        return x
