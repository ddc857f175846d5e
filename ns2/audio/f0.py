"""F0 on the codec's frame grid with Praat's autocorrelation pitch tracker (parselmouth).

Frame ``j`` covers samples ``[j * hop, (j + 1) * hop)``; its F0 is read at the frame centre
``(j + 0.5) * hop / sr`` so an F0 array has exactly ``num_frames = ceil(S / hop)`` entries and lines up
with durations and codec codes. Unvoiced frames hold ``0.0``; :func:`f0_to_log` takes logs on voiced
frames only, so ``log(0)`` never appears.
"""
from __future__ import annotations

import math

import numpy as np

from ns2.audio.frames import frame_centres
from ns2.audio.frames import num_frames as count_frames


def midi_to_hz(midi: float) -> float:
    """MIDI note number -> frequency in Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def hz_to_midi(hz: float) -> float:
    """Frequency in Hz -> MIDI note number (fractional)."""
    return 69.0 + 12.0 * math.log2(hz / 440.0)


def compute_f0(x: np.ndarray, sample_rate: int, hop_length: int, num_frames: int | None = None,
               pitch_floor: float = 65.0, pitch_ceiling: float = 800.0,
               voicing_threshold: float = 0.45, silence_threshold: float = 0.03) -> np.ndarray:
    """F0 in Hz per frame. ``x: [S]`` mono float audio -> ``[T]`` float32, 0.0 where unvoiced.

    ``num_frames`` defaults to ``ceil(S / hop_length)``. Praat tracks pitch with a time step of one
    hop; values at the frame centres are interpolated linearly between two voiced analysis frames,
    taken from the nearest analysis frame when only that one is voiced, and 0.0 when it is not.
    """
    import parselmouth

    if x.ndim != 1:
        raise ValueError(f"compute_f0 expects mono audio shaped [S], got {x.shape}")
    n = count_frames(len(x), hop_length) if num_frames is None else int(num_frames)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    # Praat needs at least a few periods of the lowest pitch in the window: pad very short clips.
    need = int(math.ceil((3.0 / pitch_floor + 4 * hop_length / sample_rate) * sample_rate))
    sig = np.asarray(x, dtype=np.float64)
    if len(sig) < need:
        sig = np.pad(sig, (0, need - len(sig)))
    snd = parselmouth.Sound(sig, sampling_frequency=sample_rate)
    pitch = snd.to_pitch_ac(time_step=hop_length / sample_rate, pitch_floor=pitch_floor, pitch_ceiling=pitch_ceiling,
                            voicing_threshold=voicing_threshold, silence_threshold=silence_threshold)
    values = np.nan_to_num(np.asarray(pitch.selected_array["frequency"], dtype=np.float64), nan=0.0)
    return sample_track(values, pitch.x1, pitch.dx, frame_centres(n, hop_length, sample_rate))


def sample_track(values: np.ndarray, x1: float, dx: float, times: np.ndarray) -> np.ndarray:
    """Read a pitch track (``values: [N]`` at ``x1 + k * dx``, 0 = unvoiced) at ``times: [T]`` -> ``[T]`` float32."""
    if len(values) == 0:
        return np.zeros(len(times), dtype=np.float32)
    u = np.clip((times - x1) / dx, 0.0, len(values) - 1)
    lo = np.floor(u).astype(np.int64)
    hi = np.minimum(lo + 1, len(values) - 1)
    w = u - lo
    v_lo, v_hi = values[lo], values[hi]
    nearest = np.where(w < 0.5, v_lo, v_hi)
    both = (v_lo > 0) & (v_hi > 0)
    out = np.where(both, (1 - w) * v_lo + w * v_hi, nearest)
    return out.astype(np.float32)


def f0_to_log(f0: np.ndarray, interpolate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``f0: [T]`` Hz (0 = unvoiced) -> ``(log_f0: [T] float32, voiced: [T] bool)``.

    The log is taken on voiced frames only. Unvoiced frames hold 0.0, or with ``interpolate`` the
    log-F0 interpolated linearly between the neighbouring voiced frames (held flat at the edges).
    Without any voiced frame the result is all zeros. Never ``-inf`` or NaN.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = np.isfinite(f0) & (f0 > 0)
    log_f0 = np.zeros(f0.shape, dtype=np.float64)
    log_f0[voiced] = np.log(f0[voiced])
    if interpolate and voiced.any() and not voiced.all():
        idx = np.arange(len(f0))
        log_f0 = np.interp(idx, idx[voiced], log_f0[voiced])
    return log_f0.astype(np.float32), voiced


def mean_log_f0(f0: np.ndarray) -> float:
    """Mean log-F0 over the voiced frames of ``f0: [T]`` (Hz, 0 = unvoiced); NaN when none is voiced."""
    log_f0, voiced = f0_to_log(f0)
    return float(log_f0[voiced].mean()) if voiced.any() else float("nan")


def log_f0_moments(f0: np.ndarray) -> dict[str, float]:
    """Sufficient statistics of log-F0 over voiced frames: ``{"n", "sum", "sumsq"}``."""
    log_f0, voiced = f0_to_log(f0)
    v = log_f0[voiced].astype(np.float64)
    return {"n": int(v.size), "sum": float(v.sum()), "sumsq": float(np.square(v).sum())}


def moments_to_stats(m: dict[str, float]) -> dict[str, float | int]:
    """``{"n", "sum", "sumsq"}`` -> ``{"mean", "std", "voiced_frames"}`` of log-F0 (0.0 when no voiced frame)."""
    n = int(m["n"])
    if n == 0:
        return {"mean": 0.0, "std": 0.0, "voiced_frames": 0}
    mean = m["sum"] / n
    var = max(m["sumsq"] / n - mean * mean, 0.0)
    return {"mean": mean, "std": math.sqrt(var), "voiced_frames": n}
