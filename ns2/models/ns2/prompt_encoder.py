"""NaturalSpeech 2's speech prompt encoder: prompt latent -> prompt hidden states.

Paper: same shape as the phoneme encoder (6 layers, 8 heads, hidden 512, conv-FFN 2048 with kernels
(9, 1), dropout 0.2); 69M. Input: the codec latent of the prompt ``[B, D, Tp]``, projected pointwise to
the hidden width (D·512 + 512 parameters). Six blocks are 69.25M, with the D=256 projection 69.38M.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ns2.modules.masks import apply_mask, check_mask
from ns2.modules.transformer import TransformerEncoder

__all__ = ["PromptEncoder"]


class PromptEncoder(nn.Module):
    """Pointwise projection D -> H + Transformer encoder with conv-FFNs.

    forward(z_prompt [B, D, Tp], mask [B, Tp] | None) -> p [B, H, Tp] (zero at padding).
    """

    def __init__(
        self,
        latent_dim: int,
        hidden: int = 512,
        layers: int = 6,
        heads: int = 8,
        filter_size: int = 2048,
        kernel_sizes: Sequence[int] = (9, 1),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.in_proj = nn.Conv1d(latent_dim, hidden, 1)
        self.encoder = TransformerEncoder(hidden, layers, heads, filter_size, kernel_sizes, dropout)

    def forward(self, z_prompt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if z_prompt.dim() != 3 or z_prompt.shape[1] != self.latent_dim:
            raise ValueError(f"z_prompt must be [B, {self.latent_dim}, Tp], got {tuple(z_prompt.shape)}")
        mask = check_mask(mask, z_prompt, "prompt_mask")
        return self.encoder(apply_mask(self.in_proj(z_prompt), mask), mask)
