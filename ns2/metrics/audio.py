"""Waveform helpers shared by the metrics: one mono float32 array at the rate a backbone wants."""
from __future__ import annotations

from typing import Any

import numpy as np


def as_mono(wav: Any, name: str = "wav") -> np.ndarray:
    """A waveform as a contiguous float32 NumPy array ``[S]``.

    Accepts NumPy arrays or torch tensors shaped ``[S]``, ``[1, S]`` or ``[1, 1, S]`` (a leading
    batch/channel axis of size 1 is dropped); a 2-D array with several channels, ``[C, S]`` or
    ``[S, C]`` (soundfile's layout), is averaged over its shorter axis.
    """
    if hasattr(wav, "detach"):  # torch.Tensor
        wav = wav.detach().to("cpu").float().numpy()
    x = np.asarray(wav, dtype=np.float32)
    while x.ndim > 1 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 2:
        x = x.mean(axis=int(np.argmin(x.shape)))
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a waveform shaped [S], [1, S] or [C, S], got shape {tuple(np.shape(wav))}")
    if x.size == 0:
        raise ValueError(f"{name}: expected a non-empty waveform, got 0 samples")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: expected finite samples, got NaN or inf")
    return np.ascontiguousarray(x)


def resample(wav: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """``wav: [S]`` at ``sr`` -> ``[S']`` at ``target_sr`` (soxr, high quality); a no-op when equal."""
    if int(sr) <= 0:
        raise ValueError(f"sample rate: expected a positive integer, got {sr}")
    if int(sr) == int(target_sr):
        return wav
    import soxr

    return soxr.resample(wav, int(sr), int(target_sr), quality="HQ").astype(np.float32, copy=False)


def prepare(wav: Any, sr: int, target_sr: int, name: str = "wav") -> np.ndarray:
    """:func:`as_mono` then :func:`resample` to ``target_sr``: ``[S]`` float32."""
    return resample(as_mono(wav, name), sr, target_sr)


def fingerprint(wav: np.ndarray, sr: int) -> tuple[int, int, bytes]:
    """A cheap exact key for caching per-waveform results (e.g. a prompt's speaker embedding)."""
    import hashlib

    return (int(sr), int(wav.size), hashlib.blake2b(wav.tobytes(), digest_size=16).digest())
