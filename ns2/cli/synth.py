"""``ns2 synth``: text + speech prompt -> wav with a trained checkpoint."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ns2.cli.common import config_dir


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="synth")
def main(cfg: DictConfig) -> None:
    raise SystemExit("ns2 synth: this version ships no trained synthesizer yet (NaturalSpeech 2 model pending); nothing to run")
