"""The manifest: one JSON line per utterance, read and written only through this module.

Every stage of the pipeline (corpus recipes, features, durations, codes, datamodules, the
evaluation harness) exchanges :class:`Utterance` records. Paths inside a manifest are stored
relative to the manifest's own directory, so a prepared corpus can be moved as one folder.

Fields
------
id            unique utterance id (``speaker_chapter_index`` for LibriTTS-like layouts)
audio         path of the audio file (relative to the manifest's folder, or absolute)
sample_rate   sample rate of the file at ``audio`` (Hz)
duration      length in seconds
speaker       speaker id
text          the transcript as written (unnormalised)
kind          ``speech`` or ``singing``
split         ``train``, ``valid`` or ``test`` (held-out speakers live in ``test``)
language      phonemizer language code (``en-us``, ``cmn`` ...)
phonemes      optional list of phoneme symbols from the symbol table (word boundaries ``|``)
word_index    optional, per phoneme: index of its word in ``text``'s words, -1 for boundaries/pauses
phoneme_times optional ground-truth ``[start, end]`` in seconds per phoneme (synthetic corpus)
durations     optional, per phoneme: number of frames; sums exactly to ``num_frames``
frame_rate    frames per second the ``durations`` (and F0/codes) are counted in
num_frames    number of frames of the utterance at ``frame_rate``
score         optional list of notes for singing: ``{"lyric", "pitch", "start", "duration",
              "phoneme_start", "phoneme_end"}`` (pitch as MIDI number, times in seconds,
              phoneme range half-open into ``phonemes``)
features      optional dict of feature name -> path (e.g. ``{"f0": "features/f0/x.npy"}``)
extra         free-form dict for recipe-specific fields
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ns2.utils.io import atomic_open
from ns2.utils.schema import check_fields

KINDS = ("speech", "singing")
SPLITS = ("train", "valid", "test")
NOTE_KEYS = ("lyric", "pitch", "start", "duration", "phoneme_start", "phoneme_end")


class ManifestError(ValueError):
    """A manifest line that does not follow the schema."""


@dataclass
class Utterance:
    id: str
    audio: str
    sample_rate: int
    duration: float
    speaker: str
    text: str
    kind: str = "speech"
    split: str = "train"
    language: str = "en-us"
    phonemes: list[str] | None = None
    word_index: list[int] | None = None
    phoneme_times: list[list[float]] | None = None
    durations: list[int] | None = None
    frame_rate: float | None = None
    num_frames: int | None = None
    score: list[dict] | None = None
    features: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ validation
    def validate(self) -> "Utterance":
        """Check types and cross-field consistency; raise :class:`ManifestError` naming the field."""

        def bad(fld: str, expected: str) -> ManifestError:
            return ManifestError(f"utterance {self.id!r}: field {fld!r} {expected}")

        if not isinstance(self.id, str) or not self.id:
            raise ManifestError(f"utterance id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.audio, str) or not self.audio:
            raise bad("audio", "must be a non-empty path string")
        if not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise bad("sample_rate", f"must be a positive integer, got {self.sample_rate!r}")
        if not isinstance(self.duration, (int, float)) or not math.isfinite(self.duration) or self.duration < 0:
            raise bad("duration", f"must be a finite number of seconds >= 0, got {self.duration!r}")
        for name in ("speaker", "text", "language"):
            if not isinstance(getattr(self, name), str):
                raise bad(name, "must be a string")
        if self.kind not in KINDS:
            raise bad("kind", f"must be one of {KINDS}, got {self.kind!r}")
        if self.split not in SPLITS:
            raise bad("split", f"must be one of {SPLITS}, got {self.split!r}")
        n = None
        if self.phonemes is not None:
            if not isinstance(self.phonemes, list) or not all(isinstance(p, str) and p for p in self.phonemes):
                raise bad("phonemes", "must be a list of non-empty strings")
            n = len(self.phonemes)
        for name in ("word_index", "durations", "phoneme_times"):
            value = getattr(self, name)
            if value is None:
                continue
            if n is None:
                raise bad(name, "is set but 'phonemes' is missing")
            if not isinstance(value, list) or len(value) != n:
                raise bad(name, f"must be a list with one entry per phoneme ({n}), got {len(value) if isinstance(value, list) else type(value).__name__}")
        if self.word_index is not None and not all(isinstance(i, int) and i >= -1 for i in self.word_index):
            raise bad("word_index", "must hold integers >= -1")
        if self.phoneme_times is not None:
            for t in self.phoneme_times:
                if not (isinstance(t, list) and len(t) == 2 and t[0] <= t[1]):
                    raise bad("phoneme_times", f"must hold [start, end] pairs with start <= end, got {t!r}")
        if self.durations is not None:
            if not all(isinstance(d, int) and d >= 0 for d in self.durations):
                raise bad("durations", "must hold integers >= 0 (frames)")
            if self.num_frames is None or self.frame_rate is None:
                raise bad("durations", "needs 'num_frames' and 'frame_rate'")
            if sum(self.durations) != self.num_frames:
                raise bad("durations", f"sum to {sum(self.durations)} but num_frames is {self.num_frames}")
        if self.frame_rate is not None and not (isinstance(self.frame_rate, (int, float)) and self.frame_rate > 0):
            raise bad("frame_rate", f"must be a positive number, got {self.frame_rate!r}")
        if self.num_frames is not None and not (isinstance(self.num_frames, int) and self.num_frames >= 0):
            raise bad("num_frames", f"must be an integer >= 0, got {self.num_frames!r}")
        if self.score is not None:
            if not isinstance(self.score, list):
                raise bad("score", "must be a list of notes")
            for note in self.score:
                missing = [k for k in NOTE_KEYS if not isinstance(note, dict) or k not in note]
                if missing:
                    raise bad("score", f"notes need keys {NOTE_KEYS}; a note lacks {missing}")
                if note["duration"] <= 0:
                    raise bad("score", f"note durations must be > 0, got {note['duration']!r}")
                if n is not None and not (0 <= note["phoneme_start"] <= note["phoneme_end"] <= n):
                    raise bad("score", f"note phoneme range [{note['phoneme_start']}, {note['phoneme_end']}) is outside 0..{n}")
        if not isinstance(self.features, dict) or not isinstance(self.extra, dict):
            raise bad("features/extra", "must be objects")
        return self

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``None`` and empty optional fields are left out."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name in ("features", "extra") and not value):
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Utterance":
        check_fields(d, cls, ("id", "audio", "sample_rate", "duration", "speaker", "text"), ManifestError,
                     "utterance", "line")
        return cls(**d).validate()

    def replace(self, **changes: Any) -> "Utterance":
        return dataclasses.replace(self, **changes)

    def audio_path(self, root: str | os.PathLike) -> Path:
        """Absolute path of the audio, resolving relative paths against ``root`` (the manifest's folder)."""
        p = Path(self.audio)
        return p if p.is_absolute() else Path(root) / p

    def feature_path(self, name: str, root: str | os.PathLike) -> Path:
        if name not in self.features:
            raise KeyError(f"utterance {self.id!r} has no feature {name!r} (has {sorted(self.features)})")
        p = Path(self.features[name])
        return p if p.is_absolute() else Path(root) / p


def check_manifest_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it is a file; else a one-line :class:`ManifestError` saying what it is."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest not found: {path} (run `ns2 prep` first)")
    if not path.is_file():
        raise ManifestError(f"{path}: is a directory; expected a manifest file (manifest.jsonl)")
    return path


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Read and validate a manifest; errors name the file, the line and the field."""
    path = check_manifest_path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); expected a JSONL manifest") from None
    utts: list[Utterance] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            utt = Utterance.from_dict(json.loads(line))
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        except (ManifestError, TypeError) as e:
            raise ManifestError(f"{path}:{lineno}: {e}") from None
        if utt.id in seen:
            raise ManifestError(f"{path}:{lineno}: duplicate utterance id {utt.id!r}")
        seen.add(utt.id)
        utts.append(utt)
    return utts


def write_manifest(path: str | os.PathLike, utts: Iterable[Utterance]) -> None:
    """Validate and write a manifest atomically (all lines or none)."""
    seen: set[str] = set()
    with atomic_open(path, "w", encoding="utf-8") as f:
        for utt in utts:
            utt.validate()
            if utt.id in seen:
                raise ManifestError(f"duplicate utterance id {utt.id!r} while writing {path}")
            seen.add(utt.id)
            f.write(json.dumps(utt.to_dict(), ensure_ascii=False) + "\n")


def summarize(utts: list[Utterance]) -> dict[str, Any]:
    """Hours, speakers, utterances and singing items, overall and per split."""
    def block(us: list[Utterance]) -> dict[str, Any]:
        return {
            "utterances": len(us),
            "hours": round(sum(u.duration for u in us) / 3600.0, 4),
            "speakers": len({u.speaker for u in us}),
            "singing": sum(u.kind == "singing" for u in us),
        }

    out = block(utts)
    out["splits"] = {s: block([u for u in utts if u.split == s]) for s in SPLITS if any(u.split == s for u in utts)}
    return out
