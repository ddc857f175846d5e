"""Splitting a test list across processes: ``shard=i/n`` or the torch.distributed / launcher rank.

Shard ``i`` of ``n`` scores items ``i, i + n, i + 2n, ...`` of every list and writes its own journal
(``<system>.shard-<i>-of-<n>.jsonl``); the report gathers all journals and de-duplicates by id
(:func:`ns2.eval.records.dedup`), so shards may overlap (a padded distributed sampler) without
counting an item twice.
"""
from __future__ import annotations

import os
import re
from typing import Sequence, TypeVar

__all__ = ["journal_name", "resolve_shard", "shard_items"]

T = TypeVar("T")


def resolve_shard(spec: str | None = None) -> tuple[int, int]:
    """``(index, count)`` from ``"i/n"``; with None or ``"auto"``: the initialised torch.distributed
    group, else ``RANK``/``WORLD_SIZE`` (torchrun, Lightning) or ``SLURM_PROCID``/``SLURM_NTASKS``, else (0, 1)."""
    if spec not in (None, "", "auto"):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
        if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
            raise ValueError(f"shard: expected 'i/n' with 0 <= i < n (e.g. 0/4), got {spec!r}")
        return int(m.group(1)), int(m.group(2))
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    for rank, world in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if os.environ.get(rank) is not None and os.environ.get(world) is not None:
            i, n = int(os.environ[rank]), int(os.environ[world])
            if not 0 <= i < n:
                raise ValueError(f"shard: {rank}={i} is not in [0, {world}={n})")
            return i, n
    return 0, 1


def shard_items(items: Sequence[T], index: int, count: int) -> list[T]:
    """Items ``index, index + count, ...``."""
    return list(items[index::count])


def journal_name(system: str, index: int, count: int) -> str:
    return f"{system}.jsonl" if count == 1 else f"{system}.shard-{index:02d}-of-{count:02d}.jsonl"
