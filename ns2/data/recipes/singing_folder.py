"""Your own singing: a folder of recordings, each with the score it was sung from.

::

    ns2 prep data=singing_folder data.corpus.root=~/songs [data.language=cmn]

An item is ``<name>.wav`` (or ``.flac``) with, beside it, ``<name>.musicxml`` / ``.xml`` / ``.mxl``
(the melody with its lyrics on the notes) or ``<name>.mid`` / ``.midi`` plus ``<name>.txt`` (the
lyrics, one token per note: ``hap-py birth-day _``, see :mod:`ns2.data.singing.readers`). Items
directly in the folder are sung by ``speaker``; items in a sub-folder by the singer it is named
after (``alice/song1.wav`` -> speaker ``alice``).

What an item becomes (``kind="singing"``): the score is read by the project's readers
(:func:`ns2.data.singing.readers.read_score`) and converted by
:func:`ns2.data.singing.convert.score_frames` into the front end's phonemes (``<sil>`` for rests),
frame durations (the vowel carries the note, consonants a bounded share) and the score's F0
contour. Before that the score is fitted to its recording:

* a score whose length differs from the audio's by more than ``tolerance`` (15 % by default) is
  quarantined, with both lengths in the reason: it is the wrong score, or the recording holds more
  (or less) than the score;
* within it, the score's tempo is stretched uniformly so that it ends where the recording does
  (on the model's frame grid: ``sample_rate`` / ``hop_length``). ``extra["stretch"]`` records the
  factor, ``extra["score_seconds"]`` the score's own length;
* rests after the last sung note (a MIDI or MusicXML file pads its last measure) are dropped when
  the score without them is closer to the recording's length (``extra["closing_rests_dropped_s"]``).

The manifest gets ``phonemes``, ``word_index``, ``phoneme_times`` (frame edges of the score's
durations, so the ``durations`` stage reproduces them exactly), ``score`` (one note per score note:
``lyric``, ``pitch`` as MIDI (0 for rests), ``start``/``duration`` in seconds of the recording,
``phoneme_start``/``phoneme_end`` into ``phonemes``, ``word``, ``rest``, ``slur``: the fields of the
synthetic singing items) and ``features["score_f0"]``: the score's F0 (Hz per frame, 0 in rests)
on the model's frame grid, an ``.npy`` written under ``<data.root>/score_f0/``. The ``f0`` stage
adds the F0 measured in the recording (``features["f0"]``, what the model learns); the two can be
compared to find notes sung off the score.

Why the score's timing and not the aligner: the aligner (:mod:`ns2.data.aligner`) is trained on
speech; held vowels, melismas and pitch jumps are outside what it has seen, and it would need a
trained checkpoint before anything can be prepared. The score already gives a monotonic
segmentation that follows the notes, and a recording made from its score (to a click, or along
with the score's playback) keeps its tempo, so a uniform stretch places each note within the
tempo drift the tolerance allows. When a trained aligner is at hand,
``data.prep.durations_source=aligner +data.prep.options.aligner=<ckpt>`` re-aligns the same
phonemes (the score's ``<sil>`` included) to the audio instead; nothing else changes.

Scores the readers reject (a chord, a note without a lyric after a rest, a MIDI file whose notes
and lyric tokens differ in number, an unreadable file), lyrics the text front end cannot read,
recordings without a score and unreadable audio are quarantined with a one-line reason; the run
goes on. The last ``valid_items`` items that pass (by name) are ``valid``, ``test_items`` before
them ``test``, the rest ``train``. Nothing is written into the recordings folder.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ns2.data.recipes.base import Archive, Entry, Quarantined, Recipe, RecipeError, audio_info, one_line

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac")
SCORE_EXTENSIONS = (".musicxml", ".xml", ".mxl", ".mid", ".midi")
SIL = "<sil>"


def find_score(audio: Path) -> Path | None:
    """The score beside ``audio`` (first of :data:`SCORE_EXTENSIONS`), or None."""
    return next((audio.with_suffix(ext) for ext in SCORE_EXTENSIONS if audio.with_suffix(ext).is_file()), None)


def stretch_score(score: Any, factor: float) -> Any:
    """The same :class:`~ns2.data.singing.notes.NoteScore` with every time multiplied by ``factor``."""
    from ns2.data.singing.notes import NoteScore

    notes = tuple(dataclasses.replace(n, onset=n.onset * factor, duration=n.duration * factor) for n in score.notes)
    tempo = score.tempo_bpm / factor if score.tempo_bpm else score.tempo_bpm
    return NoteScore(notes, tempo, score.source, score.measures)


def without_closing_rests(score: Any) -> Any | None:
    """The score without the rests after its last sung note, or None when it ends on a note."""
    from ns2.data.singing.notes import NoteScore

    last = max(k for k, n in enumerate(score.notes) if not n.is_rest) if any(not n.is_rest for n in score.notes) else -1
    if last < 0 or last == len(score.notes) - 1:
        return None
    return NoteScore(score.notes[:last + 1], score.tempo_bpm, score.source, score.measures[:last + 1])


def note_ranges(durations: Sequence[int], note_frames: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Half-open phoneme range of each note: the phonemes whose frames overlap the note's frames,
    and zero-frame symbols (stress, ``|``) that sit inside them."""
    ends, t = [], 0
    for d in durations:
        t += int(d)
        ends.append(t)
    starts = [e - int(d) for e, d in zip(ends, durations)]
    out = []
    for a, b in note_frames:
        members = [k for k, (s, e) in enumerate(zip(starts, ends)) if (s < b and e > a) or (s == e and a <= s < b)]
        if members:
            out.append((members[0], members[-1] + 1))
        else:
            pos = next((k for k, s in enumerate(starts) if s >= a), len(starts))
            out.append((pos, pos))
    return out


