"""Codes as a preparation stage: `ns2 prep data.prep.codec=...` extracts, resumes and refuses bad codecs early."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ns2.codec import RVQCodec, save_codec
from ns2.data.codes import load_codes
from ns2.data.manifest import read_manifest
from ns2.data.stages import StageError

# fast settings: no worker processes, one utterance per encoder call, 4 shards of the 54 mini utterances
FAST = ["data.prep.num_workers=1", "data.prep.stages=[audio,durations]", "data.prep.codes.shard_size=16",
        "data.prep.codes.batch_frames=0", "data.prep.codes.num_workers=0", "data.prep.codes.accelerator=cpu"]


def small_codec(hop_rates=(2, 4, 5, 5), sample_rate=16000) -> RVQCodec:
    """Random weights; 16 kHz / hop 200 = the synthetic corpus's 80 frames/s."""
    torch.manual_seed(0)
    return RVQCodec(encoder_dim=4, encoder_rates=list(hop_rates), latent_dim=16, decoder_dim=16,
                    decoder_rates=list(reversed(hop_rates)), n_codebooks=3, codebook_size=16, codebook_dim=4,
                    quantizer_dropout=0.0, sample_rate=sample_rate).eval()


def prepared(tmp_path: Path) -> Path:
    return tmp_path / "data" / "synthetic-mini" / "prepared"


def test_prep_extracts_codes_and_resumes(compose, tmp_path, monkeypatch, capsys):
    from ns2.cli.prep import run_prep

    save_codec(small_codec(), tmp_path / "codecs" / "tiny.pth")
    monkeypatch.chdir(tmp_path / "codecs")  # a relative codec path resolves against the launch directory
    cfg = compose("prep", ["data.prep.codec=tiny.pth", *FAST])
    summary = run_prep(cfg)
    root = prepared(tmp_path)
    utts = read_manifest(root / "manifest.jsonl")
    codes = summary["codes"]
    assert codes["utterances"] == len(utts) == summary["utterances"] == 54
    assert codes["shards"] == codes["shards_written"] == 4 and codes["shards_skipped"] == 0
    assert codes["audio_seconds"] == pytest.approx(summary["hours"] * 3600, abs=0.1)
    assert codes["audio_seconds_per_second"] > 0 and codes["seconds"] > 0
    assert codes["codec"] == str(tmp_path / "codecs" / "tiny.pth")
    assert json.loads((root / "summary.json").read_text())["codes"]["shards_written"] == 4
    out = capsys.readouterr().out
    assert "codes: 54 utterances" in out and "4 shards (4 written, 0 skipped)" in out
    for u in utts:
        assert u.features["codes"].startswith("codes/shard-")
        assert u.num_frames == math.ceil(round(u.duration * 16000) / 200) == sum(u.durations)
        assert load_codes(u, root).shape == (3, u.num_frames)

    shards = sorted((root / "codes").glob("shard-*.npz"))
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    again = run_prep(cfg)["codes"]
    assert again["shards_written"] == 0 and again["shards_skipped"] == 4
    assert {p.name: p.stat().st_mtime_ns for p in shards} == mtimes
    assert all("codes" in u.features for u in read_manifest(root / "manifest.jsonl"))

    shards[1].unlink()  # an interrupted run: only the missing shard is encoded again
    third = run_prep(cfg)["codes"]
    assert third["shards_written"] == 1 and third["shards_skipped"] == 3
    assert {p.name: p.stat().st_mtime_ns for p in shards if p != shards[1]} == {
        k: v for k, v in mtimes.items() if k != shards[1].name}


@pytest.mark.parametrize("case", ["missing", "not_a_codec", "frame_rate"])
def test_bad_codec_fails_in_one_line_before_any_work(compose, tmp_path, case):
    from ns2.cli.prep import run_prep

    path = tmp_path / "codec.pth"
    if case == "not_a_codec":
        path.write_bytes(b"not a torch file")
    elif case == "frame_rate":
        save_codec(small_codec(hop_rates=(2, 5), sample_rate=8000), path)  # 800 frames/s
    expected = {"missing": "no such file", "not_a_codec": "expected an official DAC weight file",
                "frame_rate": "codec runs at 800 frames/s"}[case]
    cfg = compose("prep", [f"data.prep.codec={path}", *FAST])
    with pytest.raises(StageError, match=expected) as err:
        run_prep(cfg)
    message = str(err.value)
    assert "\n" not in message and (case == "frame_rate" or str(path) in message)
    assert not (tmp_path / "data").exists()  # nothing built, nothing prepared


def test_unknown_codes_option_is_refused(compose, tmp_path):
    from ns2.cli.prep import run_prep

    save_codec(small_codec(), tmp_path / "codec.pth")
    cfg = compose("prep", [f"data.prep.codec={tmp_path / 'codec.pth'}", "+data.prep.codes.shards=3", *FAST])
    with pytest.raises(StageError, match=r"unknown codes options \['shards'\]"):
        run_prep(cfg)
    assert not (tmp_path / "data").exists()
