"""`ns2 synth`: single and list runs (tiny synthesizer passed in), argument errors, checkpoint errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_synth import SR, save_tiny_checkpoint, tone

from ns2.cli.synth import SynthUsageError, quote_values, run_synth

REPO = Path(__file__).resolve().parents[2]


def ns2_synth(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NS2_ROOT": str(cwd), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "ns2.cli.main", "synth", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture()
def wavs(tmp_path):
    sf.write(tmp_path / "prompt.wav", tone(2.0, 44100, channels=2).T, 44100)
    sf.write(tmp_path / "source.wav", tone(1.2, f0=120.0), SR)
    return tmp_path


def test_single_tts_writes_the_wav(synth, wavs, capsys):
    out = wavs / "o" / "hello.wav"
    summary = run_synth({"text": "Hello, world.", "prompt": str(wavs / "prompt.wav"), "out": str(out), "seed": 2}, synth)
    wav, sr = sf.read(out, dtype="float32")
    assert sr == SR and len(wav) == synth.last_info["frames"] * 200 > 0
    assert summary["ok"] == 1 and summary["failed"] == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "RTF" in printed
    assert [p.name for p in out.parent.iterdir()] == ["hello.wav"]  # no temporary file left behind


def test_list_mode_reports_bad_lines_and_continues(synth, wavs):
    lines = [
        {"id": "a", "text": "Hello there.", "prompt": "prompt.wav"},
        {"id": "b", "text": "Missing prompt.", "prompt": "nope.wav"},
        "not json",
        {"id": "c", "text": "", "prompt": "prompt.wav"},
        {"id": "d", "text": "Again.", "prompt": str(wavs / "prompt.wav"), "seed": 7},
        {"id": "../x", "text": "Escape.", "prompt": "prompt.wav"},
    ]
    (wavs / "items.jsonl").write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    out_dir = wavs / "outs"
    summary = run_synth({"list": str(wavs / "items.jsonl"), "out_dir": str(out_dir)}, synth)
    assert (summary["ok"], summary["failed"]) == (2, 4)
    assert sorted(p.name for p in out_dir.glob("*.wav")) == ["a.wav", "d.wav"]
    log = [json.loads(x) for x in (out_dir / "synth.jsonl").read_text().splitlines()]
    assert [r["line"] for r in log] == [1, 2, 3, 4, 5, 6]
    status = {r["line"]: r for r in log}
    assert status[1]["status"] == "ok" and status[5]["seed"] == 7 and status[1]["rtf"] > 0
    assert "nope.wav" in status[2]["error"] and "not valid JSON" in status[3]["error"]
    assert "needs text" in status[4]["error"] and "not a usable file name" in status[6]["error"]


def test_vc_and_se_modes(synth, wavs):
    common = {"source": str(wavs / "source.wav"), "prompt": str(wavs / "prompt.wav")}
    run_synth({"mode": "vc", "source_text": "Hello world.", "out": str(wavs / "vc.wav"), **common}, synth)
    run_synth({"mode": "se", "text": "Hello world.", "out": str(wavs / "se.flac"), **common}, synth)
    frames = int(np.ceil(1.2 * SR / 200))
    for name in ("vc.wav", "se.flac"):
        wav, sr = sf.read(wavs / name)
        assert sr == SR and len(wav) == frames * 200
    with pytest.raises(SynthUsageError, match="mode=vc needs source_text"):
        run_synth({"mode": "vc", "out": str(wavs / "x.wav"), **common}, synth)


def test_sing_mode_follows_the_score(synth, wavs):
    """mode=sing: a MusicXML melody with lyrics sung with the score's timing and (transposed) pitch."""
    music21 = pytest.importorskip("music21")
    s = music21.stream.Stream([music21.tempo.MetronomeMark(number=120)])
    for p, text, syl in (("A3", "hel", "begin"), ("C4", "lo", "end"), ("E4", "there", "single")):
        n = music21.note.Note(p, quarterLength=1)
        n.lyrics = [music21.note.Lyric(text=text, syllabic=syl)]
        s.append(n)
    score = wavs / "song.musicxml"
    s.write("musicxml", fp=str(score))
    common = {"mode": "sing", "score": str(score), "prompt": str(wavs / "prompt.wav")}
    run_synth({**common, "out": str(wavs / "sung.wav")}, synth)
    info = dict(synth.last_info)
    frame_rate = SR / 200
    assert info["frames"] == round(1.5 * frame_rate) == sum(info["durations"])
    wav, sr = sf.read(wavs / "sung.wav")
    assert len(wav) == info["frames"] * 200
    run_synth({**common, "transpose": 12, "out": str(wavs / "up.wav")}, synth)
    up = np.asarray(synth.last_info["log_f0"])
    assert synth.last_info["durations"] == info["durations"]
    assert np.allclose(up - np.asarray(info["log_f0"]), np.log(2.0), atol=1e-4)  # an octave up, frame by frame
    # pitch from a sung reference: a 330 Hz tone replaces the written notes on the sung frames
    t = np.arange(int(0.8 * SR)) / SR
    sf.write(wavs / "ref.wav", (0.5 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), SR)
    run_synth({**common, "pitch_ref": str(wavs / "ref.wav"), "out": str(wavs / "ref_sung.wav")}, synth)
    ref = np.asarray(synth.last_info["log_f0"])
    assert synth.last_info["durations"] == info["durations"]
    sung = np.asarray(info["log_f0"]) > 0
    assert np.median(np.abs(ref[sung] - np.log(330.0))) < 0.02
    silent = wavs / "silent.wav"
    sf.write(silent, np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(SynthUsageError, match="pitch_ref"):
        run_synth({**common, "pitch_ref": str(silent), "out": str(wavs / "x.wav")}, synth)
    (wavs / "x.mid").write_bytes(b"MThd")
    with pytest.raises(SynthUsageError, match="needs its lyrics"):
        run_synth({**common, "score": str(wavs / "x.mid"), "out": str(wavs / "x.wav")}, synth)
    with pytest.raises(SynthUsageError, match="mode=sing needs score"):
        run_synth({"mode": "sing", "prompt": str(wavs / "prompt.wav"), "out": str(wavs / "x.wav")}, synth)


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"text": "Hi.", "prompt": "p.wav", "out": "o.wav"}, "ckpt is required"),
        ({"ckpt": "m.ckpt", "prompt": "p.wav", "out": "o.wav"}, "needs text"),
        ({"ckpt": "m.ckpt", "text": "Hi.", "out": "o.wav"}, "needs prompt"),
        ({"ckpt": "m.ckpt", "text": "Hi.", "prompt": "nope.wav", "out": "o.wav"}, "prompt file not found"),
        ({"ckpt": "m.ckpt", "text": "Hi.", "mode": "dance"}, "expected one of tts, vc, se, sing"),
    ],
)
def test_usage_errors_are_one_line(cfg, match):
    with pytest.raises(SynthUsageError, match=match) as e:
        run_synth(cfg)
    assert "\n" not in str(e.value)


