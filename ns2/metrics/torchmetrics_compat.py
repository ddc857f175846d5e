"""torchmetrics wrappers, so the metrics can run inside a Lightning validation loop.

``UtteranceMean`` averages per-utterance values (NaN values are counted in ``n_nan``, not averaged);
``MetricAdapter`` runs an :class:`ns2.metrics.registry.Metric` on each utterance and averages each of its
keys. Both synchronise across processes by summing their states (torchmetrics ``dist_reduce_fx="sum"``).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torchmetrics import Metric as _TMMetric

from ns2.metrics.registry import Metric

__all__ = ["MetricAdapter", "UtteranceMean"]


def _as_values(values: Any) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64).detach().cpu().flatten()


class UtteranceMean(_TMMetric):
    """Mean of per-utterance values; ``compute()`` is NaN when no finite value was seen."""

    full_state_update = False
    is_differentiable = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("n_nan", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, values: float | Sequence[float] | torch.Tensor) -> None:
        v = _as_values(values).to(self.total.device)
        finite = torch.isfinite(v)
        self.total += v[finite].sum()
        self.count += finite.sum()
        self.n_nan += (~finite).sum()

    def compute(self) -> torch.Tensor:
        if self.count == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return self.total / self.count


class MetricAdapter(_TMMetric):
    """Per-key means of an ns2 metric: ``update(hyp_wav, sr, **inputs)`` scores one utterance.

    ``compute()`` returns ``{key: mean}`` for every key of ``metric.keys`` plus ``{key}_n_nan`` counts;
    keys a metric did not return for an utterance (e.g. SIM-r without a resynthesised prompt) are skipped.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, metric: Metric, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = metric
        self.keys = tuple(metric.keys)
        k = len(self.keys)
        self.add_state("total", default=torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(k, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("n_nan", default=torch.zeros(k, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, hyp_wav: Any, sr: int, **inputs: Any) -> None:
        out = self.metric.score(hyp_wav, sr, **inputs)
        for key, value in out.items():
            if key not in self.keys:
                raise KeyError(f"metric {self.metric.name!r} returned {key!r}, expected one of {self.keys}")
            i = self.keys.index(key)
            if value == value and abs(value) != float("inf"):
                self.total[i] += float(value)
                self.count[i] += 1
            else:
                self.n_nan[i] += 1

    def compute(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for i, key in enumerate(self.keys):
            c = self.count[i]
            out[key] = self.total[i] / c if c > 0 else torch.tensor(float("nan"), dtype=torch.float64)
            out[f"{key}_n_nan"] = self.n_nan[i].clone()
        return out
