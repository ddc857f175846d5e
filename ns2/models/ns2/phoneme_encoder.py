"""NaturalSpeech 2's phoneme encoder: phoneme ids -> phoneme hidden states.

Paper (Table of model settings): 6 Transformer layers, 8 heads, hidden 512, conv-FFN filter 2048 with
kernel 9, dropout 0.2; 72M parameters.

Reading of the conv-FFN: FastSpeech's two convolutions with kernels (9, 1), H -> 2048 -> H. A block is
then 4·512² (attention) + 9·512·2048 + 2048·512 (FFN) + biases / norms = 11.54M, six blocks 69.25M,
plus the phoneme embedding (vocab × 512). Two kernel-9 convolutions would give 19.9M a block, 120M in
all, far from the paper; (9, 1) is also exactly what makes the *prompt* encoder (same shape, 69M) land
on its count. Nothing in the stated shapes accounts for the phoneme encoder's extra ~3M over the
prompt encoder (a phoneme vocabulary is ~0.1M), so this encoder is 69.5M at paper scale, 3.5% under
the paper's 72M.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ns2.modules.masks import check_mask
from ns2.modules.transformer import TransformerEncoder

__all__ = ["PhonemeEncoder"]


class PhonemeEncoder(nn.Module):
    """Embedding + sinusoidal positions + Transformer encoder with conv-FFNs.

    forward(phonemes [B, L] long, mask [B, L] bool | None) -> h [B, H, L] (zero at padding).
    With ``mask=None`` the mask is ``phonemes != padding_idx``.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden: int = 512,
        layers: int = 6,
        heads: int = 8,
        filter_size: int = 2048,
        kernel_sizes: Sequence[int] = (9, 1),
        dropout: float = 0.2,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        self.vocab_size, self.padding_idx = vocab_size, padding_idx
        self.embedding = nn.Embedding(vocab_size, hidden, padding_idx=padding_idx)
        self.encoder = TransformerEncoder(hidden, layers, heads, filter_size, kernel_sizes, dropout)

    def forward(self, phonemes: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if phonemes.dim() != 2 or phonemes.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"phonemes must be integer ids [B, L], got {phonemes.dtype} {tuple(phonemes.shape)}")
        if phonemes.numel() and (int(phonemes.min()) < 0 or int(phonemes.max()) >= self.vocab_size):
            raise ValueError(
                f"phoneme ids must lie in [0, {self.vocab_size}), got [{int(phonemes.min())}, {int(phonemes.max())}]: "
                "raise the model's vocab_size to the symbol table's size"
            )
        mask = phonemes != self.padding_idx if mask is None else check_mask(mask, phonemes, "phoneme_mask")
        x = self.embedding(phonemes.long()).transpose(1, 2)  # [B, H, L]
        return self.encoder(x, mask)