class SingingFolder(Recipe):
    name = "singing_folder"
    title = "your singing recordings"
    homepage = ""
    dirnames = ("",)
    subsets = ("all",)
    default_subsets = ("all",)
    kind = "singing"

    def archives(self, subsets: Sequence[str]) -> list[Archive]:
        return []

    def download(self, root: str | os.PathLike, subsets: Sequence[str] | str | None = None) -> Path:
        raise RecipeError("singing_folder: your own recordings cannot be downloaded; put <name>.wav + <name>.musicxml "
                          "(or <name>.mid + <name>.txt) in a folder and pass data.corpus.root=<folder>")

    def how_to_get(self, root: Path, subsets: Sequence[str]) -> str:
        return (f"put <name>.wav recordings with <name>.musicxml scores (or <name>.mid + <name>.txt lyrics) in {root} "
                f"(pass data.corpus.root=<folder>)")

    def subset_dir(self, tree: Path, subset: str) -> Path:
        return tree

    def recordings(self, tree: Path) -> list[Path]:
        return sorted(p for p in tree.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                      and "prepared" not in p.relative_to(tree).parts)

    def check_subset(self, tree: Path, subset: str) -> str | None:
        if not tree.is_dir():
            return f"missing folder {tree}"
        return None if self.recordings(tree) else f"no {'/'.join(AUDIO_EXTENSIONS)} recordings under {tree}"

    def count_audio(self, tree: Path, subset: str) -> int:
        return len(self.recordings(tree))

    def find_tree(self, root: str | os.PathLike) -> Path | None:
        root = Path(root).expanduser()
        return root if self.check_subset(root, "all") is None else None

    def walk(self, tree: Path, subsets: Sequence[str], *, speaker: str = "singer", language: str = "en-us",
             tolerance: float = 0.15, sample_rate: int = 16000, hop_length: int = 200, valid_items: int = 1,
             test_items: int = 0, f0_dir: str | None = None) -> Iterator[Entry | Quarantined]:
        if not 0.0 <= float(tolerance) < 1.0:
            raise RecipeError(f"singing_folder: tolerance={tolerance}; expected a fraction of the audio's length in [0, 1)")
        if int(sample_rate) <= 0 or int(hop_length) <= 0:
            raise RecipeError(f"singing_folder: sample_rate={sample_rate}, hop_length={hop_length}; expected positive integers")
        frame_rate = int(sample_rate) / int(hop_length)
        good: list[Entry] = []
        for wav in self.recordings(tree):
            out = self._item(tree, wav, str(speaker), str(language), float(tolerance), int(sample_rate),
                             int(hop_length), frame_rate, f0_dir)
            if isinstance(out, Quarantined):
                yield out
            else:
                good.append(out)
        n_valid = min(int(valid_items), max(0, len(good) - 1))
        n_test = min(int(test_items), max(0, len(good) - 1 - n_valid))
        if (n_valid, n_test) != (int(valid_items), int(test_items)):
            log.warning("singing_folder: %d usable items; holding out %d valid and %d test (asked for %d and %d)",
                        len(good), n_valid, n_test, valid_items, test_items)
        n_train = len(good) - n_valid - n_test
        for k, e in enumerate(good):
            e.split = "train" if k < n_train else "test" if k < n_train + n_test else "valid"
            yield e

    def _item(self, tree: Path, wav: Path, speaker: str, language: str, tolerance: float, sample_rate: int,
              hop_length: int, frame_rate: float, f0_dir: str | None) -> Entry | Quarantined:
        import numpy as np

        from ns2.audio.frames import num_frames
        from ns2.data.features.durations import durations_to_times
        from ns2.data.singing.convert import score_frames
        from ns2.data.singing.readers import read_score
        from ns2.text import TextFrontendError

        rel = wav.relative_to(tree)
        uid = rel.with_suffix("").as_posix().replace("/", "_")
        singer = rel.parts[0] if len(rel.parts) > 1 else speaker
        path = find_score(wav)
        if path is None:
            return self.quarantine(uid, wav, f"no score: put {wav.stem}.musicxml (or {wav.stem}.mid + {wav.stem}.txt) beside it")
        lyrics = None
        if path.suffix.lower() in (".mid", ".midi"):
            txt = wav.with_suffix(".txt")
            if not txt.is_file():
                return self.quarantine(uid, wav, f"bad score: {path.name} is MIDI and needs its lyrics in {txt.name} "
                                                 "(one syllable per note)")
            lyrics = " ".join(txt.read_text(encoding="utf-8").split())
        try:
            score = read_score(path, lyrics)
        except ImportError as e:  # music21 missing: nothing in the folder can be read
            raise RecipeError(f"singing_folder: {one_line(e)}") from None
        except ValueError as e:  # ScoreReadError and the notes' own checks
            return self.quarantine(uid, wav, f"bad score: {one_line(e)}")
        try:
            rate, seconds, samples = audio_info(wav)
        except Exception as e:  # noqa: BLE001 - one unreadable file is quarantined
            return self.quarantine(uid, wav, f"unreadable audio: {one_line(e)}")
        full = float(score.end)
        trimmed = without_closing_rests(score)
        if trimmed is not None and abs(float(trimmed.end) - seconds) < abs(full - seconds):
            score = trimmed  # the closing rests (measure padding) are not in the recording
        length = float(score.end)
        if abs(length - seconds) > tolerance * seconds:
            sung = f" ({trimmed.end:.2f} s without its closing rests)" if trimmed is not None else ""
            return self.quarantine(uid, wav, f"score length mismatch: {path.name} lasts {full:.2f} s{sung} but {wav.name} "
                                             f"{seconds:.2f} s (differ by {abs(length - seconds) / seconds:.0%}, "
                                             f"more than the tolerance of {tolerance:.0%})")
        frames = num_frames(int(round(samples * sample_rate / rate)), hop_length)  # the audio stage's grid
        factor = frames / frame_rate / length
        try:
            fitted = stretch_score(score, factor)
            conv = score_frames(fitted, frame_rate=frame_rate, language=language)
        except (ValueError, TextFrontendError) as e:
            return self.quarantine(uid, wav, f"bad score: {one_line(e)}")
        words = conv.text.split(" ")
        ranges = note_ranges(conv.durations, conv.notes)
        notes = []
        for n, (a, b) in zip(fitted.notes, ranges):
            wi = next((conv.word_index[k] for k in range(a, b) if conv.word_index[k] >= 0), -1)
            pitch = 0 if n.is_rest else (int(n.pitch) if float(n.pitch).is_integer() else round(float(n.pitch), 3))
            notes.append({"lyric": SIL if n.is_rest else ("-" if n.slur else (n.lyric or "")), "pitch": pitch,
                          "start": round(n.onset, 6), "duration": round(n.duration, 6), "phoneme_start": a,
                          "phoneme_end": b, "word": words[wi] if wi >= 0 and not n.is_rest else "",
                          "rest": n.is_rest, "slur": bool(n.slur)})
        features: dict[str, Path] = {}
        if f0_dir is not None:
            from ns2.data.stages.base import safe_name

            out = Path(f0_dir) / f"{safe_name(uid)}.npy"
            out.parent.mkdir(parents=True, exist_ok=True)
            np.save(out, conv.f0.astype(np.float32))
            features["score_f0"] = out
        extra = {"score_file": rel.with_name(path.name).as_posix(), "score_seconds": round(length, 6),
                 **({"closing_rests_dropped_s": round(full - length, 6)} if length < full else {}),
                 "stretch": round(factor, 6), "tempo_bpm": score.tempo_bpm, "score_frame_rate": frame_rate}
        return Entry(uid, wav, singer, conv.text, "train", kind="singing", language=language, score=notes,
                     extra=extra, phonemes=list(conv.phonemes), word_index=[int(i) for i in conv.word_index],
                     phoneme_times=durations_to_times(conv.durations, frame_rate), features=features)


