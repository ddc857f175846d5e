"""Aggregation with known answers: counting, WER rows, paired bootstrap on a known difference; journals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ns2.eval.protocol import ProtocolItem
from ns2.eval.records import RecordJournal, dedup, read_records
from ns2.eval.report import pair_rows, summary_rows
from ns2.eval.testset import TestSet
from ns2.metrics.stats import bootstrap_ci

BOOT = {"n_resamples": 2000, "confidence": 0.95, "seed": 0}
METRIC = {"name": "m", "backbone": "praat", "keys": ["m_score"], "higher_is_better": {"m_score": True}}


def make_set(n: int) -> TestSet:
    items = [ProtocolItem(f"u{i:03d}", "t", "p.wav", "s") for i in range(n)]
    return TestSet("set", Path("l.jsonl"), items, None, total_items=n)


def ok(i: int, scores: dict, **kw) -> dict:
    return {"id": f"u{i:03d}", "status": "ok", "scores": scores, "metric_errors": {}, "skipped": {}, **kw}


def test_counts_add_up():
    ts = make_set(7)
    recs = {r["id"]: r for r in [
        ok(0, {"m": {"m_score": 1.0}}), ok(1, {"m": {"m_score": 3.0}}), ok(2, {"m": {"m_score": float("nan")}}),
        {"id": "u003", "status": "failed", "error": "boom"}, ok(4, {}, metric_errors={"m": "ValueError: x"}),
        ok(5, {}, skipped={"m": "no input"}),
    ]}  # u006 has no record
    (row,) = summary_rows([ts], ["sys"], {("set", "sys"): recs}, [METRIC], BOOT)
    assert row["mean"] == 2.0 and (row["n"], row["n_nan"], row["n_failed"], row["n_skipped"], row["n_unscored"]) == (2, 1, 2, 1, 1)
    assert row["n_items"] == 7 and row["higher_is_better"] is True and row["ci_low"] <= 2.0 <= row["ci_high"]


def test_wer_rows():
    ts = make_set(3)
    wer = {"name": "wer_x", "backbone": "b", "keys": ["wer_x/seed"], "is_wer": True, "higher_is_better": {"wer_x/seed": False}}

    def w(i, e, n):
        return ok(i, {"wer_x": {"wer_x/seed": e / n, "wer_x/seed/errors": e, "wer_x/seed/ref_words": n}})

    recs = {r["id"]: r for r in [w(0, 1, 4), w(1, 3, 4), w(2, 1, 2)]}
    rows = {r["metric"]: r for r in summary_rows([ts], ["s"], {("set", "s"): recs}, [wer], BOOT)}
    assert rows["wer_x/seed"]["mean"] == pytest.approx((0.25 + 0.75 + 0.5) / 3)
    assert rows["wer_x/seed/corpus"]["mean"] == pytest.approx(5 / 10)
    assert rows["wer_x/seed/frac_gt_50"]["mean"] == pytest.approx(1 / 3)  # 0.5 is not above 50 %
    assert all(r["higher_is_better"] is False for r in rows.values())


def test_paired_bootstrap_on_a_known_difference():
    """Items vary much more than the systems differ: the separate CIs overlap, the paired one excludes 0."""
    rng = np.random.default_rng(0)
    n = 200
    base = rng.normal(0.0, 1.0, n)
    other = base + 0.1 + rng.normal(0.0, 0.05, n)
    ts = make_set(n)
    recs = {("set", "a"): {f"u{i:03d}": ok(i, {"m": {"m_score": float(base[i])}}) for i in range(n)},
            ("set", "b"): {f"u{i:03d}": ok(i, {"m": {"m_score": float(other[i])}}) for i in range(n) if i != 7}}
    (p,) = pair_rows([ts], ["a", "b"], recs, [METRIC], BOOT)
    true = float(np.mean(np.delete(other - base, 7)))
    assert (p["system"], p["baseline"]) == ("b", "a") and p["mean_diff"] == pytest.approx(true)
    assert p["n"] == n - 1 and p["n_only_baseline"] == 1 and p["n_only_system"] == 0
    assert 0 < p["ci_low"] < 0.1 < p["ci_high"] and p["ci_high"] - p["ci_low"] < 0.03
    assert p["better"] == "b" and p["p_diff_gt_0"] == 1.0
    ca, cb = bootstrap_ci(base, **BOOT), bootstrap_ci(other, **BOOT)
    assert ca["ci_high"] > cb["ci_low"]  # unpaired intervals overlap
    same = pair_rows([ts], ["a", "b"], {("set", "a"): recs[("set", "a")], ("set", "b"): recs[("set", "a")]}, [METRIC], BOOT)
    assert same[0]["mean_diff"] == 0.0 and same[0]["better"] == "neither"
    first = pair_rows([ts], ["a", "b", "c"], recs, [METRIC], BOOT, pairs="first")
    assert [(r["system"], r["baseline"]) for r in first] == [("b", "a"), ("c", "a")]
    against_b = pair_rows([ts], ["a", "b", "c"], recs, [METRIC], BOOT, pairs="b")  # e.g. every system vs ns2
    assert [(r["system"], r["baseline"]) for r in against_b] == [("a", "b"), ("c", "b")]
    assert against_b[0]["mean_diff"] == pytest.approx(-true)
    with pytest.raises(ValueError, match=r"report.pairs: expected all, first, none or one of the systems \['a', 'b'\], got 'ns2'"):
        pair_rows([ts], ["a", "b"], recs, [METRIC], BOOT, pairs="ns2")


def test_journal_torn_tail_and_dedup(tmp_path):
    j = RecordJournal(tmp_path / "sys.jsonl")
    j.append({"id": "a", "status": "failed", "scores": {}})
    j.append({"id": "b", "status": "ok", "scores": {"m": {"k": float("nan")}}})
    with open(j.path, "a") as f:
        f.write('{"id": "c", "sta')
    j = RecordJournal(tmp_path / "sys.jsonl")  # reopening drops the torn line
    j.append({"id": "a", "status": "ok", "scores": {}})
    (tmp_path / "sys.shard-01-of-02.jsonl").write_text('{"id": "a", "status": "failed", "scores": {}}\n')
    recs, dropped = read_records(tmp_path, "sys")
    assert sorted(recs) == ["a", "b"] and recs["a"]["status"] == "ok" and dropped == 2
    assert np.isnan(recs["b"]["scores"]["m"]["k"])  # written as null, read as NaN
    assert "null" in j.path.read_text() and "NaN" not in j.path.read_text()
    assert dedup([{"id": "x", "status": "failed", "n": 1}, {"id": "x", "status": "failed", "n": 2}])[0]["x"]["n"] == 2
