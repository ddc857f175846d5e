"""Per-utterance records: an append-only JSONL journal per (test set, system, shard), read back de-duplicated.

Layout under an evaluation's output folder::

    records/<test set>/<system>.jsonl                     one process
    records/<test set>/<system>.shard-<i>-of-<n>.jsonl    shard i of n (processes or ranks)

A record is ``{"id", "test_set", "system", "status": "ok"|"failed", "error", "seed", "scores":
{metric: {key: value}}, "metric_errors": {metric: message}, "skipped": {metric: reason},
"transcripts": {metric: text}, ...}``. NaN is written as ``null`` (standard JSON) and read back as
NaN. Each record is appended and fsynced as soon as it is scored, so an interrupted run loses at most
the line being written; a torn last line is dropped when the journal is reopened.

Reading gathers every shard's file and keeps one record per id (an ``ok`` record over a ``failed``
one, else the last written): distributed samplers pad shards with repeated items, and a re-run with
``retry_failed`` appends a second record for an id.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from ns2.utils.io import read_jsonl, write_jsonl

__all__ = ["RecordJournal", "dedup", "from_json", "read_records", "record_files", "to_json"]


def to_json(obj: Any) -> Any:
    """NaN/inf -> None, NumPy scalars -> Python, recursively (for standard JSON)."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def from_json(rec: dict[str, Any]) -> dict[str, Any]:
    """Score values of ``None`` -> NaN (the inverse of :func:`to_json` for the ``scores`` mapping)."""
    scores = rec.get("scores") or {}
    rec["scores"] = {m: {k: float("nan") if v is None else v for k, v in vals.items()} for m, vals in scores.items()}
    return rec


def record_files(folder: str | os.PathLike, system: str) -> list[Path]:
    """Every journal of ``system`` in a test set's folder (unsharded and sharded), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = [folder / f"{system}.jsonl"] + sorted(folder.glob(f"{system}.shard-*-of-*.jsonl"))
    return [f for f in files if f.is_file()]


def dedup(records: Iterable[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], int]:
    """``({id: record}, duplicates dropped)``: an ``ok`` record wins over a ``failed`` one, else the last."""
    out: dict[str, dict[str, Any]] = {}
    dropped = 0
    for rec in records:
        key = rec["id"]
        if key in out:
            dropped += 1
            if out[key].get("status") == "ok" and rec.get("status") != "ok":
                continue
        out[key] = rec
    return out, dropped


def read_records(folder: str | os.PathLike, system: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Gather all shards' records of ``system`` in ``folder``; see :func:`dedup`."""
    recs: list[dict[str, Any]] = []
    for f in record_files(folder, system):
        recs.extend(from_json(r) for r in read_jsonl(f))
    return dedup(recs)


class RecordJournal:
    """The append-only journal of one (test set, system, shard)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()

    def _repair(self) -> None:
        """Rewrite the file without a torn last line (left by an interrupted append), if it has one."""
        if self.path.exists() and not self.path.read_bytes().endswith(b"\n") and self.path.stat().st_size:
            write_jsonl(self.path, read_jsonl(self.path))

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(to_json(record), ensure_ascii=False, allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