class SingingFolderCorpus:
    """The ``data.corpus`` of ``data=singing_folder``: ``build(out_root)`` walks the recordings folder
    ``root`` and writes ``<out_root>/raw.jsonl`` (with ``quarantine.jsonl`` and ``score_f0/``) there,
    never into the recordings folder. The keywords are :meth:`SingingFolder.walk`'s."""

    def __init__(self, root: str | os.PathLike | None = None, **options: Any) -> None:
        self.recipe = SingingFolder()
        self.name = self.recipe.name
        self.root = None if root in (None, "") else Path(root).expanduser()
        if self.root is not None and not self.root.is_dir():
            why = "is a file" if self.root.exists() else "does not exist"
            raise RecipeError(f"singing_folder: data.corpus.root={self.root} {why}; expected the folder of your recordings")
        if "f0_dir" in options:
            raise RecipeError("singing_folder: f0_dir is set by the corpus (<data.root>/score_f0); leave it out")
        self.options = self.recipe.check_options(options)

    def build(self, root: str | os.PathLike | None = None, num_workers: int = 1) -> Path:
        if self.root is None:
            raise RecipeError("singing_folder: pass the folder of your recordings: data.corpus.root=<folder>")
        out = Path(root).expanduser() if root is not None else self.root
        self.recipe.verify(self.root, None, checksums=False, count=False)
        raw = out / "raw.jsonl"
        self.recipe.build_manifest(self.root, raw, subsets=["all"], num_workers=num_workers,
                                   f0_dir=str(out / "score_f0"), **self.options)
        return raw

    def __repr__(self) -> str:
        return f"SingingFolderCorpus(root={str(self.root)!r})"
