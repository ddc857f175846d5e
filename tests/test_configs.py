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
        overrides += ["++trainer.accelerator=cpu", "++trainer.devices=1", "++trainer.strategy=auto", "++trainer.precision=32-true"]
    cfg = compose("train", overrides)
    OmegaConf.resolve(cfg)
    for path, node in targets(cfg):
        if path.startswith("hydra"):
            continue
        if group != "experiment" and not path.startswith("trainer" if group == "debug" else group):
            continue
        obj = instantiate(node)
        assert obj is not None, path
