"""``ns2 demo``: the end-to-end job on the embedded synthetic corpus (what ``make demo`` runs)."""
from __future__ import annotations

import time

import hydra
from omegaconf import DictConfig

from ns2.cli.common import config_dir, setup_logging
from ns2.cli.prep import run_prep


def run_demo(cfg: DictConfig) -> dict:
    log = setup_logging()
    t0 = time.perf_counter()
    summary = run_prep(cfg)
    log.info("demo finished in %.1f s", time.perf_counter() - t0)
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="demo")
def main(cfg: DictConfig) -> None:
    run_demo(cfg)
