"""``ns2 train``'s choice of checkpoint: ``ckpt_path`` checked before anything runs, ``resume=true``
taking the newest complete checkpoint of a named run folder, each refusal one line."""
from __future__ import annotations

import os
import time

import pytest
import torch

from test_cli import ns2


def write_ckpt(path, step: int, truncate: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step}, path)
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


def one_line_error(out) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_resume_without_a_named_folder_says_what_to_pass(tmp_path):
    line = one_line_error(ns2("train", "trainer=cpu", "resume=true", cwd=tmp_path))
    assert "resume=true needs the run's folder: pass run_name=" in line


@pytest.mark.parametrize("kind", ["truncated", "directory", "missing"])
def test_bad_ckpt_path_is_one_line_before_training(tmp_path, kind):
    target = tmp_path / "x.ckpt"
    if kind == "truncated":
        write_ckpt(target, 5, truncate=True)
    elif kind == "directory":
        target.mkdir()
    line = one_line_error(ns2("train", "trainer=cpu", f"ckpt_path={target}", cwd=tmp_path))
    assert line.startswith(f"ns2 train: ckpt_path={target}")
    assert {"truncated": "not a complete checkpoint", "directory": "is a directory",
            "missing": "no such file"}[kind] in line
    if kind == "truncated":
        assert target.stat().st_size > 0  # left as it was


def test_resume_takes_the_newest_complete_checkpoint(compose, tmp_path):
    from ns2.cli.train import resume_path

    cfg = compose("train", ["resume=true"])
    ckpts = tmp_path / "out" / "checkpoints"
    assert resume_path(cfg) is None  # first start: nothing to continue from
    write_ckpt(ckpts / "step0000003.ckpt", 3)
    write_ckpt(ckpts / "step0000006.ckpt", 6)
    write_ckpt(ckpts / "last.ckpt", 7, truncate=True)  # cut off while written: skipped
    now = time.time()
    for i, name in enumerate(["step0000003.ckpt", "step0000006.ckpt", "last.ckpt"]):
        os.utime(ckpts / name, (now + i, now + i))
    assert resume_path(cfg) == str(ckpts / "step0000006.ckpt")
    write_ckpt(ckpts / "last.ckpt", 7)
    os.utime(ckpts / "last.ckpt", (now + 5, now + 5))
    assert resume_path(cfg) == str(ckpts / "last.ckpt")
    write_ckpt(tmp_path / "out" / "hpc_ckpt_1.ckpt", 8)  # Lightning's SLURM requeue checkpoint
    os.utime(tmp_path / "out" / "hpc_ckpt_1.ckpt", (now + 9, now + 9))
    assert resume_path(cfg) == str(tmp_path / "out" / "hpc_ckpt_1.ckpt")
    assert resume_path(compose("train", [])) is None  # resume=false: a fresh start
