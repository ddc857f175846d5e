"""Bad input to each `ns2` command: one line naming the input and what was expected, exit status 1,
no traceback, and nothing already written is touched."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]


def ns2(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NS2_ROOT": str(cwd), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "ns2.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def error_line(out: subprocess.CompletedProcess, command: str) -> str:
    """The command's error: the last line of stderr; the lines before it may only be log records."""
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith(f"ns2 {command}: "), out.stderr[-2000:]
    assert all(ln.startswith(("[", "INFO", "WARNING", "wandb")) for ln in lines[:-1]), out.stderr[-2000:]
    return lines[-1]


@pytest.fixture()
def files(tmp_path):
    sf.write(tmp_path / "clip.wav", (0.1 * np.sin(np.arange(16000) * 0.05)).astype("float32"), 16000)
    (tmp_path / "a_folder").mkdir()
    bad = tmp_path / "binary" / "prepared"
    bad.mkdir(parents=True)
    (bad / "manifest.jsonl").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "folder_manifest" / "prepared" / "manifest.jsonl").mkdir(parents=True)
    return tmp_path


CASES = {
    "prep: the clip folder is missing": (
        ["prep", "data=my_voice", "data.corpus.root=no_such_folder"], "prep", ["no_such_folder does not exist", "folder of your clips"]),
    "prep: the clip folder is a file": (
        ["prep", "data=my_voice", "data.corpus.root=clip.wav"], "prep", ["clip.wav is a file"]),
    "train: a required setting left out": (
        ["train", "experiment=ns2/tiny", "trainer=cpu"], "train", ["required setting not given: codec.source"]),
    "train: no manifest": (
        ["train", "experiment=aligner/tiny", "trainer=cpu", "data.root={tmp}/nothing"], "train", ["manifest not found", "ns2 prep"]),
    "train: the manifest is binary": (
        ["train", "experiment=aligner/tiny", "trainer=cpu", "data.root={tmp}/binary"], "train", ["not UTF-8 text", "JSONL manifest"]),
    "train: the manifest is a folder": (
        ["train", "experiment=aligner/tiny", "trainer=cpu", "data.root={tmp}/folder_manifest"], "train", ["is a directory"]),
    "eval: the test list is audio": (
        ["eval", "fallbacks=true", "protocol.lists=[{{name: x, path: {tmp}/clip.wav}}]"], "eval", ["clip.wav: not UTF-8 text", "test list"]),
    "eval: the test list is a folder": (
        ["eval", "fallbacks=true", "protocol.lists=[{{name: x, path: {tmp}/a_folder}}]"], "eval", ["a_folder"]),
    "synth: the checkpoint is a folder": (
        ["synth", "ckpt=a_folder", "text=Hello.", "prompt=clip.wav", "out=o.wav"], "synth", ["a_folder: is a directory"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line(files, case):
    args, command, expected = CASES[case]
    keep = files / "outputs" / "earlier.txt"  # something an earlier run wrote
    keep.parent.mkdir()
    keep.write_text("earlier results")
    line = error_line(ns2(*[a.format(tmp=files) for a in args], cwd=files), command)
    for text in expected:
        assert text in line, line
    assert keep.read_text() == "earlier results"
    assert not (files / "o.wav").exists()


def test_synth_text_too_long_or_blank_leaves_the_output_alone(tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "inference"))
    from tiny_synth import SR, build_tiny, tone

    from ns2.cli.synth import SynthUsageError, run_synth

    sf.write(tmp_path / "prompt.wav", tone(1.0), SR)
    out = tmp_path / "o.wav"
    out.write_bytes(b"an earlier take")
    synth = build_tiny()
    base = {"prompt": str(tmp_path / "prompt.wav"), "out": str(out), "max_text_chars": 1000}
    with pytest.raises(SynthUsageError, match=r"text has 5000 characters, more than max_text_chars=1000"):
        run_synth({**base, "text": "word " * 1000}, synth)
    with pytest.raises(SynthUsageError, match=r"mode=tts needs text"):
        run_synth({**base, "text": "   "}, synth)
    assert out.read_bytes() == b"an earlier take"
    assert run_synth({**base, "text": "word " * 10, "max_text_chars": None}, synth)["ok"] == 1
