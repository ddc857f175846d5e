"""``ns2 bench``: speed and memory benchmarks written under experiments/bench/.

    ns2 bench target=codec codec=ns2_paper               # encode/decode ms per second of audio
    ns2 bench target=ns2 model=ns2 model/scale=small     # training step and denoiser call
    ns2 bench target=ns2 model/scale=paper device=cuda autocast=bf16
"""
from __future__ import annotations

from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from ns2.cli.common import config_dir, git_commit, setup_logging
from ns2.utils.io import write_json


def _choice(group: str) -> str:
    """The option chosen for a config group (``tiny``, ``ns2_paper``...), or the group's name outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.choices.get(group) or group.split("/")[-1])
    except ValueError:
        return group.split("/")[-1]


def run_bench(cfg: DictConfig) -> dict:
    from ns2.utils.bench import bench_codec, bench_ns2

    log = setup_logging()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if cfg.target == "codec":
        if cfg.get("codec") is None:
            raise SystemExit("ns2 bench target=codec: no codec selected; pass codec=tiny|ns2_paper|dac_24khz")
        result = bench_codec(instantiate(cfg.codec), seconds=cfg.seconds, batch_size=cfg.batch_size,
                             repeats=cfg.repeats, device=cfg.device, seed=cfg.seed)
        name = cfg.name or f"codec_{_choice('codec')}"
    elif cfg.target == "ns2":
        if cfg.get("model") is None or "net" not in cfg.model:
            raise SystemExit("ns2 bench target=ns2: no model selected; pass model=ns2 [model/scale=tiny|small|paper]")
        latent_dim = cfg.codec.latent_dim if cfg.get("codec") is not None and "latent_dim" in cfg.codec else cfg.latent_dim
        extra = {"codec": None} if "codec" in cfg.model.net else {}
        net = instantiate(cfg.model.net, latent_dim=latent_dim, **extra)
        result = bench_ns2(net, batch_size=cfg.batch_size, phonemes=cfg.phonemes, frames=cfg.frames,
                           prompt_frames=cfg.prompt_frames, repeats=cfg.repeats, device=cfg.device, seed=cfg.seed,
                           autocast=cfg.autocast)
        name = cfg.name or f"ns2_{_choice('model/scale')}"
    else:
        raise SystemExit(f"ns2 bench: unknown target {cfg.target!r}; expected codec or ns2")
    result = {"benchmark": cfg.target, "commit": git_commit(), **result}
    out = Path(cfg.out_dir) / f"{name}_{result['device'].split(':')[0]}.json"
    write_json(out, result)
    for k, v in result.items():
        log.info("%s: %s", k, f"{v:.4g}" if isinstance(v, float) else v)
    log.info("wrote %s", out)
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="bench")
def main(cfg: DictConfig) -> None:
    run_bench(cfg)
