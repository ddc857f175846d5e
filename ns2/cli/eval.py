"""``ns2 eval``: score systems on a test list."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ns2.cli.common import config_dir


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> None:
    raise SystemExit("ns2 eval: this version ships no evaluation harness yet; nothing to run")
