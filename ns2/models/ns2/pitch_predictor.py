"""NaturalSpeech 2's pitch predictor: frame-level hidden states + prompt -> log-F0 per frame.

A :class:`~ns2.models.ns2.predictor.ProsodyPredictor` with kernel 5 (paper: 30 convs + 10 attention
layers, hidden 512, dropout 0.5, 50M; trained with L1 on log-F0, on ground-truth durations).
Input: the length-regulated phoneme hiddens c [B, H, T]; output: log_f0 [B, T] (natural log of Hz,
zero at padding).
"""
from __future__ import annotations

from ns2.models.ns2.predictor import ProsodyPredictor

__all__ = ["PitchPredictor"]


class PitchPredictor(ProsodyPredictor):
    """forward(c [B, H, T], frame_mask [B, T], p [B, H, Tp], prompt_mask [B, Tp]) -> log_f0 [B, T]."""

    def __init__(self, in_channels: int, hidden: int = 512, layers: int = 30, kernel_size: int = 5, **kwargs) -> None:
        super().__init__(in_channels, hidden=hidden, layers=layers, kernel_size=kernel_size, **kwargs)
