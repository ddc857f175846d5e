"""Every config in configs/ composes, and every `_target_` in it instantiates."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TOP = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
# groups composed through `ns2 train`; hydra/ and paths/ are part of every composition
GROUPS = ["data", "codec", "model", "trainer", "logger", "callbacks", "debug", "experiment"]


def options(group: str) -> list[str]:
    root = CONFIGS / group
    found = []
    for p in sorted(root.rglob("*.yaml")):
        rel = p.relative_to(root).with_suffix("").as_posix()
        if group == "model" and "/" in rel:  # sub-groups such as model/scale are composed with their model
            continue
        found.append(rel)
    return found


def targets(node, path=""):
    """The outermost `_target_` nodes of a config."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
            return
        for k in node:
            yield from targets(node[k], f"{path}.{k}" if path else k)


def fake_gpus(monkeypatch, n: int = 8) -> None:
    """Lightning sees ``n`` CUDA devices. Trainers are built, never run, so no CUDA call is made."""
    from lightning.fabric.accelerators import cuda as fabric_cuda
    from lightning.pytorch.accelerators import cuda as pl_cuda

    monkeypatch.setattr(pl_cuda.CUDAAccelerator, "is_available", staticmethod(lambda: True))
    monkeypatch.setattr(fabric_cuda, "num_cuda_devices", lambda: n)
    if hasattr(pl_cuda, "num_cuda_devices"):
        monkeypatch.setattr(pl_cuda, "num_cuda_devices", lambda: n)


CASES = [(g, o) for g in GROUPS for o in options(g)]


@pytest.mark.parametrize("name", TOP)
def test_top_config_composes(compose, name):
    cfg = compose(name)
    assert cfg.task_name


@pytest.mark.parametrize("group, option", CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_group_option_instantiates(compose, group, option, tmp_path, monkeypatch):
    if group == "codec" and option.startswith("dac_"):  # a pretrained release: a fake cached file, no network
        import shutil

        from ns2.codec import cached_path

        monkeypatch.setenv("NS2_CACHE", str(tmp_path / "cache"))
        dest = cached_path(option)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).parent / "codec/fixtures/dac_tiny_16k.pth", dest)
    overrides = [f"{group}={option}"]
    fixture_codec = str(Path(__file__).parent / "codec/fixtures/dac_tiny_16k.pth")
    if (group, option) == ("experiment", "ns2/finetune"):  # the network and codec come from a checkpoint
        sys.path.insert(0, str(Path(__file__).parent / "inference"))
        from tiny_synth import save_tiny_checkpoint

        overrides += [f"model.init_from={save_tiny_checkpoint(tmp_path / 'base.ckpt')}", f"data.corpus.root={tmp_path}"]
    elif (group, option) == ("codec", "from_file") or (
        group == "experiment" and option.startswith(("ns2/", "valle/"))
    ):
        overrides += [f"codec.source={fixture_codec}"]
    if (group, option) in (("model", "ns2"), ("model", "valle")):
        overrides += ["codec=tiny"]
    if option == "ns2/paper":  # compose at paper settings, build at tiny size (two 411M networks otherwise)
        overrides += ["model/scale=tiny"]
    if option == "valle/paper":  # the same for VALL-E's ~370M decoders
        overrides += ["model/scale=valle_tiny"]
    if group in ("trainer", "experiment", "debug") and not torch.cuda.is_available():
        fake_gpus(monkeypatch)  # the configs' own accelerator, devices, strategy and precision
    cfg = compose("train", overrides)
    OmegaConf.resolve(cfg)
    for path, node in targets(cfg):
        if path.startswith("hydra"):
            continue
        if group != "experiment" and not path.startswith("trainer" if group == "debug" else group):
            continue
        obj = instantiate(node)
        assert obj is not None, path
        if path == "trainer":  # the frame-bucket sampler shards by rank: Lightning must not replace it
            assert obj._accelerator_connector.use_distributed_sampler is False


@pytest.mark.parametrize("overrides, devices, strategy, precision, find_unused", [
    (["trainer=gpu", "trainer.devices=2"], 2, "DDPStrategy", "bf16-mixed", False),
    (["trainer=ddp"], 8, "DDPStrategy", "bf16-mixed", False),
    (["trainer=ddp", "trainer.num_nodes=2"], 8, "DDPStrategy", "bf16-mixed", False),
    (["trainer=fsdp"], 8, "FSDPStrategy", "bf16-mixed", None),
    (["experiment=codec/tiny", "trainer=ddp"], 8, "DDPStrategy", "bf16-mixed", True),
    (["experiment=codec/ns2_paper"], 8, "DDPStrategy", "32-true", True),
], ids=["gpu_x2", "ddp", "ddp_2_nodes", "fsdp", "codec_ddp", "codec_paper"])
def test_multi_device_trainers(compose, monkeypatch, overrides, devices, strategy, precision, find_unused):
    """Multi-device configs build their real strategy and precision (on 8 fake GPUs when none is here)."""
    if not torch.cuda.is_available():
        fake_gpus(monkeypatch)
    cfg = compose("train", overrides)
    trainer = instantiate(cfg.trainer)
    assert type(trainer.strategy).__name__ == strategy
    assert trainer.num_devices == devices and trainer.num_nodes == cfg.trainer.get("num_nodes", 1)
    assert trainer.precision == precision
    assert trainer._accelerator_connector.use_distributed_sampler is False
    if find_unused is not None:
        assert trainer.strategy._ddp_kwargs.get("find_unused_parameters", False) is find_unused
    if strategy == "FSDPStrategy":
        assert trainer.strategy._state_dict_type == "full"
