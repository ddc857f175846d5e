"""Checkpoint files written atomically on every file system.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction whose temporary file lives in the
system's temp folder; when that is another file system than the run folder (local /tmp, shared
outputs: the usual cluster layout) the final move is a copy, and a job killed during it leaves a
truncated ``last.ckpt``. :class:`AtomicCheckpointIO` writes beside the target, fsyncs and renames, so
a checkpoint path holds either the previous complete file or the new complete file.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ns2.utils.io import atomic_open

__all__ = ["AtomicCheckpointIO"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose ``save_checkpoint`` is a same-folder write + fsync + rename."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"AtomicCheckpointIO.save_checkpoint: storage_options are not supported, got {storage_options!r}")
        if "://" in str(path):  # remote storage: Lightning's own path
            return super().save_checkpoint(checkpoint, path)
        with atomic_open(path, "wb") as f:
            torch.save(checkpoint, f)
