"""``ns2 train``: compose datamodule + LightningModule + Trainer from configs and fit."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ns2.cli.common import config_dir, git_commit, one_line_errors, require_settings, setup_logging

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


def readable_checkpoint(path: str | Path) -> str | None:
    """None when ``path`` is a complete checkpoint file, else why not (one line)."""
    p = Path(path)
    if not p.exists():
        return f"{p}: no such file"
    if not p.is_file():
        return f"{p}: is a directory, expected a checkpoint file (.ckpt)"
    try:
        with zipfile.ZipFile(p) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f"{p}: not a complete checkpoint ({type(e).__name__}: {e}); it may have been cut off while written"
    return None if bad is None else f"{p}: member {bad} is corrupt; the file may have been cut off while written"


def _stable_folder_given() -> bool:
    """Whether this run's folder was named (``run_name=``, ``hydra.run.dir=`` or ``hydra.sweep.dir=``), not
    taken from the clock."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return True  # composed in code: paths.output_dir is whatever the caller set
    overrides = list(HydraConfig.get().overrides.task) + list(HydraConfig.get().overrides.hydra)
    return any(o.split("=", 1)[0].lstrip("+~") in ("run_name", "hydra.run.dir", "hydra.sweep.dir") for o in overrides)


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint ``ns2 train`` continues from: ``ckpt_path`` when given; with ``resume=true`` the newest
    complete checkpoint of the run folder (``checkpoints/last.ckpt``, Lightning's ``hpc_ckpt_<n>.ckpt``, then
    the step checkpoints), or None for a first start."""
    if cfg.get("ckpt_path"):
        why = readable_checkpoint(cfg.ckpt_path)
        if why:
            raise SystemExit(f"ns2 train: ckpt_path={cfg.ckpt_path}: {why}")
        return str(cfg.ckpt_path)
    if not cfg.get("resume"):
        return None
    if not _stable_folder_given():
        raise SystemExit("ns2 train: resume=true needs the run's folder: pass run_name=<name> (the same on every "
                         "restart) or hydra.run.dir=<folder>")
    run_dir = Path(cfg.paths.output_dir)
    ckpt_dir = Path(OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None) or run_dir / "checkpoints")
    found = [p for p in [ckpt_dir / "last.ckpt", *run_dir.glob("hpc_ckpt_*.ckpt"), *ckpt_dir.glob("*.ckpt")] if p.is_file()]
    for p in sorted(dict.fromkeys(found), key=lambda q: q.stat().st_mtime, reverse=True):
        why = readable_checkpoint(p)
        if why is None:
            log.info("resume=true: continuing from %s", p)
            return str(p)
        log.warning("resume=true: skipping %s", why)
    log.info("resume=true: no checkpoint in %s yet; starting the run", run_dir)
    return None


def run_train(cfg: DictConfig) -> dict[str, float]:
    """Fit (resuming from ``ckpt_path`` when given, or from the run folder with ``resume=true``); return final metrics."""
    setup_logging()
    ckpt_path = resume_path(cfg)
    datamodule, module, trainer = build(cfg)
    if getattr(datamodule, "manifest", None) is not None:  # before any logger starts a run
        from ns2.data.manifest import check_manifest_path

        check_manifest_path(datamodule.manifest)
    for lg in trainer.loggers:
        lg.log_hyperparams({"config": OmegaConf.to_container(cfg, resolve=True), "commit": git_commit()})
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("final metrics: %s", metrics)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> None:
    require_settings(cfg, "ns2 train")
    with one_line_errors("ns2 train"):
        run_train(cfg)


if __name__ == "__main__":  # `python -m ns2.cli.train`: what Lightning's DDP launcher re-runs for ranks > 0
    main()
