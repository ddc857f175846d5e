"""Read scores: MusicXML (with lyrics) and MIDI + a lyric text, through music21.

Both give a :class:`~ns2.data.singing.notes.NoteScore` in seconds (tempo marks applied; 120 quarter
notes per minute when a file has none). Lyric convention of the returned notes: a syllable that does
not end its word carries a trailing ``-`` (``hap-`` ``py``); a note with no lyric after a sung note
is a slur (melisma: the previous vowel continues); a tied note is merged into the note it continues.

``read_midi(path, lyrics)``: the lyric text gives one token per note, in order: syllables split by
spaces, ``-`` joining the syllables of a word (``hap-py birth-day``), ``_`` for a melisma note.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ns2.data.singing.notes import Note, NoteScore, require_music21

__all__ = ["read_midi", "read_musicxml", "read_score"]


class ScoreReadError(ValueError):
    """A score file that cannot be read as a monophonic sung melody (names the file and the note)."""


def _events(path: Path) -> tuple[list[dict[str, Any]], float | None]:
    """Notes and rests of the first part in time order: dicts with ``midi`` (None for a rest),
    ``onset``/``duration`` (s), ``lyric`` and ``syllabic``, ``tie``, ``measure``."""
    music21 = require_music21()
    try:
        parsed = music21.converter.parse(str(path))
    except Exception as e:  # noqa: BLE001  (music21 raises many kinds)
        raise ScoreReadError(f"{path}: cannot read as a score ({type(e).__name__}: {e})") from e
    parts = list(getattr(parsed, "parts", [])) or [parsed]
    part = parts[0]
    flat = part.flatten()
    marks = list(flat.getElementsByClass("MetronomeMark"))
    tempo = float(marks[0].getQuarterBPM()) if marks else None
    if not marks:
        flat.insert(0, music21.tempo.MetronomeMark(number=120))
    out = []
    for entry in flat.secondsMap:
        el = entry["element"]
        if not isinstance(el, (music21.note.Note, music21.note.Rest, music21.chord.Chord)):
            continue
        measure = getattr(el, "measureNumber", None)
        if isinstance(el, music21.chord.Chord):
            raise ScoreReadError(f"{path}: measure {measure}: a chord of {len(el.pitches)} notes; expected one "
                                 "sung melody (monophonic)")
        if entry["durationSeconds"] <= 0:  # grace notes
            continue
        lyric = syllabic = None
        if isinstance(el, music21.note.Note) and el.lyrics:
            lyric, syllabic = el.lyrics[0].text, el.lyrics[0].syllabic
        out.append({
            "midi": None if el.isRest else float(el.pitch.ps),
            "onset": float(entry["offsetSeconds"]), "duration": float(entry["durationSeconds"]),
            "lyric": lyric, "syllabic": syllabic, "tie": el.tie.type if getattr(el, "tie", None) else None,
            "measure": measure,
        })
    if not out:
        raise ScoreReadError(f"{path}: no notes in its first part")
    return out, tempo


def _merge_ties(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for ev in events:
        tied = ev["tie"] in ("stop", "continue") and merged and ev["midi"] is not None
        if tied and merged[-1]["midi"] == ev["midi"]:
            merged[-1]["duration"] = ev["onset"] + ev["duration"] - merged[-1]["onset"]
            continue
        merged.append(dict(ev))
    return merged


def _score(path: Path, events: list[dict[str, Any]], tempo: float | None) -> NoteScore:
    notes, measures = [], []
    sung_before = False
    for ev in events:
        if ev["midi"] is None:
            notes.append(Note(None, None, ev["onset"], ev["duration"]))
            sung_before = False
        else:
            lyric = ev["lyric"]
            slur = not lyric and sung_before
            if lyric and ev["syllabic"] in ("begin", "middle"):
                lyric = lyric + "-"
            if not lyric and not slur:
                raise ScoreReadError(f"{path}: measure {ev['measure']}: a note without a lyric after a rest; "
                                     "expected a syllable (or a slur continuing a sung note)")
            notes.append(Note(lyric or None, ev["midi"], ev["onset"], ev["duration"], slur=slur))
            sung_before = True
        measures.append(int(ev["measure"]) if ev["measure"] is not None else 0)
    try:
        return NoteScore(tuple(notes), tempo, str(path), tuple(measures))
    except ValueError as e:
        raise ScoreReadError(str(e)) from None


def read_musicxml(path: str | os.PathLike) -> NoteScore:
    """A MusicXML (``.musicxml``, ``.xml``, ``.mxl``) melody with lyrics -> NoteScore."""
    path = Path(path)
    if not path.is_file():
        raise ScoreReadError(f"score {path} not found (expected a MusicXML file)")
    events, tempo = _events(path)
    return _score(path, _merge_ties(events), tempo)


_TOKEN = re.compile(r"[^\s-]+-?|_")


def lyric_tokens(lyrics: str) -> list[str]:
    """``"hap-py birth-day _ to you"`` -> ``["hap-", "py", "birth-", "day", "_", "to", "you"]``."""
    return _TOKEN.findall(lyrics)


def read_midi(path: str | os.PathLike, lyrics: str) -> NoteScore:
    """A monophonic MIDI melody + its lyric text (module doc) -> NoteScore."""
    path = Path(path)
    if not path.is_file():
        raise ScoreReadError(f"score {path} not found (expected a MIDI file)")
    raw, tempo = _events(path)
    events = _merge_ties(raw)
    sung = [ev for ev in events if ev["midi"] is not None]
    tokens = lyric_tokens(lyrics)
    if len(tokens) != len(sung):
        raise ScoreReadError(f"{path}: {len(sung)} notes but {len(tokens)} lyric tokens in {lyrics!r}; expected one "
                             "syllable (or '_' for a melisma) per note")
    it = iter(tokens)
    for ev in sung:
        tok = next(it)
        ev["lyric"], ev["syllabic"] = (None, None) if tok == "_" else (tok.rstrip("-"), "begin" if tok.endswith("-") else "end")
    return _score(path, events, tempo)


def read_score(path: str | os.PathLike, lyrics: str | None = None) -> NoteScore:
    """MusicXML or MIDI by extension (MIDI needs ``lyrics``)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".mid", ".midi"):
        if not lyrics:
            raise ScoreReadError(f"{path}: a MIDI score needs its lyrics (lyrics='hap-py birth-day ...')")
        return read_midi(path, lyrics)
    if suffix in (".musicxml", ".xml", ".mxl"):
        return read_musicxml(path)
    raise ScoreReadError(f"score {path}: unknown format {suffix!r}; expected .musicxml/.xml/.mxl or .mid/.midi")
