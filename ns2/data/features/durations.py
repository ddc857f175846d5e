"""Phoneme durations in frames from times in seconds, and back.

A frame belongs to the phoneme whose interval holds the frame's centre: the boundary between
phonemes ``k - 1`` and ``k`` at time ``t`` becomes frame index ``round(t * frame_rate)``. Boundaries
are then clipped to ``[0, num_frames]`` and made non-decreasing, the first pinned to 0 and the last
to ``num_frames``, so the durations always sum exactly to ``num_frames``.

Zero-duration policy: a phoneme shorter than half a frame gets 0 frames by default (the manifest
schema allows it, and word boundaries ``|`` have no length of their own). With ``min_frames=1`` every
phoneme gets at least one frame, borrowed from its neighbours (boundaries pushed forward, then back),
which needs ``num_frames >= min_frames * len(phonemes)``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def times_to_durations(phoneme_times: Sequence[Sequence[float]], num_frames: int, frame_rate: float,
                       min_frames: int = 0) -> list[int]:
    """``phoneme_times: [[start, end], ...]`` in seconds -> frames per phoneme, summing to ``num_frames``.

    Gaps between phonemes are split at their midpoint; time before the first phoneme goes to the first
    and time after the last to the last one with a non-zero length (so a final ``.`` keeps 0 frames).
    """
    n = len(phoneme_times)
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if n == 0:
        if num_frames:
            raise ValueError(f"no phonemes to cover {num_frames} frames")
        return []
    if min_frames * n > num_frames:
        raise ValueError(f"{num_frames} frames cannot give each of {n} phonemes at least {min_frames} frame(s)")
    times = np.asarray(phoneme_times, dtype=np.float64).reshape(n, 2)
    if not np.all(np.isfinite(times)):
        raise ValueError("phoneme_times holds NaN or infinite values")
    inner = (times[:-1, 1] + times[1:, 0]) / 2.0  # boundary between phoneme k-1 and k, k = 1..n-1
    bounds = np.empty(n + 1, dtype=np.int64)
    bounds[0], bounds[n] = 0, num_frames
    bounds[1:n] = np.clip(np.floor(inner * frame_rate + 0.5), 0, num_frames).astype(np.int64)
    timed = np.flatnonzero(times[:, 1] > times[:, 0])
    if len(timed):  # zero-length marks after the last timed phoneme (final punctuation) stay at 0 frames
        bounds[timed[-1] + 1:n] = num_frames
    bounds = np.maximum.accumulate(bounds)
    if min_frames > 0:
        for k in range(1, n):  # forward: each phoneme at least min_frames after the previous boundary
            bounds[k] = max(bounds[k], bounds[k - 1] + min_frames)
        for k in range(n - 1, 0, -1):  # backward: leave room for the phonemes after it
            bounds[k] = min(bounds[k], bounds[k + 1] - min_frames)
    durations = np.diff(bounds)
    assert durations.sum() == num_frames and (durations >= min_frames).all()
    return [int(d) for d in durations]


def durations_to_times(durations: Sequence[int], frame_rate: float, offset: float = 0.0) -> list[list[float]]:
    """Frames per phoneme -> ``[[start, end], ...]`` in seconds (frame edges, starting at ``offset``)."""
    if frame_rate <= 0:
        raise ValueError(f"frame_rate must be > 0, got {frame_rate}")
    bounds = np.concatenate([[0], np.cumsum(np.asarray(durations, dtype=np.int64))])
    if len(bounds) > 1 and np.any(np.diff(bounds) < 0):
        raise ValueError("durations must be >= 0")
    t = offset + bounds / float(frame_rate)
    return [[float(t[i]), float(t[i + 1])] for i in range(len(bounds) - 1)]


def check_durations(durations: Sequence[int], num_frames: int) -> None:
    """Raise ``ValueError`` unless ``durations`` are integers >= 0 summing to ``num_frames``."""
    if any((not isinstance(d, (int, np.integer))) or d < 0 for d in durations):
        raise ValueError("durations must be integers >= 0")
    total = int(sum(durations))
    if total != num_frames:
        raise ValueError(f"durations sum to {total} frames, expected num_frames={num_frames}")
