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
