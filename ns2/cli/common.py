"""Shared plumbing of the Hydra entry points: where the configs live, seeding, logging, provenance."""
from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def config_dir() -> str:
    """The configs/ folder: ``$NS2_CONFIG_DIR`` when set, else the one beside the package."""
    path = Path(os.environ.get("NS2_CONFIG_DIR", REPO_ROOT / "configs")).resolve()
    if not path.is_dir():
        raise SystemExit(f"ns2: config folder not found: {path} (set NS2_CONFIG_DIR to the repository's configs/)")
    return str(path)


def git_commit(cwd: str | os.PathLike = REPO_ROOT) -> str:
    """The current commit (``+dirty`` when the tree has changes), or ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    logging.basicConfig(level=level, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    return logging.getLogger("ns2")


def count_parameters(module: Any) -> dict[str, int]:
    """Parameter counts per direct child plus ``total`` (trainable and frozen alike)."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()}
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts


def emit_results(results: dict[str, Any], out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write a command's results to ``out`` (JSON, atomically) when given, and print them one per line."""
    from ns2.utils.io import write_json

    if out:
        write_json(out, results)
    print("\n".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in results.items()))
    return results
