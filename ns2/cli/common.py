"""Shared plumbing of the Hydra entry points: where the configs live, logging, parameter counts (provenance: :mod:`ns2.utils.provenance`)."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ns2.utils.provenance import REPO_ROOT, emit_results, git_commit

__all__ = ["REPO_ROOT", "config_dir", "count_parameters", "emit_results", "git_commit", "one_line_errors",
           "require_settings", "setup_logging"]


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


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Errors that describe bad input (a file, a setting, a corpus), not a bug: shown as one line."""
    from omegaconf.errors import MissingMandatoryValue

    from ns2.data.manifest import ManifestError
    from ns2.data.recipes.base import RecipeError
    from ns2.data.stages.base import StageError
    from ns2.eval.protocol import ProtocolError

    return (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, UnicodeDecodeError,
            ManifestError, RecipeError, StageError, ProtocolError, MissingMandatoryValue)


def _find_user_error(err: BaseException) -> BaseException | None:
    """``err`` or the error it wraps (Hydra's ``InstantiationError`` wraps what a constructor raised)."""
    types, seen = _user_error_types(), set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, types):
            return err
        err = err.__cause__ or err.__context__
    return None


def _one_line(err: BaseException) -> str:
    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start}); expected a text file (JSONL, TSV, YAML)"
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return " ".join(str(err).split())


@contextmanager
def one_line_errors(command: str) -> Iterator[None]:
    """Bad input (a missing or unreadable file, a bad manifest or test list, a corpus that cannot be
    walked, a required setting left out) ends ``command`` with one line on stderr and exit status 1;
    anything else (a bug) keeps its traceback. ``HYDRA_FULL_ERROR=1`` shows every traceback."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - re-raised unless it is bad input
        found = _find_user_error(e)
        if found is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(f"{command}: {_one_line(found)}") from None


def require_settings(cfg: Any, command: str) -> None:
    """Stop with one line naming every required setting (``???`` in a config) left unset in ``cfg``."""
    from omegaconf import OmegaConf

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise SystemExit(f"{command}: required setting{'s' if len(missing) > 1 else ''} not given: "
                         f"{', '.join(missing)} (pass {missing[0]}=...)")
