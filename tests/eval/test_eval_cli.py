"""`ns2 eval` end to end on the mini corpus, offline with the fallback backbones."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys

import pytest
from eval_helpers import eval_conf

from ns2.data.manifest import read_manifest
from ns2.eval.builders import build_synthetic
from ns2.eval.protocol import read_protocol
from ns2.metrics import MissingBackboneError


def test_ns2_eval_offline_with_fallbacks(mini, tmp_path):
    data_dir = mini.parent.parent  # <data>/synthetic-mini/prepared
    folder = tmp_path / "other"
    folder.mkdir()
    args = ["eval", "protocol=synthetic", "protocol.size=mini", f"paths.root_dir={tmp_path}", f"paths.data_dir={data_dir}",
            "systems=[groundtruth,folder]", f"system.folder.dir={folder}", "system.folder.name=copy",
            "system.folder.same_timing_as_reference=true", "fallbacks=true", "max_items=2", f"out_dir={tmp_path}/report",
            "report.n_resamples=200", f"cache_dir={tmp_path}/cache"]
    lst = tmp_path / "eval" / "protocols" / "synthetic-mini.jsonl"
    env = {**os.environ, "NS2_ROOT": str(tmp_path)}
    # the list does not exist yet: it is built from the manifest (seeded) by the run, as here
    expected = build_synthetic(read_manifest(mini / "manifest.jsonl"), prompt_seconds=3.0, seed=0)
    shutil.copy(mini / expected[0].gt_wav, folder / f"{expected[0].id}.wav")  # the second output is missing
    out = subprocess.run([sys.executable, "-m", "ns2.cli.main", *args], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert [i.to_dict() for i in read_protocol(lst)] == [i.to_dict() for i in expected]
    report = tmp_path / "report"
    with open(report / "summary.csv", newline="") as f:
        rows = {(r["system"], r["metric"]): r for r in csv.DictReader(f)}
    for key in ("sim_resemblyzer_o", "wer_pocketsphinx/seed", "wer_pocketsphinx/whisper_basic",
                "wer_pocketsphinx/seed/corpus", "pitch_mean_diff", "dur_kurt_diff", "pitch_corr", "vuv_f1", "dnsmos_ovrl"):
        assert rows[("groundtruth", key)]["n"] == "2", key
        assert (rows[("copy", key)]["n"], rows[("copy", key)]["n_failed"]) == ("1", "1"), key
    assert rows[("groundtruth", "sim_resemblyzer_o")]["fallback_for"] == "sim_wavlm_large_ecapa;sim_wavlm_tdnn"
    assert float(rows[("groundtruth", "pitch_corr")]["mean"]) == pytest.approx(1.0)
    assert not any(k[1].startswith("utmos") for k in rows)
    md = (report / "report.md").read_text()
    assert "Offline fallbacks in use" in md and "optional metric `utmos` not scored" in md and "copy − groundtruth" in md
    assert "no output for item" in md and (report / "plots" / "sim_resemblyzer_o.png").is_file()
    assert (report / "records" / "synthetic-mini" / "groundtruth.jsonl").read_text().count("\n") == 2


def test_missing_backbone_without_fallbacks_is_one_clear_error(mini, mini_list, tmp_path):
    from ns2.eval.runner import run_eval

    conf = eval_conf(mini, mini_list, tmp_path / "run", systems=["gt"],
                     system_defs={"gt": {"_target_": "ns2.inference.systems.GroundTruthSystem"}},
                     metrics=["sim_wavlm_tdnn"])
    with pytest.raises(MissingBackboneError, match=r"wavlm_base_plus_sv.*python -m ns2.metrics download.*allow fallbacks"):
        run_eval(conf)


def test_ns2_compare_scores_the_paper_rows_against_ns2(mini, tmp_path):
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
    from tiny_synth import save_tiny_checkpoint

    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt")
    codec = Path(__file__).parents[1] / "codec" / "fixtures" / "dac_tiny_16k.pth"
    args = ["compare", "protocol=synthetic", "protocol.size=mini", f"paths.root_dir={tmp_path}",
            f"paths.data_dir={mini.parent.parent}", f"system.ns2.path={ckpt}", f"system.resynth.codec={codec}",
            "metrics=[prosody]", "optional_metrics=[]", "max_items=2", f"out_dir={tmp_path}/report",
            "report.n_resamples=200", "report.plots=false", f"cache_dir={tmp_path}/cache"]
    out = subprocess.run([sys.executable, "-m", "ns2.cli.main", *args], cwd=tmp_path,
                         env={**os.environ, "NS2_ROOT": str(tmp_path)}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    with open(tmp_path / "report" / "summary.csv", newline="") as f:
        rows = {(r["system"], r["metric"]): r for r in csv.DictReader(f)}
    for system in ("groundtruth", "resynth", "ns2"):
        for key in ("pitch_mean_diff", "pitch_std_diff", "pitch_skew_diff", "pitch_kurt_diff",
                    "dur_mean_diff", "dur_std_diff", "dur_skew_diff", "dur_kurt_diff"):
            r = rows[(system, key)]  # a random tiny NS2 may give equal durations: skewness undefined (nan)
            assert (int(r["n"]) + int(r["n_nan"]), r["n_failed"], r["n_skipped"]) == (2, "0", "0"), (system, key)
    assert rows[("resynth", "pitch_mean_diff")]["n"] == "2"
    assert rows[("ns2", "rtf")]["n"] == rows[("resynth", "rtf")]["n"] == "2"
    assert rows[("groundtruth", "rtf")]["n_skipped"] == "2"
    with open(tmp_path / "report" / "pairs.csv", newline="") as f:
        combos = {(r["system"], r["baseline"]) for r in csv.DictReader(f)}
    assert combos == {("groundtruth", "ns2"), ("resynth", "ns2")}
    md = (tmp_path / "report" / "report.md").read_text()
    assert "groundtruth − ns2" in md and "| rtf ↓ | wall clock" in md



def test_ns2_compare_errors_are_one_line_named_by_the_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ns2.cli.main", "compare", f"paths.root_dir={tmp_path}"], cwd=tmp_path,
                         env={**os.environ, "NS2_ROOT": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ns2 compare: test list ") and "prepare the corpus first" in last, out.stderr[-2000:]
