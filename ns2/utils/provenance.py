"""Provenance of a result: the commit it was made at, and results written where a study asks."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from ns2.utils.io import write_json

__all__ = ["REPO_ROOT", "emit_results", "git_commit"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_commit(cwd: str | os.PathLike = REPO_ROOT) -> str:
    """The current commit (``+dirty`` when the tree has changes), or ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def emit_results(results: dict[str, Any], out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write a command's results to ``out`` (JSON, atomically) when given, and print them one per line."""
    if out:
        write_json(out, results)
    print("\n".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in results.items()))
    return results
