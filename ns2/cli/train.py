"""``ns2 train``: compose datamodule + LightningModule + Trainer from configs and fit."""
from __future__ import annotations

import logging
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ns2.cli.common import config_dir, git_commit, setup_logging

log = logging.getLogger("ns2.train")


def build(cfg: DictConfig) -> tuple[Any, Any, Any]:
    """Instantiate (datamodule, module, trainer) from a composed train config."""
    import lightning as L

    if cfg.get("model") is None:
        raise SystemExit("ns2 train: no model selected; pass experiment=<name> (see configs/experiment/) or model=<name>")
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data.datamodule)
    module = instantiate(cfg.model)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None and "_target_" in c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None and "_target_" in c]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, module, trainer


def run_train(cfg: DictConfig) -> dict[str, float]:
    """Fit (resuming from ``ckpt_path`` when given, or from ``last.ckpt`` with ``resume=true``); return final metrics."""
    setup_logging()
    datamodule, module, trainer = build(cfg)
    for lg in trainer.loggers:
        lg.log_hyperparams({"config": OmegaConf.to_container(cfg, resolve=True), "commit": git_commit()})
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("final metrics: %s", metrics)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> None:
    run_train(cfg)
