"""Opencpop: Mandarin singing (one female singer, 100 songs, 44.1 kHz) with aligned scores.

Tree (``Opencpop/``): ``segments/transcriptions.txt``, ``segments/train.txt``, ``segments/test.txt``
and ``segments/wavs/<id>.wav``. Each line is
``id|text|phones|note pitches|note durations|phone durations|slur flags`` with one pitch, note
duration and slur flag per phone (``D#4/Eb4`` style names, ``rest`` for ``SP``/``AP`` pauses).

The score (``Utterance.score``) has one note per syllable (initial + final share a note), per
slurred extra note (slur flag 1: the final is sung again on a new pitch, lyric ``-``) and per rest
(pitch 0, lyric ``SP``/``AP``, ``rest: True``). ``start`` is where the note's first phone starts
in the audio (from the phone durations), ``duration`` the score's note duration.

``phoneme_start``/``phoneme_end`` index the corpus's own phones, stored in
``extra["corpus_phones"]`` (with ``extra["corpus_phone_durations"]`` in seconds). ``phonemes``
is left unset: the text front end fills it later and must re-map the note ranges onto its
symbols (``Utterance.validate`` checks note ranges only once ``phonemes`` is set).

Splits: the official ``test.txt`` -> test; the last ``num_valid`` ids of ``train.txt`` -> valid.
Opencpop is distributed on request only: :meth:`Opencpop.download` explains how to get it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Sequence

from ns2.data.recipes.base import Archive, Entry, Quarantined, Recipe, RecipeError

INITIALS = frozenset("b p m f d t n l g k h j q x zh ch sh r z c s y w".split())
REST_PHONES = frozenset({"SP", "AP"})
_NOTE = re.compile(r"^([A-Ga-g])([#b]*)(-?\d+)$")
_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def note_to_midi(name: str) -> int | None:
    """``"A4"`` -> 69, ``"D#4/Eb4"`` -> 63, ``"rest"`` -> None (first spelling of ``X/Y`` is used)."""
    name = name.strip().split("/")[0]
    if name.lower() == "rest":
        return None
    m = _NOTE.match(name)
    if not m:
        raise ValueError(f"not a note name: {name!r} (expected e.g. 'C4', 'D#4/Eb4' or 'rest')")
    letter, accidentals, octave = m.groups()
    return 12 * (int(octave) + 1) + _SEMITONE[letter.upper()] + accidentals.count("#") - accidentals.count("b")


def parse_transcription(line: str) -> dict:
    """One ``transcriptions.txt`` line -> ``{"id", "text", "phones", "pitches", "note_durations",
    "phone_durations", "slurs"}`` (per-phone lists; pitches as MIDI or None for rests)."""
    fields = line.rstrip("\n").split("|")
    if len(fields) != 7:
        raise ValueError(f"expected 7 '|'-separated fields, got {len(fields)}")
    uid, text, phones, pitches, note_durs, phone_durs, slurs = (f.strip() for f in fields)
    out = {"id": uid, "text": text, "phones": phones.split(), "pitches": [note_to_midi(p) for p in pitches.split()],
           "note_durations": [float(x) for x in note_durs.split()], "phone_durations": [float(x) for x in phone_durs.split()],
           "slurs": [int(x) for x in slurs.split()]}
    n = len(out["phones"])
    bad = [k for k in ("pitches", "note_durations", "phone_durations", "slurs") if len(out[k]) != n]
    if bad:
        raise ValueError(f"{bad} do not have one entry per phone ({n})")
    return out


def lyric_characters(text: str) -> list[str]:
    """The sung characters of ``text`` (``AP``/``SP`` markers, spaces and punctuation removed)."""
    text = re.sub(r"AP|SP", "", text)
    return [c for c in text if c.isalnum()]


def build_score(item: dict) -> list[dict]:
    """Notes ``{"lyric", "pitch", "start", "duration", "phoneme_start", "phoneme_end", "slur", "rest"}``."""
    phones, pitches, slurs = item["phones"], item["pitches"], item["slurs"]
    starts, t = [], 0.0
    for d in item["phone_durations"]:
        starts.append(round(t, 6))
        t += d
    notes, i, n = [], 0, len(phones)
    while i < n:
        j = i + 1
        if phones[i] in INITIALS and j < n and not slurs[j] and pitches[j] == pitches[i]:
            j += 1  # an initial shares its final's note
        rest = pitches[j - 1] is None
        duration = item["note_durations"][j - 1]
        if duration <= 0:
            duration = sum(item["phone_durations"][i:j])
        if duration <= 0:
            raise ValueError(f"note at phone {i} ({phones[i]!r}) has no duration")
        notes.append({"lyric": phones[i] if rest else ("-" if slurs[i] else "".join(phones[i:j])),
                      "pitch": 0 if rest else pitches[j - 1], "start": starts[i], "duration": duration,
                      "phoneme_start": i, "phoneme_end": j, "slur": bool(slurs[i]), "rest": rest})
        i = j
    sung = [nt for nt in notes if not nt["rest"] and not nt["slur"]]
    chars = lyric_characters(item["text"])
    if len(chars) == len(sung):  # otherwise the lyric stays the pinyin of the syllable
        for nt, c in zip(sung, chars):
            nt["lyric"] = c
    return notes


class Opencpop(Recipe):
    name = "opencpop"
    title = "Opencpop"
    homepage = "https://wenet.org.cn/opencpop/"
    dirnames = ("Opencpop", "opencpop")
    subsets = ("all",)
    default_subsets = ("all",)
    language = "cmn"
    kind = "singing"
    audio_glob = "wavs/*.wav"
    expected_counts = {"all": 3756}  # segments in the official release (Opencpop paper)

    def archives(self, subsets: Sequence[str]) -> list[Archive]:
        return []

    def how_to_get(self, root: Path, subsets: Sequence[str]) -> str:
        return (f"Opencpop is shared on request only: apply at {self.homepage}, then unpack it so that "
                f"{Path(root) / 'Opencpop' / 'segments' / 'transcriptions.txt'} exists")

    def download(self, root, subsets=None) -> Path:
        raise RecipeError(f"Opencpop cannot be downloaded automatically; {self.how_to_get(Path(root).expanduser(), ())}")

    def subset_dir(self, tree: Path, subset: str) -> Path:
        return tree / "segments"

    def check_subset(self, tree: Path, subset: str) -> str | None:
        seg = tree / "segments"
        if seg.is_dir() and not any((seg / f).exists() for f in ("transcriptions.txt", "train.txt", "test.txt")):
            return f"missing {seg / 'transcriptions.txt'}"
        return super().check_subset(tree, subset)

    def walk(self, tree: Path, subsets: Sequence[str], *, num_valid: int = 50) -> Iterator[Entry | Quarantined]:
        seg = tree / "segments"

        def lines(name: str) -> list[str]:
            p = seg / name
            return [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()] if p.exists() else []

        def uid_of(ln: str) -> str:
            return ln.split("|", 1)[0].strip()

        rows = lines("transcriptions.txt") or lines("train.txt") + lines("test.txt")
        test_ids = {uid_of(ln) for ln in lines("test.txt")}
        train_ids = sorted({uid_of(ln) for ln in rows} - test_ids)
        valid_ids = set(train_ids[len(train_ids) - num_valid:]) if num_valid > 0 else set()
        for ln in rows:
            uid = uid_of(ln)
            wav = seg / "wavs" / f"{uid}.wav"
            try:
                item = parse_transcription(ln)
                score = build_score(item)
            except ValueError as e:
                yield self.quarantine(uid, wav, f"bad transcription line: {e}")
                continue
            if not wav.exists():
                yield self.quarantine(uid, wav, "audio file listed in the transcription is missing")
                continue
            split = "test" if uid in test_ids else "valid" if uid in valid_ids else "train"
            text = "".join(lyric_characters(item["text"])) or item["text"]
            yield Entry(uid, wav, "opencpop", text, split, score=score,
                        extra={"song": uid[:4], "corpus_phones": item["phones"],
                               "corpus_phone_durations": item["phone_durations"]})
