"""NaturalSpeech 2's duration predictor: phoneme hidden states + prompt -> log(1 + d) per phoneme.

A :class:`~ns2.models.ns2.predictor.ProsodyPredictor` with kernel 3 (paper: 30 convs + 10 attention
layers, hidden 512, dropout 0.5, 34M; trained with L1 on log(1 + d), d in frames).
Input: the phoneme encoder's output h [B, H, L]; output: log_dur [B, L] (zero at padding).
"""
from __future__ import annotations

from ns2.models.ns2.predictor import ProsodyPredictor

__all__ = ["DurationPredictor"]


class DurationPredictor(ProsodyPredictor):
    """forward(h [B, H, L], phoneme_mask [B, L], p [B, H, Tp], prompt_mask [B, Tp]) -> log_dur [B, L]."""

    def __init__(self, in_channels: int, hidden: int = 512, layers: int = 30, kernel_size: int = 3, **kwargs) -> None:
        super().__init__(in_channels, hidden=hidden, layers=layers, kernel_size=kernel_size, **kwargs)
