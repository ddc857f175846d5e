"""Fixtures of the metric tests: synthetic speech (espeak-ng through its C API), harmonic tones, caches."""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

SR = 16000


class _Espeak:
    """Minimal espeak-ng synthesis through the library shipped by espeakng-loader (22.05 kHz int16)."""

    _CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_parent = Path(espeakng_loader.get_data_path()).parent
        self.sr = self.lib.espeak_Initialize(2, 0, str(data_parent).encode(), 0)  # synchronous, no events
        if self.sr <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self.chunks: list[np.ndarray] = []

        def cb(wav, n, _events):
            if n > 0:
                self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._cb = self._CB(cb)  # keep a reference: the library calls it
        self.lib.espeak_SetSynthCallback(self._cb)

    def __call__(self, text: str, voice: str = "en-us") -> np.ndarray:
        """``text`` spoken by ``voice`` -> float32 ``[S]`` at 16 kHz."""
        import soxr

        self.chunks = []
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak voice {voice!r} not found")
        b = text.encode()
        self.lib.espeak_Synth(ctypes.c_char_p(b), ctypes.c_size_t(len(b) + 1), 0, 0, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        wav = np.concatenate(self.chunks).astype(np.float32) / 32768.0
        return soxr.resample(wav, self.sr, SR).astype(np.float32)


@pytest.fixture(scope="session")
def speech():
    """``speech(text, voice)`` -> espeak-ng speech ``[S]`` float32 at 16 kHz (cached)."""
    try:
        engine = _Espeak()
    except (ImportError, OSError, RuntimeError) as e:  # pragma: no cover
        pytest.skip(f"espeak-ng unavailable: {e}")
    cache: dict[tuple[str, str], np.ndarray] = {}

    def make(text: str, voice: str = "en-us") -> np.ndarray:
        if (text, voice) not in cache:
            cache[(text, voice)] = engine(text, voice)
        return cache[(text, voice)]

    return make


def harmonic_tone(f0_per_segment, seg_frames, frame_rate: float = 80.0, sr: int = SR, n_harmonics: int = 8, amp: float = 0.3):
    """A phase-continuous harmonic signal whose F0 is constant within each segment.

    ``f0_per_segment: [N]`` Hz (0 = silence), ``seg_frames: [N]`` frames at ``frame_rate`` -> ``[S]`` float32,
    S = sum(seg_frames) * sr / frame_rate.
    """
    hop = int(round(sr / frame_rate))
    f0 = np.repeat(np.asarray(f0_per_segment, dtype=np.float64), np.asarray(seg_frames) * hop)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1))
    x = np.where(f0 > 0, x, 0.0)
    return (amp * x / np.max(np.abs(x) + 1e-9)).astype(np.float32)


@pytest.fixture()
def checksums(tmp_path):
    """A private checksum manifest path (the package's own manifest is never written by tests)."""
    return tmp_path / "checksums.json"


@pytest.fixture(scope="session")
def tone():
    """:func:`harmonic_tone` as a fixture."""
    return harmonic_tone
