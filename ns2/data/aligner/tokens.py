"""Which tokens the aligner gives frames to, and moving between all tokens and aligned tokens.

MAS gives every token it aligns at least one frame, so only tokens with acoustics of their own are
aligned: the phones and ``<sil>`` (pauses, leading/trailing silence). Everything else gets **0
frames**: word boundaries ``|``, punctuation, stress and length marks (``ˈ ˌ ː``, separate symbols
before/after the vowel they modify), Mandarin tone letters, and ``<pad> <bos> <eos>``. This matches
the synthetic corpus's ground-truth timings, where all of these have zero length and pauses are
``<sil>``. The text encoder still reads the whole sequence (boundaries, stress and punctuation are
useful context); only the attention and MAS run over the aligned tokens (``L' <= L`` of them, in
order), and durations are scattered back to one entry per token, still summing to the frame count.
"""
from __future__ import annotations

from typing import Iterable

import torch

__all__ = ["unaligned_ids", "align_mask_for", "compact_index", "expand_durations"]

ALIGNED_SPECIALS = ("<sil>",)


def unaligned_ids(symbols, tokens: Iterable[str] | None = None) -> list[int]:
    """Ids that get 0 frames.

    ``tokens`` given: the ids of those symbols that are in the table. Otherwise, for a
    ``SymbolTable`` (with ``phones``): every symbol except its phones and ``<sil>``; for a plain
    ``{symbol: id}`` mapping: just ``|``. ``symbols=None`` gives ``[]``.
    """
    if symbols is None:
        return []
    lookup = (lambda s: int(symbols.id(s))) if hasattr(symbols, "id") else (lambda s: int(symbols[s]))
    if tokens is None:
        if hasattr(symbols, "phones"):
            aligned = set(symbols.phones) | set(ALIGNED_SPECIALS)
            return [lookup(s) for s in symbols if s not in aligned]
        tokens = ("|",)
    return [lookup(t) for t in tokens if t in symbols]


def align_mask_for(phonemes: torch.Tensor, phoneme_mask: torch.Tensor, skip_ids: Iterable[int]) -> torch.Tensor:
    """phonemes: [B, L] long, phoneme_mask: [B, L] -> [B, L] bool, True on valid tokens not in ``skip_ids``."""
    keep = phoneme_mask.bool().clone()
    skip = torch.as_tensor(sorted({int(i) for i in skip_ids}), dtype=phonemes.dtype, device=phonemes.device)
    if skip.numel():
        keep &= ~torch.isin(phonemes, skip)
    return keep


def compact_index(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """keep: [B, L] bool -> (index [B, L'], token_mask [B, L']).

    ``index[b, i]`` is the position of the i-th kept token of row b (0 on padding), so
    ``x.gather(-1, index)`` left-packs the kept entries; ``L' = max(1, max kept per row)``.
    """
    B, L = keep.shape
    counts = keep.sum(-1)
    L2 = max(int(counts.max()) if B else 0, 1)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept positions first, in order
    if L2 > L:
        order = torch.nn.functional.pad(order, (0, L2 - L))
    token_mask = torch.arange(L2, device=keep.device)[None, :] < counts[:, None]
    return order[:, :L2] * token_mask, token_mask


def expand_durations(durations: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """durations: [B, L'] over kept tokens + keep: [B, L] -> [B, L] (0 where not kept)."""
    pos = (keep.long().cumsum(-1) - 1).clamp(min=0)
    return durations.gather(1, pos) * keep.to(durations.dtype)
