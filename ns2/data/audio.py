"""Audio I/O and checks for the preparation stages: load, downmix, resample (soxr), and find bad files.

Arrays are ``float32`` shaped ``[C, S]`` (channels first) as they come off disk and ``[S]`` once mono.
:func:`check_audio` raises :class:`BadAudio` with a one-line reason; the ``audio`` stage turns that
into a quarantine record. What counts as bad is set by :class:`AudioPolicy`:

* unreadable or corrupt files, files with no samples, shorter than ``min_duration``;
* truncated files: a WAV whose ``data`` chunk declares more bytes than the file holds, or a decoded
  length that disagrees with the duration the corpus manifest declared;
* silent files (RMS below ``silence_db`` dBFS);
* clipped files (more than ``max_clipped_fraction`` of samples at full scale; off by default);
* a sample rate that is not one of the corpus's declared native rates ``expected_rates``
  (quarantined when ``strict_rate``, otherwise resampled like any other);
* more than one channel (quarantined when ``strict_channels``, otherwise downmixed).
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import soxr


class BadAudio(ValueError):
    """A file that must not enter training; ``reason`` is one line naming the problem."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AudioPolicy:
    """What :func:`check_audio` rejects. Defaults quarantine every suspicious file."""

    expected_rates: tuple[int, ...] | None = None  # the corpus's native rates; None accepts any rate
    strict_rate: bool = True  # a rate outside expected_rates is quarantined (False: resample it anyway)
    strict_channels: bool = True  # multi-channel files are quarantined (False: downmix to mono)
    min_duration: float = 0.1  # seconds
    silence_db: float = -60.0  # RMS in dBFS below which a file is "silent"
    max_clipped_fraction: float | None = None  # e.g. 0.01; None disables the clipping check
    duration_tolerance: float = 0.05  # seconds of disagreement allowed with a declared duration

    @classmethod
    def create(cls, expected_rates: Sequence[int] | int | None = None, **kwargs) -> "AudioPolicy":
        if isinstance(expected_rates, int):
            expected_rates = [expected_rates]
        rates = tuple(int(r) for r in expected_rates) if expected_rates is not None else None
        return cls(expected_rates=rates, **kwargs)


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode a file with soundfile. Returns ``(x: [C, S] float32, sample_rate)``.

    Raises :class:`BadAudio` ("unreadable audio: ...") when the file cannot be decoded.
    """
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types for corrupt files
        raise BadAudio(f"unreadable audio: {' '.join(str(e).split())}") from None
    return np.ascontiguousarray(x.T), int(sr)


def to_mono(x: np.ndarray) -> np.ndarray:
    """``x: [C, S]`` or ``[S]`` -> ``[S]`` (mean over channels)."""
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"to_mono expects audio shaped [C, S] or [S], got {x.shape}")
    return x[0] if x.shape[0] == 1 else x.mean(axis=0, dtype=np.float32)


def resample(x: np.ndarray, sr_in: int, sr_out: int, quality: str = "HQ") -> np.ndarray:
    """Band-limited resampling with soxr. ``x: [S]`` or ``[C, S]``; the output has ``round(S * sr_out / sr_in)`` samples."""
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"resample needs positive rates, got {sr_in} -> {sr_out}")
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    if x.ndim == 1:
        return soxr.resample(x.astype(np.float32, copy=False), sr_in, sr_out, quality=quality)
    if x.ndim != 2:
        raise ValueError(f"resample expects audio shaped [C, S] or [S], got {x.shape}")
    y = soxr.resample(np.ascontiguousarray(x.T, dtype=np.float32), sr_in, sr_out, quality=quality)
    return np.ascontiguousarray(y.T)


def rms_db(x: np.ndarray) -> float:
    """RMS level of ``x`` in dBFS (``-inf`` for digital silence)."""
    if x.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def wav_truncation(path: str | os.PathLike) -> str | None:
    """For RIFF/WAVE files: a reason when the ``data`` chunk declares more bytes than the file holds.

    libsndfile quietly decodes what is there, so a cut-off download looks valid without this check.
    Returns ``None`` for intact WAVs and for other formats.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            endian = "<" if head[:4] == b"RIFF" else ">"
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, csize = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
                if cid == b"data":
                    have = size - pos - 8
                    if csize != 0xFFFFFFFF and csize > have:
                        return f"truncated: WAV header declares {csize} data bytes, the file holds {have}"
                    return None
                pos += 8 + csize + (csize & 1)
    except OSError:
        return None
    return None


def check_format(sr: int, channels: int, policy: AudioPolicy = AudioPolicy()) -> None:
    """Raise :class:`BadAudio` for a rate outside the declared ones or several channels (when strict)."""
    if policy.expected_rates is not None and sr not in policy.expected_rates and policy.strict_rate:
        raise BadAudio(f"wrong rate: {sr} Hz, the corpus declares {list(policy.expected_rates)} Hz")
    if channels > 1 and policy.strict_channels:
        raise BadAudio(f"not mono: {channels} channels (set strict_channels=false to downmix)")


def check_audio(x: np.ndarray, sr: int, policy: AudioPolicy = AudioPolicy(),
                declared_duration: float | None = None) -> None:
    """Raise :class:`BadAudio` when ``x: [C, S]`` at ``sr`` breaks ``policy``.

    ``declared_duration`` (seconds, e.g. from the corpus manifest) is compared with the decoded length.
    """
    if x.ndim != 2:
        raise ValueError(f"check_audio expects audio shaped [C, S], got {x.shape}")
    channels, samples = x.shape
    if samples == 0:
        raise BadAudio("empty: the file decodes to 0 samples")
    seconds = samples / sr
    if declared_duration is not None and abs(seconds - declared_duration) > max(policy.duration_tolerance, 0.01 * declared_duration):
        raise BadAudio(f"truncated: decoded {seconds:.3f} s but the manifest declares {declared_duration:.3f} s")
    if seconds < policy.min_duration:
        raise BadAudio(f"too short: {seconds:.3f} s, the minimum is {policy.min_duration} s")
    check_format(sr, channels, policy)
    if not np.all(np.isfinite(x)):
        raise BadAudio("corrupt: the audio holds NaN or infinite samples")
    level = rms_db(x)
    if level < policy.silence_db:
        raise BadAudio(f"silent: RMS {level:.1f} dBFS is below {policy.silence_db} dBFS")
    if policy.max_clipped_fraction is not None:
        clipped = float(np.mean(np.abs(x) >= 0.999))
        if clipped > policy.max_clipped_fraction:
            raise BadAudio(f"clipped: {100 * clipped:.2f}% of samples at full scale (limit {100 * policy.max_clipped_fraction:.2f}%)")


def load_checked(path: str | os.PathLike, policy: AudioPolicy = AudioPolicy(),
                 declared_duration: float | None = None) -> tuple[np.ndarray, int]:
    """Load, check (truncation included) and downmix: ``(x: [S] float32, native sample_rate)``."""
    reason = wav_truncation(path)
    if reason:
        raise BadAudio(reason)
    x, sr = load_audio(path)
    check_audio(x, sr, policy, declared_duration)
    return to_mono(x), sr


def write_audio(path: str | os.PathLike, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write ``x: [S]`` atomically (through a temporary file and rename), clipped to [-1, 1] for PCM."""
    from ns2.utils.io import atomic_open

    if subtype.startswith("PCM"):
        x = np.clip(x, -1.0, 1.0)
    with atomic_open(path, "wb") as f:
        sf.write(f, x, sr, subtype=subtype, format="WAV")
