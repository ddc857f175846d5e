"""The aligner end to end on the synthetic mini corpus: the experiment configs, the durations stage
with ``durations_source=aligner``, and the plot/evaluate command line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ns2.data.manifest import read_manifest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def compose_train(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            return compose(config_name="train", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    """``<root>`` of the prepared synthetic mini corpus (audio, phonemes, corpus durations)."""
    from ns2.data.prepare import prepare
    from ns2.data.synthetic import SyntheticCorpus

    root = tmp_path_factory.mktemp("aligner") / "synthetic-mini"
    prepare(SyntheticCorpus(size="mini", seed=0), root, stages=["audio", "phonemes", "durations"], sample_rate=16000,
            hop_length=200, num_workers=1, durations_source="corpus", language="en-us", expected_rates=[22050])
    return root


@pytest.fixture(scope="module")
def checkpoint(mini, tmp_path_factory) -> Path:
    """A tiny aligner trained for a few steps with ``experiment=aligner/tiny``; its ``last.ckpt``."""
    from ns2.cli.train import run_train

    out = tmp_path_factory.mktemp("aligner_run")
    torch.set_num_threads(1)
    cfg = compose_train(["experiment=aligner/tiny", f"data.root={mini}", f"paths.root_dir={out}",
                         f"paths.output_dir={out}", "logger=csv", "trainer.max_steps=6",
                         "callbacks.model_checkpoint.every_n_train_steps=6", "++trainer.enable_progress_bar=false",
                         "++trainer.enable_model_summary=false"])
    run_train(cfg)
    ckpt = out / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return ckpt


def test_experiment_configs_compose(compose):
    for name in ("tiny", "small"):
        cfg = compose("train", [f"experiment=aligner/{name}"])
        assert cfg.model._target_ == "ns2.data.aligner.AlignerLit"
        assert list(cfg.data.datamodule.fields) == ["phonemes", "audio"]
        assert cfg.data.datamodule.max_frames_per_item is None and cfg.data.datamodule.prompt is False
        assert cfg.model.mel.hop_length == cfg.data.hop_length == 200
    assert compose("train", ["experiment=aligner/small"]).data.size == "small"


def test_fast_dev_run_of_the_tiny_experiment(compose, mini):
    from ns2.cli.train import run_train

    cfg = compose("train", ["experiment=aligner/tiny", "debug=fdr", f"data.root={mini}"])
    metrics = run_train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/forward_sum"]))
    assert 0.0 < metrics["val/path_confidence"] <= 1.0


def test_prep_with_the_aligner_writes_durations_that_cover_every_frame(compose, mini, checkpoint, tmp_path):
    import shutil

    from ns2.cli.prep import run_prep
    from ns2.eval.studies.aligner import evaluate_aligner

    root = tmp_path / "synthetic-mini"
    shutil.copytree(mini, root)
    before = {u.id: u for u in read_manifest(root / "prepared" / "manifest.jsonl")}
    cfg = compose("prep", ["data=synthetic", "data.size=mini", f"data.root={root}", "data.prep.num_workers=1",
                           "data.prep.stages=[audio,phonemes,durations]", "data.prep.durations_source=aligner",
                           f"+data.prep.options.aligner={checkpoint}"])
    summary = run_prep(cfg)
    assert summary["quarantined"] == 0 and summary["stages"]["audio"]["processed"] == 0  # earlier stages resumed
    utts = read_manifest(root / "prepared" / "manifest.jsonl")
    assert len(utts) == len(before) > 0
    boundary = 0
    changed = False
    for u in utts:
        u.validate()
        assert sum(u.durations) == u.num_frames == before[u.id].num_frames
        assert len(u.durations) == len(u.phonemes)
        assert all(d == 0 for d, p in zip(u.durations, u.phonemes) if p in ("|", ".", ",", "ˈ", "ˌ"))
        assert all(d >= 1 for d, p in zip(u.durations, u.phonemes) if p == "<sil>")
        assert 0.0 < u.extra["align_confidence"] <= 1.0
        boundary += u.phonemes.count("|")
        changed |= u.durations != before[u.id].durations
    assert boundary > 0 and changed  # the aligner, not the corpus times, made these
    # scored against its own durations, the aligner is exact
    res = evaluate_aligner(checkpoint, utts, root / "prepared", split=None)
    assert res["n_utterances"] == len(utts) and res["mean_boundary_error_ms"] == 0.0 and res["within_20ms"] == 1.0


def test_stage_quarantines_what_it_cannot_align(mini, checkpoint, tmp_path):
    from ns2.data.stages import DurationsStage, StageContext, StageError, run_stage

    ctx = StageContext(prepared=str(tmp_path / "prepared"), root=str(tmp_path))  # journals go to tmp_path
    good = read_manifest(mini / "prepared" / "manifest.jsonl")[0]
    good = good.replace(audio=str(good.audio_path(mini / "prepared")))
    short = good.replace(id="short", phonemes=good.phonemes * 40, word_index=None, phoneme_times=None, durations=None)
    unknown = good.replace(id="unknown", phonemes=["<sil>", "zz", "<sil>"], word_index=None, phoneme_times=None,
                           durations=None)
    missing = good.replace(id="missing", audio=str(tmp_path / "none.wav"))
    stage = DurationsStage(source="aligner", aligner=str(checkpoint))
    kept, bad = run_stage(stage, [good, short, unknown, missing], ctx)
    assert [u.id for u in kept] == [good.id] and sum(kept[0].durations) == kept[0].num_frames
    reasons = {q["id"]: q["reason"] for q in bad}
    assert set(reasons) == {"short", "unknown", "missing"}
    assert "too short" in reasons["short"] and "zz" in reasons["unknown"]
    assert all("\n" not in r and not r.startswith("utterance") for r in reasons.values())

    with pytest.raises(StageError, match="options.aligner"):
        DurationsStage(source="aligner").setup(ctx)
    with pytest.raises(StageError, match="not found"):
        DurationsStage(source="aligner", aligner=str(mini / "none.ckpt")).setup(ctx)
    with pytest.raises(StageError, match="8000 Hz"):
        DurationsStage(source="aligner", aligner=str(checkpoint)).setup(
            StageContext(prepared=str(mini / "prepared"), root=str(mini), sample_rate=8000, hop_length=100))


def test_plot_and_evaluate_command_line(mini, checkpoint, tmp_path, capsys):
    from ns2.data.aligner.__main__ import main
    from ns2.eval.studies.aligner import main as evaluate

    manifest = mini / "prepared" / "manifest.jsonl"
    utt = next(u for u in read_manifest(manifest) if u.split == "test")
    png = tmp_path / "fig.png"
    durations = main(["plot", str(checkpoint), str(manifest), utt.id, "--out", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(durations) == utt.num_frames and len(durations) == len(utt.phonemes)
    with pytest.raises(SystemExit, match="nope"):
        main(["plot", str(checkpoint), str(manifest), "nope", "--out", str(png)])

    out = tmp_path / "results.json"
    with pytest.raises(SystemExit):
        main(["evaluate", str(checkpoint), str(manifest)])  # scoring is a study, not an aligner command
    assert "python -m ns2.eval.studies.aligner" in capsys.readouterr().err
    evaluate([str(checkpoint), str(manifest), "--split", "test", "--out", str(out)])
    res = json.loads(out.read_text())
    n_test = sum(u.split == "test" for u in read_manifest(manifest))
    assert res["n_utterances"] == n_test and res["n_failed"] == 0 and res["split"] == "test"
    assert res["checkpoint"] == str(checkpoint) and res["manifest"] == str(manifest) and res["commit"]
    for prefix in ("", "uniform/"):
        assert res[f"{prefix}n_boundaries"] > 0
        assert 0.0 <= res[f"{prefix}within_20ms"] <= res[f"{prefix}within_50ms"] <= 1.0
        assert res[f"{prefix}median_boundary_error_ms"] % 6.25 == 0  # whole or half frames of 12.5 ms
    assert res["n_boundaries"] == res["uniform/n_boundaries"]
    assert res["train_steps"] == 6 and "config" not in res  # composed in-process: no .hydra folder


def test_provenance_reads_the_run_folder(checkpoint, tmp_path):
    import shutil

    from ns2.eval.studies.aligner import checkpoint_provenance

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("- experiment=aligner/tiny\n- logger=csv\n")
    shutil.copy(checkpoint, run / "checkpoints" / "last.ckpt")
    assert checkpoint_provenance(run / "checkpoints" / "last.ckpt") == {"train_steps": 6,
                                                                         "config": "experiment=aligner/tiny logger=csv"}
    assert checkpoint_provenance(tmp_path / "none.ckpt") == {}


def test_resume_key_follows_the_aligner_file_content(checkpoint, tmp_path):
    """Retraining the aligner into the same path changes the durations stage's resume key."""
    import shutil

    from ns2.data.manifest import Utterance
    from ns2.data.stages import DurationsStage, StageContext, stage_key

    path = tmp_path / "aligner.ckpt"
    shutil.copy(checkpoint, path)
    ctx = StageContext(prepared=str(tmp_path), root=str(tmp_path))
    utt = Utterance(id="u", audio="a.wav", sample_rate=16000, duration=1.0, speaker="s", text="a")
    first = DurationsStage(source="aligner", aligner=str(path))
    first.setup(ctx)
    with open(path, "ab") as f:  # same path, new content
        f.write(b"\0")
    second = DurationsStage(source="aligner", aligner=str(path))
    second.setup(ctx)
    assert first.config()["aligner_sha256"] != second.config()["aligner_sha256"]
    assert stage_key(first, ctx, utt) != stage_key(second, ctx, utt)
