"""LightningModules: the losses, optimisers, schedules and logging around the pure nn.Modules.

* :class:`CodecLit`: the codec's GAN training (DAC's recipe); :func:`codec_from_checkpoint` reads the
  trained codec back (from :mod:`ns2.codec.load`).
* :class:`NS2Lit`: NaturalSpeech 2's training (diffusion, CE-RVQ, duration and pitch losses, EMA);
  :func:`load_ns2_checkpoint` reads its checkpoints back (:class:`NS2Checkpoint`).
* :class:`VALLELit`: VALL-E's training (AR and NAR cross-entropy); :func:`ns2.inference.valle.load_valle_checkpoint`
  reads its checkpoints back.
* :class:`YourTTSLit`: YourTTS's training (VITS's GAN recipe with a speaker encoder's embeddings);
  :func:`ns2.inference.yourtts.load_yourtts_checkpoint` reads its checkpoints back.
"""
from __future__ import annotations

import importlib
from typing import Any

from ns2.inference.checkpoint import NS2Checkpoint, NS2CheckpointError, load_ns2_checkpoint

# The LightningModules import Lightning (seconds); loading a checkpoint for synthesis does not need it.
_LAZY = {
    "DEFAULT_LOSS_WEIGHTS": "ns2.lit.codec",
    "CodecLit": "ns2.lit.codec",
    "codec_from_checkpoint": "ns2.codec.load",
    "crop_segments": "ns2.lit.codec",
    "NS2Lit": "ns2.lit.ns2",
    "VALLELit": "ns2.lit.valle",
    "YourTTSLit": "ns2.lit.yourtts",
}

__all__ = [
    "DEFAULT_LOSS_WEIGHTS",
    "CodecLit",
    "NS2Checkpoint",
    "NS2CheckpointError",
    "NS2Lit",
    "VALLELit",
    "YourTTSLit",
    "codec_from_checkpoint",
    "crop_segments",
    "load_ns2_checkpoint",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
