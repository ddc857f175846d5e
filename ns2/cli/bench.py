"""``ns2 bench``: speed and memory benchmarks written under experiments/."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ns2.cli.common import config_dir


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="bench")
def main(cfg: DictConfig) -> None:
    raise SystemExit("ns2 bench: no benchmark is registered in this version; nothing to run")
