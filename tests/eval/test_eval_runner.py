"""The runner on the mini corpus with cheap metrics: resume, failures, shards, SIM-r / aligner inputs."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
from eval_helpers import ScriptedSystem, eval_conf

from ns2.eval.records import read_records
from ns2.eval.report import PAIR_COLUMNS, SUMMARY_COLUMNS
from ns2.eval.runner import run_eval
from ns2.utils.io import read_jsonl

GT = {"_target_": "ns2.inference.systems.GroundTruthSystem"}


def scripted(mini, **kw):
    return {"_target_": "eval_helpers.ScriptedSystem", "root": str(mini), **kw}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_interrupted_run_resumes(mini, mini_list, tmp_path):
    out = tmp_path / "run"
    conf = eval_conf(mini, mini_list, out, systems=["scripted"], system_defs={"scripted": scripted(mini, interrupt_after=5)})
    with pytest.raises(KeyboardInterrupt):
        run_eval(conf)
    journal = out / "records" / "synthetic-mini" / "scripted.jsonl"
    done = [r["id"] for r in read_jsonl(journal)]
    assert len(done) == 5 and not (out / "report.md").exists()
    with open(journal, "a") as f:
        f.write('{"id": "torn", "sta')  # a crash in the middle of a line
    conf["system"]["scripted"]["interrupt_after"] = None
    res = run_eval(conf)
    called = ScriptedSystem.last.calls
    assert res["complete"] and res["scored"] == 7 and len(called) == 7 and not set(called) & set(done)
    recs = read_jsonl(journal)
    assert len(recs) == 12 and len({r["id"] for r in recs}) == 12
    assert run_eval(conf)["scored"] == 0  # nothing left: a re-run only rewrites the report
    (row,) = [r for r in rows(out / "summary.csv") if r["metric"] == "test_loudness_db"]
    assert (row["n"], row["n_failed"], row["n_items"]) == ("12", "0", "12")


def test_missing_outputs_and_failures_are_counted(mini, mini_list, tmp_path):
    from ns2.eval.protocol import read_protocol

    items = read_protocol(mini_list)
    folder = tmp_path / "outputs"
    folder.mkdir()
    for it in items[2:]:
        shutil.copy(mini / it.gt_wav, folder / f"{it.id}.wav")
    (folder / f"{items[2].id}.wav").write_bytes(b"broken")  # unreadable: a failure too
    out = tmp_path / "run"
    defs = {"groundtruth": GT, "folder": {"_target_": "ns2.inference.systems.FolderSystem", "dir": str(folder),
                                          "same_timing_as_reference": True},
            "scripted": scripted(mini, fail_ids=[items[5].id])}
    conf = eval_conf(mini, mini_list, out, systems=["groundtruth", "folder", "scripted"], system_defs=defs,
                     metrics=["test_loudness", "test_resynth"])
    run_eval(conf)
    summ = {(r["system"], r["metric"]): r for r in rows(out / "summary.csv")}
    assert summ[("folder", "test_loudness_db")]["n_failed"] == "3" and summ[("folder", "test_loudness_db")]["n"] == "9"
    assert summ[("scripted", "test_loudness_db")]["n_failed"] == "1"
    assert summ[("groundtruth", "test_loudness_db")]["n_failed"] == "0"
    r = summ[("groundtruth", "test_resynth")]  # no codec given: skipped on every item, with the reason
    assert (r["n"], r["n_skipped"]) == ("0", "12")
    recs, _ = read_records(out / "records" / "synthetic-mini", "folder")
    assert "no output for item" in recs[items[0].id]["error"] and "cannot read" in recs[items[2].id]["error"]
    pairs = {(p["system"], p["baseline"], p["metric"]): p for p in rows(out / "pairs.csv")}
    p = pairs[("folder", "groundtruth", "test_loudness_db")]
    assert (p["n"], p["n_only_baseline"], p["n_only_system"]) == ("9", "3", "0")
    md = (out / "report.md").read_text()
    assert "3 failed item(s)" in md and "no codec given" in md
    conf["retry_failed"] = True
    conf["system"]["scripted"]["fail_ids"] = []
    conf["systems"] = ["scripted"]
    assert run_eval(conf)["scored"] == 1  # only the failed item is tried again


def test_report_has_every_column(mini, mini_list, tmp_path):
    out = tmp_path / "run"
    conf = eval_conf(mini, mini_list, out, systems=["groundtruth", "scripted"],
                     system_defs={"groundtruth": GT, "scripted": scripted(mini)},
                     metrics=["test_loudness", "prosody"], max_items=3)
    conf["report"]["plots"] = True
    res = run_eval(conf)
    with open(out / "summary.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == SUMMARY_COLUMNS
    with open(out / "pairs.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == PAIR_COLUMNS
    summary = rows(out / "summary.csv")
    from ns2.metrics.prosody import GT_KEYS, PROMPT_KEYS

    keys = {"test_loudness_db", *PROMPT_KEYS, *GT_KEYS, "rtf"}
    assert {(r["system"], r["metric"]) for r in summary} == {(s, k) for s in ("groundtruth", "scripted") for k in keys}
    for r in summary:
        assert all(r[c] != "" for c in SUMMARY_COLUMNS if c not in ("fallback_for", "higher_is_better"))
        assert sum(int(r[c]) for c in ("n", "n_failed", "n_nan", "n_skipped", "n_unscored")) == int(r["n_items"]) == 3
    gt = {r["metric"]: r for r in summary if r["system"] == "groundtruth"}
    assert float(gt["pitch_corr"]["mean"]) == pytest.approx(1.0) and float(gt["f0_rmse_cents"]["mean"]) == 0.0
    sc = {r["metric"]: r for r in summary if r["system"] == "scripted"}
    # the real-time factor: timed for a system that synthesizes, not for one that looks outputs up
    assert int(sc["rtf"]["n"]) == 3 and float(sc["rtf"]["mean"]) > 0 and sc["rtf"]["backbone"].startswith("wall clock")
    assert int(gt["rtf"]["n_skipped"]) == 3
    assert float(sc["test_loudness_db"]["mean"]) == pytest.approx(float(gt["test_loudness_db"]["mean"]) - 6.0206, abs=1e-3)
    pairs = {p["metric"]: p for p in rows(out / "pairs.csv")}
    assert float(pairs["test_loudness_db"]["mean_diff"]) == pytest.approx(-6.0206, abs=1e-3)
    md = (out / "report.md").read_text()
    assert "| test_loudness_db" in md and "groundtruth" in md and "scripted − groundtruth" in md
    assert (out / "plots" / "test_loudness_db.png").stat().st_size > 1000
    prov = json.loads((out / "provenance.json").read_text())
    assert {"commit", "config", "protocol", "systems", "metrics", "backbones", "seeds", "records", "runs"} <= set(prov)
    assert prov["protocol"]["lists"][0]["sha256"] and prov["backbones"][0]["package"] == "parselmouth"
    assert set(res["report"]) == {"summary", "pairs", "markdown", "provenance", "plots"}


def test_shards_gather_and_deduplicate(mini, mini_list, tmp_path):
    out = tmp_path / "run"
    conf = eval_conf(mini, mini_list, out, systems=["scripted"], system_defs={"scripted": scripted(mini)})
    first = run_eval({**conf, "shard": "0/2"})
    assert not first["complete"] and "report" not in first and first["scored"] == 6
    second = run_eval({**conf, "shard": "1/2"})
    assert second["complete"] and "report" in second and second["scored"] == 6
    folder = out / "records" / "synthetic-mini"
    a, b = folder / "scripted.shard-00-of-02.jsonl", folder / "scripted.shard-01-of-02.jsonl"
    with open(b, "a") as f:  # a padded distributed sampler scores an item twice
        f.write(a.read_text().splitlines()[0] + "\n")
    run_eval({**conf, "stage": "report"})
    (row,) = [r for r in rows(out / "summary.csv") if r["metric"] == "test_loudness_db"]
    assert row["n"] == "12"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["records"]["synthetic-mini/scripted"]["duplicates_dropped"] == 1


def test_shard_from_environment(monkeypatch):
    from ns2.eval.shard import resolve_shard, shard_items

    assert resolve_shard("1/3") == (1, 3) and resolve_shard(None) == (0, 1)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_shard("auto") == (2, 4)
    assert shard_items(list(range(10)), 2, 4) == [2, 6]
    with pytest.raises(ValueError, match="i/n"):
        resolve_shard("3/3")


def test_sim_r_codec_and_aligner_inputs(mini, mini_list, tmp_path):
    """A codec gives SIM-r's resynthesised prompt; an aligner gives durations for outputs with their own timing."""
    import torch

    from ns2.codec import RVQCodec
    from ns2.codec.load import save_codec
    from ns2.data.aligner.infer import Aligner, save_aligner
    from ns2.data.aligner.model import AlignerModel
    from ns2.data.aligner.tokens import unaligned_ids
    from ns2.modules.mel import MelSpectrogram
    from ns2.text import DEFAULT_SYMBOLS

    torch.manual_seed(0)
    codec = RVQCodec(sample_rate=16000, encoder_dim=4, encoder_rates=[2, 4, 5, 5], latent_dim=8, decoder_dim=16,
                     decoder_rates=[5, 5, 4, 2], n_codebooks=2, codebook_size=16, codebook_dim=4)
    save_codec(codec, tmp_path / "codec.pth")
    model = AlignerModel(len(DEFAULT_SYMBOLS), n_mels=80, hidden_dim=16, attn_dim=8, text_layers=1)
    save_aligner(tmp_path / "aligner.pt", Aligner(model, MelSpectrogram(), DEFAULT_SYMBOLS,
                                                  tuple(unaligned_ids(DEFAULT_SYMBOLS))))
    out = tmp_path / "run"
    system = scripted(mini)
    conf = eval_conf(mini, mini_list, out, systems=["scripted"], system_defs={"scripted": system},
                     metrics=["test_resynth", "prosody"], max_items=2,
                     sim_r={"codec": str(tmp_path / "codec.pth"), "n_q": None},
                     prosody={"aligner": str(tmp_path / "aligner.pt"), "frame_tolerance": 2})
    ScriptedSystem.same_timing_as_reference = False  # its durations must come from the aligner
    try:
        run_eval(conf)
    finally:
        ScriptedSystem.same_timing_as_reference = True
    summ = {r["metric"]: r for r in rows(out / "summary.csv")}
    assert summ["test_resynth"]["n"] == "2"
    assert summ["pitch_mean_diff"]["n"] == "2" and summ["dur_rmse"]["n"] == "2"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["runs"][0]["sim_r_codec"]["sha256"] and prov["runs"][0]["aligner"]["sha256"]


