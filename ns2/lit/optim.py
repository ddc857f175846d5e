"""Optimisation pieces shared by the LightningModules: the learning-rate schedule, gradient clipping,
and the EMA of a network's weights."""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["InverseSqrtSchedule", "WarmupLinearSchedule", "clip_gradients", "ema_decay_at", "update_ema"]


class InverseSqrtSchedule:
    """Learning-rate factor: linear warmup to 1 over ``warmup_steps``, then ``sqrt(warmup_steps / step)``.

    ``factor(step)`` for 0-based optimiser steps: ``(step + 1) / w`` while ``step + 1 < w``, else
    ``sqrt(w / (step + 1))``, with ``w = max(warmup_steps, 1)``. (Use with ``LambdaLR``.)
    """

    def __init__(self, warmup_steps: int):
        if int(warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        w = max(self.warmup_steps, 1)
        s = step + 1
        return s / w if s < w else math.sqrt(w / s)


class WarmupLinearSchedule:
    """Learning-rate factor: linear warmup to 1 over ``warmup_steps``, then linear decay to 0 at
    ``total_steps`` (VALL-E's schedule). ``factor(step)`` for 0-based optimiser steps."""

    def __init__(self, warmup_steps: int, total_steps: int):
        if int(warmup_steps) < 0 or int(total_steps) <= int(warmup_steps):
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)

    def __call__(self, step: int) -> float:
        s = step + 1
        if s < self.warmup_steps:
            return s / self.warmup_steps
        return max(0.0, (self.total_steps - s) / max(self.total_steps - self.warmup_steps, 1))


def clip_gradients(params: Iterable[torch.Tensor], max_norm: float | None,
                   zero_if_not_finite: bool = False) -> torch.Tensor | None:
    """Clip the gradients of ``params`` to a total norm of ``max_norm`` (None or 0: no clipping) and return
    their norm before clipping (None when no parameter has a gradient). With ``zero_if_not_finite`` a
    non-finite norm zeroes the gradients, so the optimiser step changes nothing."""
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return None
    norm = torch.nn.utils.clip_grad_norm_(grads, float(max_norm) if max_norm else float("inf"))
    if zero_if_not_finite and not torch.isfinite(norm):
        for p in grads:
            p.grad.zero_()
    return norm


def ema_decay_at(step: int, decay: float, warmup: bool = True) -> float:
    """The EMA decay for the update after optimiser step ``step`` (0-based): ``min(decay, (1 + n) / (10 + n))``
    with ``warmup``, else ``decay``."""
    if not warmup:
        return float(decay)
    return min(float(decay), (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """``ema ← d·ema + (1 − d)·net`` over parameters (in ``ema``'s dtype); buffers are copied."""
    ema_p = list(ema.parameters())
    net_p = [p.detach().to(e.dtype) for p, e in zip(net.parameters(), ema_p)]
    if ema_p:
        torch._foreach_lerp_(ema_p, net_p, 1.0 - float(decay))
    for be, bn in zip(ema.buffers(), net.buffers()):
        be.copy_(bn)
