"""``ns2 prep``: build a corpus (synthetic or a recipe) and run the preparation stages."""
from __future__ import annotations

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from ns2.cli.common import config_dir, setup_logging


def run_prep(cfg: DictConfig) -> dict:
    """Build the corpus named by ``cfg.data`` and run ``cfg.data.prep``'s stages; return the summary."""
    from ns2.data.prepare import format_summary, prepare

    log = setup_logging()
    data = cfg.data
    corpus = instantiate(data.corpus) if data.get("corpus") is not None else None
    summary = prepare(
        corpus,
        data.root,
        stages=list(data.prep.stages),
        sample_rate=data.sample_rate,
        hop_length=data.hop_length,
        num_workers=data.prep.num_workers,
        durations_source=data.prep.durations_source,
        textgrid_dir=data.prep.get("textgrid_dir"),
        language=data.language,
        **(data.prep.get("options") or {}),
    )
    log.info("prepared %s", data.root)
    print(format_summary(summary))
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="prep")
def main(cfg: DictConfig) -> None:
    run_prep(cfg)
