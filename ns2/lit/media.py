"""Audio and images to the loggers that take them (TensorBoard, Weights & Biases); others are skipped."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["media_loggers", "log_media"]


def media_loggers(loggers: Sequence[Any]) -> list[Any]:
    """The loggers that can take audio and images."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    return [lg for lg in loggers if isinstance(lg, (TensorBoardLogger, WandbLogger))]


def log_media(loggers: Sequence[Any], key: str, audios: Mapping[str, np.ndarray], sample_rate: int, step: int,
              images: Mapping[str, np.ndarray] | None = None) -> None:
    """Log ``audios`` ({caption: wav [S]}) under ``key`` and ``images`` ({name: [H, W, 3] uint8}) under
    ``key/name``: one tag per caption in TensorBoard, one captioned panel in Weights & Biases."""
    from lightning.pytorch.loggers import TensorBoardLogger

    for lg in media_loggers(loggers):
        if isinstance(lg, TensorBoardLogger):
            exp = lg.experiment
            for caption, wav in audios.items():
                exp.add_audio(f"{key}/{caption.split(' ')[0]}", wav[None], step, sample_rate=sample_rate)
            for name, image in (images or {}).items():
                exp.add_image(f"{key}/{name}", image, step, dataformats="HWC")
        else:
            lg.log_audio(key=key, audios=list(audios.values()), step=step, sample_rate=[sample_rate] * len(audios),
                         caption=list(audios))
            for name, image in (images or {}).items():
                lg.log_image(key=f"{key}/{name}", images=[image], step=step)
