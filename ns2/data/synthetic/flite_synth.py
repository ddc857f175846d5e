"""In-process speech synthesis with CMU Flite (Debian's ``libflite1``), with segment timings.

Flite's voices (``rms``, ``slt``, ``awb``: statistical-parametric clustergen voices; ``kal16``,
``kal``: diphone voices) are far more intelligible to an offline recogniser than espeak-ng's
formant voices, which is what makes the corpus's WER column mean something. The C API is driven
through ctypes: ``flite_synth_text`` returns an utterance whose ``Segment`` relation lists every
phone (CMU phone set, ``pau`` for silence) with its end time, and whose ``SylStructure`` relation
gives each phone's word. The voice feature ``duration_stretch`` is set per call (pitch and timbre
are reshaped afterwards, by Praat).

The libraries are looked up in ``$NS2_FLITE_LIB_DIR``, then in ``<venv>/opt/flite`` (where
``make install`` unpacks Debian's package when it cannot install it system-wide), then in the
system library path.

C structures (flite 2.2, ``cst_wave.h`` / ``cst_voice.h``)::

    cst_wave  { const char *type; int sample_rate; int num_samples; int num_channels; short *samples; }
    cst_voice { const char *name; cst_features *features; ... }
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FLITE_VOICES", "Flite", "FliteError", "FliteOutput", "Segment", "flite_available", "get_flite"]

#: Usable English voices and their native sample rates.
FLITE_VOICES: dict[str, int] = {"rms": 16000, "slt": 16000, "awb": 16000, "kal16": 16000, "kal": 8000}
_CORE_LIBS = ("libflite.so.1", "libflite_cmulex.so.1", "libflite_usenglish.so.1")
_PRELOAD = ("libasound.so.2",)  # libflite1's own dependency, loaded from the same folder when unpacked there
_MULTIARCH = ("x86_64-linux-gnu", "aarch64-linux-gnu")


class FliteError(RuntimeError):
    """Flite is missing or failed (names the library or the text)."""


class _Wave(ctypes.Structure):
    _fields_ = [("type", ctypes.c_char_p), ("sample_rate", ctypes.c_int), ("num_samples", ctypes.c_int),
                ("num_channels", ctypes.c_int), ("samples", ctypes.POINTER(ctypes.c_short))]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("features", ctypes.c_void_p)]


@dataclass(frozen=True)
class Segment:
    """One phone: CMU name (``pau`` for silence), start and end (s), its word number (0-based,
    ``-1`` for silences) and that word's text as Flite read it."""

    name: str
    start: float
    end: float
    word: int
    word_text: str = ""


@dataclass
class FliteOutput:
    """``audio: [S]`` int16 at ``sample_rate``; ``segments`` contiguous from 0 to the end."""

    audio: np.ndarray
    sample_rate: int
    segments: list[Segment] = field(default_factory=list)


def _lib_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("NS2_FLITE_LIB_DIR")
    if env:
        dirs.append(Path(env))
    vendored = Path(sys.prefix) / "opt" / "flite" / "usr" / "lib"
    dirs += [vendored / m for m in _MULTIARCH] + [vendored]
    dirs += [Path("/usr/lib") / m for m in _MULTIARCH] + [Path("/usr/lib"), Path("/usr/local/lib")]
    return dirs


def _find(name: str) -> str | None:
    for d in _lib_dirs():
        if (d / name).exists():
            return str(d / name)
    return None


def flite_available() -> bool:
    """Whether the Flite libraries can be found (see the module doc)."""
    return _find(_CORE_LIBS[0]) is not None


