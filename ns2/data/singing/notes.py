"""Note-level musical score: notes with lyrics, MIDI pitch, onset and duration in seconds."""
from __future__ import annotations

from dataclasses import dataclass, field

from ns2.audio.f0 import midi_to_hz

MIN_HZ, MAX_HZ = 40.0, 1100.0


@dataclass(frozen=True)
class Note:
    """One note. ``lyric`` None = no syllable (rest or slur continuation); ``pitch`` None = rest.
    ``slur`` True = this note continues the previous note's vowel."""
    lyric: str | None
    pitch: float | None
    onset: float
    duration: float
    slur: bool = False

    @property
    def is_rest(self) -> bool:
        return self.pitch is None


@dataclass(frozen=True)
class NoteScore:
    """Ordered notes plus tempo (quarter notes per minute, if known) and the score's source."""
    notes: tuple[Note, ...]
    tempo_bpm: float | None = None
    source: str = ""
    measures: tuple[int, ...] = field(default=())  # measure number per note, if known

    def __post_init__(self):
        object.__setattr__(self, "notes", tuple(self.notes))
        validate(self)

    @property
    def end(self) -> float:
        return max(n.onset + n.duration for n in self.notes)


def _where(score: NoteScore, i: int) -> str:
    loc = f"note {i}"
    if score.measures and i < len(score.measures):
        loc += f" (measure {score.measures[i]})"
    src = f"{score.source}: " if score.source else ""
    return src + loc


def validate(score: NoteScore) -> None:
    """Raise ValueError with one line naming the offending note/measure."""
    if not score.notes:
        raise ValueError(f"{score.source or 'score'}: empty score, expected at least one note")
    prev_end = None
    for i, n in enumerate(score.notes):
        if n.duration <= 0:
            raise ValueError(f"{_where(score, i)}: duration {n.duration} s, expected > 0")
        if n.onset < 0:
            raise ValueError(f"{_where(score, i)}: onset {n.onset} s, expected >= 0")
        if prev_end is not None and n.onset < prev_end - 1e-6:
            raise ValueError(f"{_where(score, i)}: onset {n.onset:.3f} s overlaps previous note ending "
                             f"{prev_end:.3f} s, expected monophonic notes")
        if n.pitch is None:
            if n.lyric:
                raise ValueError(f"{_where(score, i)}: lyric {n.lyric!r} on a rest, expected a lyric only on a note")
        else:
            hz = midi_to_hz(n.pitch)
            if not MIN_HZ <= hz <= MAX_HZ:
                raise ValueError(f"{_where(score, i)}: pitch {hz:.1f} Hz (MIDI {n.pitch}), expected "
                                 f"{MIN_HZ:.0f}-{MAX_HZ:.0f} Hz")
        prev_end = n.onset + n.duration


def require_music21():
    """Import music21 lazily; one line naming the extra to install when it is missing."""
    try:
        import music21
    except ImportError:
        raise ImportError("music21 is not installed: pip install 'ns2[singing]'") from None
    return music21
