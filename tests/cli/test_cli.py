"""The `ns2` command line: help, Hydra errors without tracebacks, multirun."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ns2(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NS2_ROOT": str(cwd), "HYDRA_FULL_ERROR": ""}
    env.pop("HYDRA_FULL_ERROR")
    return subprocess.run([sys.executable, "-m", "ns2.cli.main", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_help_lists_every_command(tmp_path):
    out = ns2("--help", cwd=tmp_path)
    assert out.returncode == 0
    for cmd in ("prep", "train", "synth", "eval", "bench", "summary", "demo"):
        assert f"  {cmd} " in out.stdout


def test_unknown_command_is_one_line(tmp_path):
    out = ns2("fly", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown command 'fly'" in out.stderr


def test_bad_override_gives_hydra_message_not_traceback(tmp_path):
    out = ns2("prep", "data.nonexistent_key=1", cwd=tmp_path)
    assert out.returncode != 0
    assert "Could not override 'data.nonexistent_key'" in out.stderr
    assert "Traceback" not in out.stderr
    out = ns2("prep", "data=nope", cwd=tmp_path)
    assert "Could not find 'data/nope'" in out.stderr and "Traceback" not in out.stderr


def test_multirun_sweeps(tmp_path):
    out = ns2("summary", "-m", "data.size=mini,small", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "synthetic-mini" in out.stdout and "synthetic-small" in out.stdout
    assert (tmp_path / "outputs" / "multirun").is_dir()


def test_cfg_job_prints_config(tmp_path):
    out = ns2("train", "--cfg", "job", "trainer=cpu", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "_target_: lightning.Trainer" in out.stdout
