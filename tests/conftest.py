"""Shared fixtures: configs composed the way the CLI composes them, and a prepared mini corpus."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture()
def compose(tmp_path):
    """``compose(config_name, overrides)`` -> a resolved-able DictConfig rooted in tmp_path."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    def _compose(name: str, overrides: list[str] | None = None):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = hydra_compose(
                config_name=name,
                overrides=[f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}/out", *(overrides or [])],
            )
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def one_thread():
    """Tests share a small machine: one intra-op thread runs small convolutions faster and fairer."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
