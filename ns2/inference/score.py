"""A score (singing, or any fixed timing / melody) for NaturalSpeech 2 synthesis, checked and converted.

A score is a mapping (or an object with these attributes) with some of:

* ``durations`` — frames per phoneme [L], replacing the predicted durations;
* ``log_f0`` — natural log of F0 in Hz per codec frame [T], or ``f0`` in Hz (0 = unvoiced), replacing
  the predicted pitch;
* ``phonemes`` — the symbols the durations refer to (otherwise the text is phonemized);
* ``note_pitch`` [L] (MIDI, 0 = no note) and ``note_start`` [L] (bool) — the written notes per
  phoneme, what a model trained with score conditioning reads (``model.net.score_conditioning``);
  without them they are derived from ``durations`` and the pitch (:func:`score_notes`), with
  ``note_frames`` (the ``[start, end)`` frame span of every note, as
  :attr:`ns2.data.singing.convert.ScoreFrames.notes` holds) marking note onsets exactly.

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

import functools

import numpy as np
import torch

from ns2.audio.f0 import f0_to_log
from ns2.inference.synthesizer import SynthesisError

__all__ = ["SCORE_KEYS", "Score", "note_starts", "parse_score", "score_log_f0", "score_notes"]

SCORE_KEYS = ("phonemes", "durations", "log_f0", "f0", "note_pitch", "note_start", "note_frames")


@dataclass
class Score:
    """A checked score: phonemes [L], durations [1, L] long | None, log_f0 [1, T] float32 | None, and
    the notes per phoneme: note_pitch [1, L] float32 (MIDI, 0 = none) | None, note_start [1, L] bool | None."""

    phonemes: list[str]
    durations: torch.Tensor | None
    log_f0: torch.Tensor | None
    note_pitch: torch.Tensor | None = None
    note_start: torch.Tensor | None = None


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


def score_notes(durations: Any, f0: Any, note_frames: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The written notes per phoneme from a score's timing and pitch, as training reads them from a
    manifest's notes (:func:`ns2.data.dataset.note_inputs`).

    durations [L] frames, f0 [T] Hz (0 = rest; T = sum of durations); note_frames: optional
    ``[start, end)`` frame span of every note (rests included). -> (note_pitch [L] float32: the MIDI
    pitch of the median F0 over the phoneme's frames where it is > 0, 0 where none is; a zero-length
    phoneme reads the frame it sits at, or the one before it when that one is a rest (a mark closing
    a note); note_start [L] bool: :func:`note_starts`).
    """
    d = np.asarray(durations, dtype=np.int64)
    hz = np.nan_to_num(np.asarray(f0, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if d.ndim != 1 or hz.ndim != 1 or int(d.sum()) != hz.size:
        raise SynthesisError(f"score: notes need durations [L] summing to the pitch's {hz.size} frames, got "
                             f"{tuple(d.shape)} summing to {int(d.sum())}")
    voiced = hz > 0
    midi = np.where(voiced, 69.0 + 12.0 * np.log2(np.where(voiced, hz, 440.0) / 440.0), 0.0)
    t = hz.size
    pitch = np.zeros(d.size, dtype=np.float32)
    for k, (a, n) in enumerate(zip(_onsets(d).tolist(), d.tolist())):
        if n > 0:
            v = midi[a:a + n][voiced[a:a + n]]
            pitch[k] = float(np.median(v)) if v.size else 0.0
        elif a < t and voiced[a]:
            pitch[k] = midi[a]
        elif 0 < a <= t and voiced[a - 1]:
            pitch[k] = midi[a - 1]
    return pitch, note_starts(pitch, d, note_frames)


def _onsets(durations: np.ndarray) -> np.ndarray:
    """[L] frames -> [L] the frame each phoneme starts at."""
    return np.cumsum(durations) - durations


def note_starts(note_pitch: Any, durations: Any = None, note_frames: Any = None) -> np.ndarray:
    """Which phonemes start a note. note_pitch [L] MIDI (0 = none); with ``durations`` [L] frames and
    ``note_frames`` (``[start, end)`` frames of every note): of every sung note (a span holding a
    phoneme with frames and a note), the phoneme with a note beginning nearest its first frame, within
    one frame (zero-length ones included; the first of ties); otherwise where a note follows a rest
    or the pitch moves by more than half a semitone (repeated notes of one pitch then merge). -> [L] bool."""
    pitch = np.asarray(note_pitch, dtype=np.float64)
    start = np.zeros(pitch.size, dtype=bool)
    if note_frames is None or durations is None:
        prev = 0.0
        for k, p in enumerate(pitch.tolist()):
            start[k] = p > 0 and (prev <= 0 or abs(p - prev) > 0.5)
            prev = p
        return start
    d = np.asarray(durations, dtype=np.int64)
    first = _onsets(d)
    sung = pitch > 0
    for a, b in note_frames:
        a, b = int(a), int(b)
        inside = (d > 0) & (first < b) & (first + d > a)
        if b <= a or not (inside & sung).any():
            continue  # a rest
        near = np.nonzero(sung & (np.abs(first - a) <= 1))[0]
        if near.size:
            start[near[np.argmin(np.abs(first[near] - a))]] = True
    return start


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
        if found["note_frames"] is None:  # ScoreFrames keeps the notes' frame spans as ``notes``
            found["note_frames"] = getattr(score, "notes", None) or None
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
    note_pitch, note_start = _notes(found, n_phonemes, durations)
    as_tensor = functools.partial(torch.as_tensor, device=device)
    return Score(phonemes, durations, log_f0,
                 None if note_pitch is None else as_tensor(note_pitch, dtype=torch.float32)[None],
                 None if note_start is None else as_tensor(note_start, dtype=torch.bool)[None])


def _notes(found: Mapping[str, Any], n_phonemes: int, durations: torch.Tensor | None
           ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The score's notes per phoneme: given (``note_pitch``, ``note_start``; starts derived when only
    the pitch is given), or derived from the durations and the pitch (:func:`score_notes`); (None,
    None) when neither is there."""
    spans = found.get("note_frames")
    if spans is not None:
        try:
            spans = [(int(a), int(b)) for a, b in spans]
        except (TypeError, ValueError):
            raise SynthesisError("score: note_frames must be [start, end) frame pairs, one per note") from None
    d = None if durations is None else durations[0].cpu().numpy()
    if "note_pitch" not in found:
        if "note_start" in found:
            raise SynthesisError("score: note_start without note_pitch; give both (note_pitch 0 = no note)")
        if d is None or not ({"f0", "log_f0"} & set(found)):
            return None, None
        if "f0" in found:
            hz = np.asarray(found["f0"], dtype=np.float64)
        else:
            hz = np.exp(np.asarray(found["log_f0"], dtype=np.float64))  # -inf (unvoiced) -> 0 Hz
        return score_notes(d, hz, spans)
    pitch = np.asarray(found["note_pitch"], dtype=np.float64)
    if pitch.ndim != 1 or len(pitch) != n_phonemes:
        raise SynthesisError(f"score: note_pitch of shape {tuple(pitch.shape)}; expected [{n_phonemes}], one per phoneme")
    if not np.all(np.isfinite(pitch)) or np.any(pitch < 0):
        raise SynthesisError("score: note_pitch must be MIDI numbers >= 0 (0 = no note)")
    if "note_start" in found:
        start = np.asarray(found["note_start"])
        if start.shape != pitch.shape or not np.all(np.isin(start, (0, 1))):
            raise SynthesisError(f"score: note_start must be [{n_phonemes}] booleans, one per phoneme")
        start = start.astype(bool) & (pitch > 0)
    else:
        start = note_starts(pitch, d, spans)
    return pitch.astype(np.float32), start
