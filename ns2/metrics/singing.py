"""Singing metrics: how closely a sung waveform follows its score.

The estimated F0 (Praat autocorrelation, 10 ms hop) is compared with the score's note pitches
frame by frame with mir_eval's melody measures (the MIREX melody-extraction definitions):

- ``sing_rpa``: raw pitch accuracy, the share of frames inside a note and voiced in the estimate
  whose estimated pitch lies within ``cent_tolerance`` (50) cents of the written note. MIREX counts
  every note frame, but a score does not say where a note's consonants are (they are unvoiced in
  any singer), so frames the estimate leaves unvoiced are left to ``sing_vuv_f1`` instead;
- ``sing_rca``: raw chroma accuracy, the same with octave errors forgiven;
- ``sing_f0_rmse_cents``: RMS pitch error in cents over frames that are notes and voiced in the
  estimate;
- ``sing_vuv_f1``: F1 of the estimate's voicing against the score's (note frames voiced, rests not);
- ``sing_onset_error_ms``: mean over notes of ``|t - onset|``, ``t`` the first frame from
  ``onset - onset_window`` on whose pitch is within tolerance of that note (a note that is never
  reached before it ends is a miss); ``sing_note_hit_rate``: the share of notes reached.

Frames within ``boundary_s`` (20 ms) of a note's start or end are left out of the three pitch
measures: Praat's analysis window there straddles two notes, so even an exact rendition reads the
neighbour's pitch on a frame or two (an exact tone scored 36 cents RMSE with them, under 5 without).

Consonants inside a note are unvoiced, so no real singing scores a voicing F1 or RPA of exactly 1.
A score is a :class:`~ns2.data.singing.notes.NoteScore` or the manifest's ``score`` list (dicts with
``pitch`` (MIDI; 0 or ``rest`` for a rest), ``start`` and ``duration`` in seconds).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ns2.audio.f0 import midi_to_hz
from ns2.metrics.registry import Metric, register_metric

__all__ = ["SingingPitch", "note_track", "notes_of", "singing_scores"]

KEYS = ("sing_rpa", "sing_rca", "sing_f0_rmse_cents", "sing_vuv_f1", "sing_onset_error_ms", "sing_note_hit_rate")


def notes_of(score: Any) -> list[tuple[float, float, float | None]]:
    """``[(onset s, duration s, MIDI pitch or None for a rest)]`` of a NoteScore or a manifest score."""
    if hasattr(score, "notes"):
        return [(float(n.onset), float(n.duration), None if n.pitch is None else float(n.pitch)) for n in score.notes]
    out = []
    for i, n in enumerate(score):
        try:
            rest = bool(n.get("rest")) or not n.get("pitch")
            out.append((float(n["start"]), float(n["duration"]), None if rest else float(n["pitch"])))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"score note {i}: expected a dict with pitch, start and duration, got {n!r}") from e
    if not out:
        raise ValueError("score: no notes")
    return out


def note_track(notes: Sequence[tuple[float, float, float | None]], times: np.ndarray) -> np.ndarray:
    """Frame-level written pitch in Hz at ``times`` (0 in rests and outside the notes)."""
    hz = np.zeros(len(times))
    for onset, duration, pitch in notes:
        if pitch is None:
            continue
        sel = (times >= onset) & (times < onset + duration)
        hz[sel] = midi_to_hz(pitch)
    return hz


def singing_scores(wav: np.ndarray, sr: int, score: Any, hop_s: float = 0.01, cent_tolerance: float = 50.0,
                   onset_window_s: float = 0.1, boundary_s: float = 0.02, f0_floor: float = 50.0,
                   f0_ceiling: float = 1100.0) -> dict[str, float]:
    """The :data:`KEYS` of one sung waveform ``wav: [S]`` against ``score``."""
    import mir_eval.melody as mel

    from ns2.audio.f0 import compute_f0

    notes = notes_of(score)
    hop = max(1, int(round(hop_s * sr)))
    est = compute_f0(np.asarray(wav, dtype=np.float64), sr, hop, pitch_floor=f0_floor, pitch_ceiling=f0_ceiling).astype(np.float64)
    times = (np.arange(len(est)) + 0.5) * hop / sr
    ref = note_track(notes, times)
    if not np.any(ref > 0):
        raise ValueError("score: every note is a rest (nothing to follow)")
    near = np.zeros(len(times), dtype=bool)
    for t in (t for t0, d, _ in notes for t in (t0, t0 + d)):
        near |= np.abs(times - t) < boundary_s
    keep = ~near
    # one grid for both tracks (no resampling); the reference: note frames the estimate voices,
    # away from note starts and ends (module doc)
    est_v = (est > 0).astype(float)
    ref_v = (ref > 0) * est_v * keep
    ref_c, est_c = mel.hz2cents(ref), mel.hz2cents(est)
    if not np.any(ref_v > 0):
        nan = math.nan
        return dict.fromkeys(KEYS, nan) | {"sing_vuv_f1": 0.0, "sing_note_hit_rate": 0.0}
    rpa = float(mel.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c, cent_tolerance))
    rca = float(mel.raw_chroma_accuracy(ref_v, ref_c, est_v, est_c, cent_tolerance))
    both = (ref > 0) & (est > 0) & keep
    rmse = float(np.sqrt(np.mean((1200.0 * np.log2(est[both] / ref[both])) ** 2))) if both.any() else math.nan
    rv, ev = ref > 0, est > 0
    tp = float(np.sum(rv & ev))
    f1 = 2 * tp / (np.sum(rv) + np.sum(ev)) if (np.sum(rv) + np.sum(ev)) else math.nan
    errors, hits, sung = [], 0, 0
    for onset, duration, pitch in notes:
        if pitch is None:
            continue
        sung += 1
        sel = np.flatnonzero((times >= onset - onset_window_s) & (times < onset + duration) & (est > 0))
        close = sel[np.abs(1200.0 * np.log2(est[sel] / midi_to_hz(pitch))) <= cent_tolerance]
        if close.size:
            hits += 1
            errors.append(abs(times[close[0]] - onset) * 1000.0)
    return {"sing_rpa": rpa, "sing_rca": rca, "sing_f0_rmse_cents": rmse, "sing_vuv_f1": float(f1),
            "sing_onset_error_ms": float(np.mean(errors)) if errors else math.nan,
            "sing_note_hit_rate": hits / sung}


@register_metric("singing")
class SingingPitch(Metric):
    """Score following of a sung waveform (see the module doc); needs the item's ``score``."""

    backbone = "praat"
    keys = KEYS
    requires = frozenset({"score"})

    def __init__(self, *args: Any, hop_s: float = 0.01, cent_tolerance: float = 50.0, onset_window_s: float = 0.1,
                 boundary_s: float = 0.02, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._require_backbone()
        self.options = {"hop_s": hop_s, "cent_tolerance": cent_tolerance, "onset_window_s": onset_window_s,
                        "boundary_s": boundary_s}

    def _score(self, hyp_wav: Any, sr: int, *, score: Any = None, **_: Any) -> dict[str, float]:
        return singing_scores(np.asarray(hyp_wav, dtype=np.float64), sr, score, **self.options)
