"""A score (singing, or any fixed timing / melody) for NaturalSpeech 2 synthesis, checked and converted.

A score is a mapping (or an object with these attributes) with some of:

* ``durations`` — frames per phoneme [L], replacing the predicted durations;
* ``log_f0`` — natural log of F0 in Hz per codec frame [T], or ``f0`` in Hz (0 = unvoiced), replacing
  the predicted pitch;
* ``phonemes`` — the symbols the durations refer to (otherwise the text is phonemized).

Pitch follows the training convention (:func:`ns2.audio.f0.f0_to_log` with ``interpolate``, as
the dataset builds ``log_f0``): unvoiced frames (``f0 = 0``, or a non-finite ``log_f0``) take the
log-F0 interpolated between the neighbouring voiced frames, so the pitch embedding never sees a value
training never showed it (log 0 = −inf would fall into bucket 0). A contour with no voiced frame is
rejected.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ns2.audio.f0 import f0_to_log
from ns2.inference.synthesizer import SynthesisError

__all__ = ["SCORE_KEYS", "Score", "parse_score", "score_log_f0"]

SCORE_KEYS = ("phonemes", "durations", "log_f0", "f0")


@dataclass
class Score:
    """A checked score: phonemes [L], durations [1, L] long | None, log_f0 [1, T] float32 | None."""

    phonemes: list[str]
    durations: torch.Tensor | None
    log_f0: torch.Tensor | None


def score_log_f0(values: Any, key: str = "f0") -> np.ndarray:
    """A score's pitch as the log-F0 contour training uses. ``values`` [T]: Hz (``key="f0"``, 0 =
    unvoiced) or natural-log Hz (``key="log_f0"``, non-finite = unvoiced) -> [T] float32, unvoiced
    frames interpolated (held flat at the edges). SynthesisError for bad values or no voiced frame."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise SynthesisError(f"score: {key} of shape {tuple(v.shape)}; expected [T], one value per codec frame")
    if key == "f0":
        if np.any(~np.isfinite(v)) or np.any(v < 0):
            raise SynthesisError("score: f0 must be finite Hz >= 0 (0 = unvoiced)")
        f0 = v
    else:
        if np.any(np.isnan(v)) or np.any(v == np.inf):
            raise SynthesisError("score: log_f0 contains NaN or +inf; expected natural-log Hz (-inf = unvoiced)")
        f0 = np.where(np.isfinite(v), np.exp(np.where(np.isfinite(v), v, 0.0)), 0.0)
    log_f0, voiced = f0_to_log(f0, interpolate=True)
    if not voiced.any():
        raise SynthesisError(f"score: {key} has no voiced frame; expected at least one (0 Hz = unvoiced)")
    return log_f0


def parse_score(score: Any, text: str, phonemize: Callable[[str], list[str]],
                device: torch.device | str = "cpu") -> Score:
    """Check a score (module docstring) against itself and the text; ``phonemize(text)`` gives the
    phonemes when the score has none. Raises SynthesisError (one line) naming what is wrong."""
    if isinstance(score, Mapping):
        found = {str(k): score[k] for k in score}
        unknown = sorted(set(found) - set(SCORE_KEYS))
        if unknown:
            raise SynthesisError(f"score: unknown keys {unknown}; expected some of {list(SCORE_KEYS)}")
    else:
        found = {k: getattr(score, k, None) for k in SCORE_KEYS}
    found = {k: v for k, v in found.items() if v is not None}
    if "log_f0" in found and "f0" in found:
        raise SynthesisError("score: give log_f0 or f0 (Hz), not both")
    if not ({"durations", "log_f0", "f0"} & set(found)):
        raise SynthesisError(f"score: expected durations (frames per phoneme) and/or log_f0 / f0 (per frame), got keys {sorted(found)}")
    if "phonemes" in found:
        phonemes = found["phonemes"]
        if isinstance(phonemes, str) or not all(isinstance(p, str) for p in phonemes):
            raise SynthesisError("score: phonemes must be a list of symbols of the symbol table")
        phonemes = list(phonemes)
    else:
        phonemes = phonemize(text)
    n_phonemes = len(phonemes)
    durations = None
    if "durations" in found:
        d = np.asarray(found["durations"], dtype=np.float64)
        if d.ndim != 1 or len(d) != n_phonemes:
            raise SynthesisError(f"score: durations of shape {tuple(d.shape)}; expected [{n_phonemes}], one per phoneme")
        if not np.all(np.isfinite(d)) or np.any(d < 0) or np.any(np.abs(d - np.round(d)) > 1e-6):
            raise SynthesisError("score: durations must be whole numbers of frames >= 0")
        if d.sum() < 1:
            raise SynthesisError("score: durations sum to 0 frames; expected at least 1")
        durations = torch.as_tensor(np.round(d), dtype=torch.long, device=device)[None]
    log_f0 = None
    if "log_f0" in found or "f0" in found:
        key = "log_f0" if "log_f0" in found else "f0"
        v = score_log_f0(found[key], key)
        if durations is not None and v.size != int(durations.sum()):
            raise SynthesisError(
                f"score: {key} has {v.size} frames but the durations sum to {int(durations.sum())}; expected equal"
            )
        log_f0 = torch.as_tensor(v, dtype=torch.float32, device=device)[None]
    return Score(phonemes, durations, log_f0)
