"""The per-system study of an evaluation folder: completion, EOS rate, length against the ground truth, RTF."""
from __future__ import annotations

import json
import math

import pytest

from ns2.eval.records import RecordJournal
from ns2.eval.studies.systems import main, study, system_stats


def rec(i: str, status: str = "ok", seconds: float | None = None, rtf: float | None = None, error: str | None = None) -> dict:
    r = {"id": i, "status": status, "error": error}
    if seconds is not None:
        r["output_seconds"] = seconds
    if rtf is not None:
        r["rtf"] = rtf
    return r


def test_system_stats_counts_failures_and_lengths():
    ref = {"a": rec("a", seconds=2.0), "b": rec("b", seconds=4.0), "c": rec("c", seconds=1.0), "d": rec("d", seconds=3.0)}
    hyp = {"a": rec("a", seconds=4.0, rtf=0.5), "b": rec("b", seconds=2.0, rtf=1.5),
           "c": rec("c", "failed", error="no EOS: the AR did not end within its guard of 80 frames"),
           "d": rec("d", "failed", error="prompt: missing file")}
    s = system_stats(hyp, ref, n_items=5)  # one item not scored at all
    assert (s["n_completed"], s["completed"], s["eos_rate"]) == (2, 0.4, 0.8)
    assert s["failures"] == {"no EOS": 1, "prompt": 1}
    assert s["length_ratio"] == pytest.approx(1.25) and s["length_abs_log_ratio"] == pytest.approx(math.log(2))
    assert s["length_mae_s"] == pytest.approx(2.0) and s["rtf_mean"] == pytest.approx(1.0)
    assert (s["length_ratio_min"], s["length_ratio_max"]) == (pytest.approx(0.5), pytest.approx(2.0))
    assert s["length_within_20pct"] == pytest.approx(0.0)
    assert system_stats(ref, None, 4)["length_ratio"] is None
    with pytest.raises(ValueError, match="n_items"):
        system_stats(hyp, ref, 0)


def test_study_reads_an_eval_folder(tmp_path, capsys):
    prov = {"commit": "abc", "systems": {"groundtruth": {}, "valle": {}},
            "protocol": {"lists": [{"name": "toy", "items": 2}]}}
    (tmp_path / "provenance.json").write_text(json.dumps(prov))
    folder = tmp_path / "records" / "toy"
    for label, rows in {"groundtruth": [rec("x", seconds=1.0), rec("y", seconds=2.0)],
                        "valle": [rec("x", seconds=1.5, rtf=0.2), rec("y", "failed", error="no EOS: guard")]}.items():
        j = RecordJournal(folder / f"{label}.jsonl")
        for r in rows:
            j.append(r)
    res = study(tmp_path)
    v = res["per_test_set"]["toy"]["valle"]
    assert (v["eos_rate"], v["length_ratio"], v["rtf_median"]) == (0.5, 1.5, 0.2)
    assert res["per_test_set"]["toy"]["groundtruth"]["completed"] == 1.0
    main([str(tmp_path), "--out", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text())["report_commit"] == "abc"
    with pytest.raises(SystemExit, match="no provenance.json"):
        main([str(tmp_path / "missing")])
