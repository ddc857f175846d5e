"""Dropout with a cheaper mask on CPU.

On CPU, torch's dropout draws its mask with ``bernoulli_``, which is about 4× slower than drawing
uniforms; in NaturalSpeech 2's training step (dropout 0.5 in the predictors, 0.2 elsewhere, and on
the attention weights) the draws were 13 % of the step on a 2-core machine. Here the CPU mask is
``(U >= p) / (1 - p)`` with ``U ~ Uniform[0, 1)`` from the same global generator: the same
distribution (each element kept with probability 1 − p, kept elements scaled by 1 / (1 − p)),
another stream of draws. Forward + backward of [2, 256, 400] at p = 0.5: 0.9 ms against 2.6 ms.
Other devices keep torch's fused kernel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["dropout", "Dropout"]


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """x: [...] -> [...]: elements zeroed with probability p, the rest scaled by 1 / (1 − p)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0 or not x.is_floating_point():
        return F.dropout(x, p, training=True)
    # drawn in float32 (faster than bfloat16 draws, and p is resolved finely), in place: 0 or 1 / (1 - p)
    keep = torch.rand_like(x, dtype=torch.float32).ge_(p).mul_(1.0 / (1.0 - p))
    return x * keep.to(x.dtype)


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` with :func:`dropout`'s CPU mask (no parameters, same ``p``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)