def test_bad_output_extension(wavs):
    with pytest.raises(SynthUsageError, match="expected one of .wav"):
        run_synth({"ckpt": "m.ckpt", "text": "Hi.", "prompt": str(wavs / "prompt.wav"), "out": str(wavs / "o.mp3")})


def test_synthesis_error_of_a_single_item_is_one_line(synth, wavs):
    with pytest.raises(ValueError, match="nothing to speak"):
        run_synth({"text": "?!", "prompt": str(wavs / "prompt.wav"), "out": str(wavs / "o.wav")}, synth)
    assert not (wavs / "o.wav").exists()


def test_missing_checkpoint_file_is_one_line(wavs):
    with pytest.raises(ValueError, match="no such checkpoint file"):
        run_synth({"ckpt": str(wavs / "none.ckpt"), "text": "Hi.", "prompt": str(wavs / "prompt.wav"), "out": str(wavs / "o.wav")})


def test_quoted_values_parse_back_to_themselves():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    for text in ["Hello, world.", "it's [a] {b} = c", "cost ${x}", "back\\", ""]:
        arg = quote_values([f"text={text}"])[0]
        assert OmegaConf.create({"v": parser.parse_override(arg).value()}).v == text
    assert quote_values(["steps=4", "text=null", "text='x'"]) == ["steps=4", "text=null", "text='x'"]


def test_command_line_without_ckpt_is_one_line(wavs):
    out = ns2_synth("text=Hello, world.", "prompt=prompt.wav", cwd=wavs)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "ns2 synth: ckpt is required: pass ckpt=PATH (a NaturalSpeech 2 training checkpoint)"


def test_wrong_kind_checkpoint_is_one_line(wavs):
    torch.save({"state_dict": {}}, wavs / "codec.ckpt")
    with pytest.raises(ValueError) as e:
        run_synth({"ckpt": str(wavs / "codec.ckpt"), "text": "Hi.", "prompt": str(wavs / "prompt.wav"), "out": str(wavs / "o.wav")})
    assert "\n" not in str(e.value) and "codec.ckpt" in str(e.value)
    assert not (wavs / "o.wav").exists()


@pytest.mark.slow  # the subprocess imports Lightning (ns2.lit) to read the checkpoint
def test_command_line_wrong_kind_checkpoint_is_one_line(wavs):
    torch.save({"state_dict": {}}, wavs / "codec.ckpt")
    out = ns2_synth("ckpt=codec.ckpt", "text=Hello.", "prompt=prompt.wav", "out=o.wav", cwd=wavs)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ns2 synth: ") and "codec.ckpt" in lines[0]
    assert not (wavs / "o.wav").exists()


def test_run_with_a_real_checkpoint_and_overrides(wavs, capsys):
    save_tiny_checkpoint(wavs / "tiny.ckpt", steps=3)
    cfg = {"ckpt": str(wavs / "tiny.ckpt"), "text": "Hello.", "prompt": str(wavs / "prompt.wav"),
           "out": str(wavs / "o.wav"), "sampler": "dpm_solver_pp", "steps": 2, "device": "cpu", "tau": None}
    assert run_synth(cfg)["ok"] == 1
    assert "DPMSolverPP(steps=2" in capsys.readouterr().out and (wavs / "o.wav").is_file()


@pytest.mark.slow
def test_command_line_with_a_real_checkpoint(wavs):
    save_tiny_checkpoint(wavs / "tiny.ckpt")
    out = ns2_synth("ckpt=tiny.ckpt", "text=Hello, [big] world.", "prompt=prompt.wav", "out=out/hello.wav", "steps=2",
                    "device=cpu", cwd=wavs)
    assert out.returncode == 0, out.stderr
    wav, sr = sf.read(wavs / "out" / "hello.wav")
    assert sr == SR and len(wav) > 0 and "wrote out/hello.wav" in out.stdout and "RTF" in out.stdout