def test_system_reported_timing_scores_prosody(mini, mini_list, tmp_path):
    """A system that reports its own phoneme timing (reports_alignment) gets prosody scored without an
    aligner; the ground truth's own timing gives zero duration error, and the record says where it came from."""
    out = tmp_path / "run"
    system = {"_target_": "eval_helpers.TimedSystem", "root": str(mini), "gain": 1.0}
    conf = eval_conf(mini, mini_list, out, systems=["timed"], system_defs={"timed": system},
                     metrics=["prosody"], max_items=2)
    run_eval(conf)
    summ = {r["metric"]: r for r in rows(out / "summary.csv")}
    assert summ["dur_rmse"]["n"] == "2" and float(summ["dur_rmse"]["mean"]) == 0.0
    recs = read_jsonl(next((out / "records").rglob("timed.jsonl")))
    assert len(recs) == 2 and all("synthesis timing: reported by the system" in r.get("notes", []) for r in recs)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["systems"]["timed"]["reports_alignment"] is True


def test_without_reported_timing_prosody_is_skipped(mini, mini_list, tmp_path):
    out = tmp_path / "run"
    system = {"_target_": "eval_helpers.TimedSystem", "root": str(mini), "gain": 1.0}
    conf = eval_conf(mini, mini_list, out, systems=["timed"], system_defs={"timed": system},
                     metrics=["prosody"], max_items=1)
    import eval_helpers

    eval_helpers.TimedSystem.reports_alignment = False
    try:
        run_eval(conf)
    finally:
        eval_helpers.TimedSystem.reports_alignment = True
    recs = read_jsonl(next((out / "records").rglob("timed.jsonl")))
    assert "prosody" in recs[0]["skipped"]
