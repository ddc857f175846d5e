"""Shared plumbing of the Hydra entry points: where the configs live, logging, parameter counts (provenance: :mod:`ns2.utils.provenance`)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ns2.utils.provenance import REPO_ROOT, emit_results, git_commit

__all__ = ["REPO_ROOT", "config_dir", "count_parameters", "emit_results", "git_commit", "setup_logging"]


def config_dir() -> str:
    """The configs/ folder: ``$NS2_CONFIG_DIR`` when set, else the one beside the package."""
    path = Path(os.environ.get("NS2_CONFIG_DIR", REPO_ROOT / "configs")).resolve()
    if not path.is_dir():
        raise SystemExit(f"ns2: config folder not found: {path} (set NS2_CONFIG_DIR to the repository's configs/)")
    return str(path)


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    logging.basicConfig(level=level, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    return logging.getLogger("ns2")


def count_parameters(module: Any) -> dict[str, int]:
    """Parameter counts per direct child plus ``total`` (trainable and frozen alike)."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()}
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts
