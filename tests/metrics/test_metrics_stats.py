"""Bootstrap intervals on distributions with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ns2.metrics.stats import bootstrap_ci, bootstrap_ratio_ci, paired_bootstrap_ci, summarize


def test_bootstrap_ci_normal_known_mean_and_width():
    mu, sigma, n = 3.0, 2.0, 400
    x = np.random.default_rng(1).normal(mu, sigma, n)
    r = bootstrap_ci(x, n_resamples=2000, seed=0)
    assert r["ci_low"] < mu < r["ci_high"]
    assert r["n"] == n and r["n_nan"] == 0
    assert r["mean"] == pytest.approx(x.mean())
    expected_width = 2 * 1.96 * sigma / math.sqrt(n)
    assert r["ci_high"] - r["ci_low"] == pytest.approx(expected_width, rel=0.15)
    assert bootstrap_ci(x, n_resamples=2000, seed=0) == r  # seeded: reproducible


def test_bootstrap_ci_coverage():
    rng = np.random.default_rng(7)
    covered = sum(
        (r := bootstrap_ci(rng.normal(0.0, 1.0, 60), n_resamples=400, seed=i))["ci_low"] < 0.0 < r["ci_high"]
        for i in range(150)
    )
    assert 0.85 <= covered / 150 <= 0.99


def test_bootstrap_ci_nan_handling():
    r = bootstrap_ci([1.0, np.nan, 3.0, None, np.inf], n_resamples=200)
    assert r["n"] == 2 and r["n_nan"] == 3 and r["mean"] == 2.0
    empty = bootstrap_ci([np.nan, np.nan])
    assert empty["n"] == 0 and empty["n_nan"] == 2 and math.isnan(empty["mean"])
    single = bootstrap_ci([4.0])
    assert single["ci_low"] == single["ci_high"] == 4.0
    assert summarize([{"a": 1.0}, {"a": 3.0}, {"b": 1.0}], "a", n_resamples=100)["n_nan"] == 1
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.5)


def test_paired_bootstrap_uses_shared_ids_only():
    rng = np.random.default_rng(3)
    base = {f"u{i}": float(v) for i, v in enumerate(rng.normal(0, 1, 300))}
    a = {k: v + 0.5 + rng.normal(0, 0.1) for k, v in base.items()}
    b = dict(base)
    a["only_a"] = 100.0
    b["only_b1"] = -100.0
    b["only_b2"] = -100.0
    a["u0"] = float("nan")
    r = paired_bootstrap_ci(a, b, n_resamples=1000)
    assert r["n"] == 299 and r["n_nan"] == 1 and r["n_only_a"] == 1 and r["n_only_b"] == 2
    assert r["ci_low"] < 0.5 < r["ci_high"]
    assert r["ci_high"] - r["ci_low"] < 0.05  # pairing removes the large between-utterance variance
    assert r["frac_resamples_gt_0"] == 1.0
    unpaired = bootstrap_ci([a[k] for k in base if k != "u0"], n_resamples=1000)
    assert unpaired["ci_high"] - unpaired["ci_low"] > 5 * (r["ci_high"] - r["ci_low"])


def test_ratio_bootstrap_corpus_wer():
    errors = [0, 2, 6, 1]
    words = [10, 4, 6, 0]
    r = bootstrap_ratio_ci(errors, words, n_resamples=500)
    assert r["ratio"] == pytest.approx(8 / 20) and r["n"] == 3 and r["n_nan"] == 1
    assert r["ci_low"] <= r["ratio"] <= r["ci_high"]
