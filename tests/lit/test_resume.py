"""Resume that survives pre-emption: ``ns2 train`` killed mid-epoch (SIGKILL, SIGTERM, SIGUSR1) and
restarted with ``resume=true`` logs the same losses, step by step, as an uninterrupted run of the same
seed; a kill while a checkpoint is being written leaves a loadable ``last.ckpt``."""
from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ns2_lit_helpers import REPO, finish, run_dir, start

STEPS = 12


def overrides(corpus, root: Path, run: str, *extra: str) -> list[str]:
    return ["experiment=ns2/tiny", f"data.root={corpus.root}", f"codec.source={corpus.codec_file}",
            f"paths.root_dir={root}", f"run_name={run}", "logger=csv", f"trainer.max_steps={STEPS}",
            "trainer.log_every_n_steps=1", "trainer.check_val_every_n_epoch=1000", "+trainer.enable_progress_bar=false",
            "data.datamodule.max_frames=200", "callbacks.model_checkpoint.every_n_train_steps=3",
            "model.warmup_steps=2", *extra]


def losses(root: Path, run: str) -> dict[int, float]:
    """train/total (the loss) per step over every CSV version of the run (a later version wins)."""
    out: dict[int, float] = {}
    for f in sorted((run_dir(root, run) / "csv").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:])):
        for row in csv.DictReader(open(f)):
            if row.get("train/total"):
                out[int(row["step"])] = float(row["train/total"])
    return out


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training ended before {path} appeared:\n{proc.stdout.read()[-3000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def step_of(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_ref")
    out = finish(start(overrides(corpus, root, "ref")))
    curve = losses(root, "ref")
    assert sorted(curve) == list(range(STEPS)), out[-3000:]
    return curve


def interrupted_then_resumed(corpus, root: Path, sig: signal.Signals, after: str, env=None) -> tuple[int, dict]:
    """Start a run, send ``sig`` once checkpoint ``after`` exists, restart it with ``resume=true``; return the
    step the restart continued from and the run's loss curve over both parts."""
    args = overrides(corpus, root, "cut")
    proc = start(args, env)
    wait_for(run_dir(root, "cut") / "checkpoints" / after, proc)
    proc.send_signal(sig)
    first = finish(proc)
    assert (run_dir(root, "cut") / "checkpoints" / "last.ckpt").is_file(), first[-3000:]
    steps = {str(p): step_of(p) for p in (run_dir(root, "cut") / "checkpoints").glob("*.ckpt")}
    out = finish(start([*args, "resume=true"]))
    m = re.search(r"resume=true: continuing from (\S+\.ckpt)", out)
    assert m, out[-3000:]
    resumed_from = steps[m.group(1)]
    assert 0 < resumed_from < STEPS, first[-5000:]
    return resumed_from, losses(root, "cut")


def assert_same_curve(reference: dict[int, float], curve: dict[int, float], resumed_from: int) -> None:
    after = [s for s in reference if s >= resumed_from]
    assert after and all(s in curve for s in after), (sorted(curve), resumed_from)
    for s in after:
        assert curve[s] == pytest.approx(reference[s], abs=1e-6), (s, curve[s], reference[s])


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_the_uninterrupted_run(corpus, tmp_path, reference):
    resumed_from, curve = interrupted_then_resumed(corpus, tmp_path, signal.SIGKILL, "step0000006.ckpt")
    assert resumed_from >= 6
    assert_same_curve(reference, curve, resumed_from)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1], ids=["sigterm", "sigusr1"])
def test_preemption_signal_writes_last_ckpt_and_resume_matches(corpus, tmp_path, reference, sig):
    resumed_from, curve = interrupted_then_resumed(corpus, tmp_path, sig, "step0000003.ckpt")
    assert_same_curve(reference, curve, resumed_from)


# A child that trains through `ns2 train` and is SIGKILLed halfway through writing a checkpoint once
# last.ckpt exists: torch.save writes the first half of the serialised checkpoint, then the process dies.
KILL_DURING_SAVE = """
import io, os, signal, sys, torch
last, real = os.environ["NS2_TEST_LAST"], torch.save
def save(obj, f, *a, **k):
    if isinstance(obj, dict) and "global_step" in obj and os.path.exists(last):
        buf = io.BytesIO(); real(obj, buf, *a, **k); data = buf.getvalue()
        f.write(data[: len(data) // 2]); f.flush(); os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return real(obj, f, *a, **k)
torch.save = save
from ns2.cli.main import main
sys.argv = ["ns2", "train", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_kill_while_writing_a_checkpoint_leaves_a_loadable_last_ckpt(corpus, tmp_path, reference):
    from ns2.cli.train import readable_checkpoint

    last = run_dir(tmp_path, "cut") / "checkpoints" / "last.ckpt"
    args = overrides(corpus, tmp_path, "cut")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "NS2_TEST_LAST": str(last)}
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert readable_checkpoint(last) is None
    step = step_of(last)  # the complete checkpoint written before the killed write
    assert 0 < step < STEPS
    out = finish(start([*args, "resume=true"]))
    assert re.search(r"resume=true: continuing from \S+\.ckpt", out), out[-3000:]
    assert_same_curve(reference, losses(tmp_path, "cut"), step)
