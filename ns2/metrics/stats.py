"""Confidence intervals for metric means: percentile bootstrap, paired bootstrap, ratio bootstrap.

All functions drop non-finite values (NaN = "undefined for this utterance") and report how many they
dropped (``n_nan``) beside how many they used (``n``). Resampling is seeded (``numpy.random.default_rng``),
so a report is reproducible. Intervals are percentile intervals of ``n_resamples`` bootstrap means.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_ratio_ci", "paired_bootstrap_ci", "summarize"]

NAN = float("nan")


def _finite(values: Iterable[float]) -> tuple[np.ndarray, int]:
    v = np.asarray([np.nan if x is None else x for x in values], dtype=np.float64).ravel()
    ok = np.isfinite(v)
    return v[ok], int((~ok).sum())


def _num(x: Any) -> float:
    return NAN if x is None else float(x)


def _resampled_means(v: np.ndarray, n_resamples: int, rng: np.random.Generator, chunk: int = 256) -> np.ndarray:
    """``[n_resamples]`` means of ``v`` resampled with replacement (in chunks to bound memory)."""
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        k = min(chunk, n_resamples - start)
        out[start : start + k] = v[rng.integers(0, v.size, size=(k, v.size))].mean(axis=1)
    return out


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _check(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples: expected >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence}")


def bootstrap_ci(
    values: Iterable[float], *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of the finite ``values`` and its percentile-bootstrap interval.

    Returns ``{"mean", "ci_low", "ci_high", "n", "n_nan"}``; with no finite value the numbers are NaN,
    with one the interval is that value.
    """
    _check(n_resamples, confidence)
    v, n_nan = _finite(values)
    if v.size == 0:
        return {"mean": NAN, "ci_low": NAN, "ci_high": NAN, "n": 0, "n_nan": n_nan}
    lo, hi = _interval(_resampled_means(v, n_resamples, np.random.default_rng(seed)), confidence)
    return {"mean": float(v.mean()), "ci_low": lo, "ci_high": hi, "n": int(v.size), "n_nan": n_nan}


def paired_bootstrap_ci(
    a: Mapping[Any, float],
    b: Mapping[Any, float],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of ``a[id] - b[id]`` over the ids present and finite in both, with a paired-bootstrap interval.

    Utterances (ids) are resampled, keeping each pair together. Returns ``{"mean_diff", "ci_low",
    "ci_high", "n", "n_nan" (shared ids where either value is not finite), "n_only_a", "n_only_b",
    "frac_resamples_gt_0"}``; the last is the share of bootstrap mean differences above zero.
    """
    _check(n_resamples, confidence)
    shared = [k for k in a if k in b]
    diffs = np.asarray([_num(a[k]) - _num(b[k]) for k in shared], dtype=np.float64)
    ok = np.isfinite(diffs)
    d = diffs[ok]
    res: dict[str, float] = {
        "n": int(d.size),
        "n_nan": int((~ok).sum()),
        "n_only_a": len(a) - len(shared),
        "n_only_b": sum(1 for k in b if k not in a),
    }
    if d.size == 0:
        return {"mean_diff": NAN, "ci_low": NAN, "ci_high": NAN, **res, "frac_resamples_gt_0": NAN}
    boot = _resampled_means(d, n_resamples, np.random.default_rng(seed))
    lo, hi = _interval(boot, confidence)
    return {
        "mean_diff": float(d.mean()),
        "ci_low": lo,
        "ci_high": hi,
        **res,
        "frac_resamples_gt_0": float(np.mean(boot > 0)),
    }


def bootstrap_ratio_ci(
    numerators: Sequence[float],
    denominators: Sequence[float],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """``sum(num) / sum(den)`` (e.g. corpus WER = errors / reference words) with a bootstrap interval
    over utterances; pairs with a non-finite value or a zero denominator are dropped (``n_nan``)."""
    _check(n_resamples, confidence)
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    if num.shape != den.shape:
        raise ValueError(f"bootstrap_ratio_ci: expected equal lengths, got {num.size} and {den.size}")
    ok = np.isfinite(num) & np.isfinite(den) & (den != 0)
    num, den = num[ok], den[ok]
    n_nan = int((~ok).sum())
    if num.size == 0:
        return {"ratio": NAN, "ci_low": NAN, "ci_high": NAN, "n": 0, "n_nan": n_nan}
    rng = np.random.default_rng(seed)
    ratios = np.empty(n_resamples)
    for start in range(0, n_resamples, 256):
        k = min(256, n_resamples - start)
        idx = rng.integers(0, num.size, size=(k, num.size))
        ratios[start : start + k] = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    lo, hi = _interval(ratios, confidence)
    return {"ratio": float(num.sum() / den.sum()), "ci_low": lo, "ci_high": hi, "n": int(num.size), "n_nan": n_nan}


def summarize(records: Iterable[Mapping[str, Any]], key: str, **kwargs: Any) -> dict[str, float]:
    """:func:`bootstrap_ci` of ``record[key]`` over records; a record without ``key`` counts as NaN."""
    return bootstrap_ci((r.get(key, NAN) for r in records), **kwargs)