class Flite:
    """libflite with its English voices; use :func:`get_flite` (one instance per process)."""

    def __init__(self) -> None:
        missing = [n for n in _CORE_LIBS if _find(n) is None]
        if missing:
            raise FliteError(f"Flite libraries {missing} not found in {[str(d) for d in _lib_dirs()[:3]]} or the "
                             "system library path; run `make install` (it installs Debian's libflite1) or "
                             "`apt-get install flite`, or set NS2_FLITE_LIB_DIR")
        try:
            for n in _PRELOAD:
                path = _find(n)
                if path is not None and not path.startswith("/usr/"):
                    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            lib, *_ = [ctypes.CDLL(_find(n), mode=ctypes.RTLD_GLOBAL) for n in _CORE_LIBS]
        except OSError as e:
            raise FliteError(f"Flite libraries found but failed to load: {e}") from e
        lib.flite_init.restype = ctypes.c_int
        lib.flite_synth_text.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.flite_synth_text.restype = ctypes.c_void_p
        lib.utt_wave.argtypes = [ctypes.c_void_p]
        lib.utt_wave.restype = ctypes.POINTER(_Wave)
        lib.utt_relation.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.utt_relation.restype = ctypes.c_void_p
        lib.relation_head.argtypes = [ctypes.c_void_p]
        lib.relation_head.restype = ctypes.c_void_p
        for fn in ("item_next", "item_parent"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
            getattr(lib, fn).restype = ctypes.c_void_p
        lib.item_as.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.item_as.restype = ctypes.c_void_p
        lib.item_feat_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.item_feat_string.restype = ctypes.c_char_p
        lib.item_feat_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.item_feat_float.restype = ctypes.c_float
        lib.feat_set_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
        lib.feat_set_float.restype = None
        lib.delete_utterance.argtypes = [ctypes.c_void_p]
        lib.delete_utterance.restype = None
        lib.flite_init()
        self.lib = lib
        self._libc = ctypes.CDLL(None)
        self._libc.srand.argtypes = [ctypes.c_uint]
        self._voices: dict[str, int] = {}
        self._lock = threading.Lock()

    def _voice(self, name: str) -> int:
        if name not in FLITE_VOICES:
            raise FliteError(f"unknown Flite voice {name!r}; expected one of {sorted(FLITE_VOICES)}")
        if name not in self._voices:
            so = f"libflite_cmu_us_{name}.so.1"
            path = _find(so)
            if path is None:
                raise FliteError(f"Flite voice library {so} not found (install Debian's libflite1)")
            vlib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            register = getattr(vlib, f"register_cmu_us_{name}")
            register.argtypes = [ctypes.c_char_p]
            register.restype = ctypes.c_void_p
            voice = register(None)
            if not voice:
                raise FliteError(f"register_cmu_us_{name} returned no voice")
            self._voices[name] = voice
        return self._voices[name]

    def synthesize(self, text: str, voice: str = "rms", duration_stretch: float = 1.0, seed: int = 0) -> FliteOutput:
        """Speak ``text`` with ``voice``; ``duration_stretch`` > 1 speaks slower. The clustergen
        voices draw excitation noise from the C library's ``rand()``, seeded here with ``seed``: the
        same arguments give the same samples."""
        if not text.strip():
            raise FliteError("Flite: empty text")
        if not 0.3 <= duration_stretch <= 3.0:
            raise FliteError(f"Flite duration_stretch {duration_stretch} outside [0.3, 3.0]")
        with self._lock:
            v = self._voice(voice)
            feats = ctypes.cast(v, ctypes.POINTER(_Voice)).contents.features
            self.lib.feat_set_float(feats, b"duration_stretch", ctypes.c_float(duration_stretch))
            self._libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
            utt = self.lib.flite_synth_text(text.encode("utf-8"), v)
            if not utt:
                raise FliteError(f"Flite ({voice}) failed on text {text!r}")
            try:
                wave = self.lib.utt_wave(utt).contents
                n = wave.num_samples * max(wave.num_channels, 1)
                audio = np.ctypeslib.as_array(wave.samples, shape=(n,)).astype(np.int16).copy()
                if wave.num_channels > 1:
                    audio = audio.reshape(-1, wave.num_channels)[:, 0].copy()
                sr = int(wave.sample_rate)
                segments = self._segments(utt)
            finally:
                self.lib.delete_utterance(utt)
        return FliteOutput(audio, sr, segments)

    def _segments(self, utt: int) -> list[Segment]:
        lib = self.lib
        out: list[Segment] = []
        words: dict[int, int] = {}
        start = 0.0
        item = lib.relation_head(lib.utt_relation(utt, b"Segment"))
        while item:
            name = lib.item_feat_string(item, b"name").decode()
            end = float(lib.item_feat_float(item, b"end"))
            word, word_text = -1, ""
            syl = lib.item_as(item, b"SylStructure")
            if syl and name != "pau":
                w = lib.item_parent(lib.item_parent(syl))
                if w:
                    word = words.setdefault(w, len(words))
                    word_text = lib.item_feat_string(w, b"name").decode()
            out.append(Segment(name, start, max(end, start), word, word_text))
            start = max(end, start)
            item = lib.item_next(item)
        return out


_FLITE: Flite | None = None


def get_flite() -> Flite:
    """The process's Flite instance (libraries loaded once)."""
    global _FLITE
    if _FLITE is None:
        _FLITE = Flite()
    return _FLITE
