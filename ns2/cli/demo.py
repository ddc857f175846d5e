"""``ns2 demo``: the end-to-end job on the embedded synthetic corpus (what ``make demo`` runs).

The demo is the sequence of ``ns2`` commands a user would type, run one after the other as
subprocesses and printed before they run, so every step can be repeated (or changed) by hand:

1. ``ns2 prep``  generate and prepare the synthetic corpus, extracting codec codes with the tiny codec
   trained in ``experiments/codec_tiny/`` (``demo.codec``);
2. ``ns2 train`` train NaturalSpeech 2 at the tiny scale (``experiment=ns2/tiny``) for a fixed
   wall-clock budget (``demo.train_minutes``);
3. ``ns2 compare`` synthesize zero-shot samples for the held-out speakers through the Synthesizer
   interface and score them beside the ground truth and the codec's resynthesis of it with the
   offline fallback backbones, WER also with the corpus's domain LM (``wer_pocketsphinx_domain``):
   the paper's comparison table for the systems the demo trains;
4. ``ns2 eval protocol=synthetic_singing`` the same model sings the held-out singers' scores (from a
   speech prompt and from a sung one), scored against the notes (raw pitch accuracy, note hits...).

Each step's output folder sits under the demo's own run folder (``outputs/demo/<date>_<time>/``); the
timings of every step are written to ``demo.json`` there. ``demo.steps`` picks a subset (e.g.
``demo.steps=[prep]``).
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ns2.cli.common import REPO_ROOT, config_dir, git_commit, setup_logging
from ns2.utils.io import write_json

log = logging.getLogger("ns2.demo")

STEPS = ("prep", "train", "eval", "sing")


def _abs(path: str | os.PathLike) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (REPO_ROOT / p)).replace("\\", "/")


def demo_commands(cfg: DictConfig, out_dir: Path) -> dict[str, list[str]]:
    """The ``ns2`` argument lists of every step (without the leading ``ns2``)."""
    d = cfg.demo
    codec = _abs(d.codec)
    manifest = Path(cfg.paths.data_dir) / f"synthetic-{d.size}" / "prepared" / "manifest.jsonl"
    train_dir = out_dir / "train"
    common = [f"paths.root_dir={cfg.paths.root_dir}"]
    return {
        "prep": ["prep", "data=synthetic", f"data.size={d.size}", f"data.prep.codec={codec}",
                 "data.prep.codes.batch_frames=0", f"hydra.run.dir={out_dir / 'prep'}", *common],
        "train": ["train", "experiment=ns2/tiny", f"data.size={d.size}", f"codec.source={codec}",
                  "logger=csv", f"trainer.max_time=00:00:{int(d.train_minutes):02d}:00", f"seed={cfg.seed}",
                  f"data.datamodule.manifest={manifest}", f"hydra.run.dir={train_dir}", *common],
        "eval": ["compare", "protocol=synthetic", f"protocol.size={d.size}", "systems=[groundtruth,resynth,ns2]",
                 f"system.resynth.codec={codec}", f"system.ns2.path={train_dir / 'checkpoints' / 'last.ckpt'}",
                 f"metrics=[{','.join(d.metrics)}]", f"optional_metrics=[{','.join(d.optional_metrics)}]",
                 *([f"system.ns2.steps={int(d.sampler_steps)}"] if d.get("sampler_steps") else []),
                 "fallbacks=true", f"max_items={int(d.eval_items)}", f"out_dir={out_dir / 'eval'}",
                 f"hydra.run.dir={out_dir / 'eval'}", *common],
        "sing": ["eval", "protocol=synthetic_singing", f"protocol.size={d.size}", "systems=[groundtruth,ns2]",
                 f"system.ns2.path={train_dir / 'checkpoints' / 'last.ckpt'}", "metrics=[singing]", "optional_metrics=[]",
                 *([f"system.ns2.steps={int(d.sampler_steps)}"] if d.get("sampler_steps") else []),
                 "fallbacks=true", f"out_dir={out_dir / 'sing'}", f"hydra.run.dir={out_dir / 'sing'}", *common],
    }


def run_demo(cfg: DictConfig) -> dict[str, Any]:
    setup_logging()
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = [str(s) for s in cfg.demo.steps]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise SystemExit(f"ns2 demo: unknown steps {unknown}; expected some of {list(STEPS)}")
    commands = demo_commands(cfg, out_dir)
    record: dict[str, Any] = {"commit": git_commit(), "config": OmegaConf.to_container(cfg.demo, resolve=True),
                              "out_dir": str(out_dir), "steps": {}}
    t_all = time.perf_counter()
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    for step in steps:
        argv = commands[step]
        print(f"\n==> ns2 {' '.join(shlex.quote(a) for a in argv)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, "-m", "ns2.cli.main", *argv], env=env).returncode
        seconds = time.perf_counter() - t0
        record["steps"][step] = {"command": "ns2 " + " ".join(argv), "seconds": round(seconds, 1), "returncode": rc}
        write_json(out_dir / "demo.json", record)
        if rc != 0:
            raise SystemExit(f"ns2 demo: step {step!r} failed (exit {rc}); its command is in {out_dir / 'demo.json'}")
        log.info("step %s done in %.1f s", step, seconds)
    record["seconds"] = round(time.perf_counter() - t_all, 1)
    write_json(out_dir / "demo.json", record)
    report = out_dir / "eval" / "report.md"
    per_step = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in record["steps"].items())
    print(f"\ndemo finished in {record['seconds']:.0f} s ({per_step})")
    if "eval" in steps and report.is_file():
        print(f"\n{report.read_text()}\nreport: {report}")
    sung = out_dir / "sing" / "report.md"
    if "sing" in steps and sung.is_file():
        print(f"\nsinging report: {sung}")
    return record


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="demo")
def main(cfg: DictConfig) -> None:
    run_demo(cfg)


if __name__ == "__main__":  # python -m ns2.cli.demo
    main()
