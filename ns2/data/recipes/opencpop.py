"""Opencpop: Mandarin singing (one female singer, 100 songs, 44.1 kHz) with aligned scores.

Tree (``Opencpop/``): ``segments/transcriptions.txt``, ``segments/train.txt``, ``segments/test.txt``
and ``segments/wavs/<id>.wav``. Each line is
``id|text|phones|note pitches|note durations|phone durations|slur flags`` with one pitch, note
duration and slur flag per phone (``D#4/Eb4`` style names, ``rest`` for ``SP``/``AP`` pauses).
The phones are Opencpop's own toneless pinyin parts: per sung character an optional initial
(``zh``, ``y``, ...) and a final (``ang``, ``v``, ...); a final with slur flag 1 is the previous
syllable's vowel sung on, on a new note; ``SP`` (silence) and ``AP`` (breath) are pauses.

Phonemes and their times (how the corpus's phone times reach the front end's symbols)
------------------------------------------------------------------------------------
The utterance's ``phonemes`` are the text front end's (:class:`ns2.text.Tokenizer`, espeak-ng
``cmn``) for the lyric characters, so training sees the same symbols synthesis gets from text:

1. the lyric is read in context (word segmentation, tone sandhi, stress as the front end does it);
   every character gives exactly one tone symbol, so the tone letters cut each front-end word into
   its syllables (character ``k`` = the ``k``-th sung syllable of the phones). A nasal coda after a
   tone (``n``/``ŋ``) closes that syllable when the annotated final ends in ``n``/``ng`` (an ``ŋ``
   always does: no Mandarin syllable starts with it), otherwise it starts the next syllable.
2. each syllable is checked against what was *sung*: the annotated pinyin with the context's tone
   (``ch`` + ``ang`` + tone 2 -> ``chang2``) is read by the same espeak-ng voice. Where the front
   end read a polyphonic character differently (长 as zhang in 长大), the syllable takes the sung
   reading, in the front end's conventions (same symbols, the context's stress mark); such
   syllables are listed in ``extra["pinyin_rereads"]``. ``reread_pinyin=False`` keeps the front
   end's reading everywhere.
3. the syllable's time is spread over its symbols: the first consonant before the vowel realises
   the annotated initial and takes the initial's time (``ʈʂ`` for ``zh``, the glide ``j``/``w`` for
   ``y``/``w``; a glide after another consonant, as in ``x iong`` -> ``ɕ j ʊŋ``, is the final's
   medial); when the reading has no consonant there, the final takes the initial's time too. The
   final's time (with its slurred continuations) goes to the rest: medials and the nasal coda take
   a bounded share (at most 30 % of the final, 80 ms each, the defaults of
   :func:`ns2.data.singing.convert.score_frames`), the vowels the remainder; tone letters, stress
   marks and word boundaries ``|`` take no time (the aligner gives them 0 frames too).
4. ``SP`` and ``AP`` become ``<sil>`` (the symbol table ``ipa-v1`` has no breath symbol), one per
   pause phone, placed before the next word's boundary.

The result is ``phonemes``/``word_index``/``phoneme_times`` (seconds, contiguous, covering the
phone durations); the ``durations`` stage (``durations_source=corpus``) turns the times into frames
with :func:`ns2.data.features.durations.times_to_durations`, summing exactly to the frame count.

Why not a pinyin-only inventory: the annotation has no tones and the front end (what synthesis
uses) emits tones as separate symbols; taking the front end's reading and checking each syllable
against the sung pinyin keeps both the symbols synthesis uses and what was actually sung.

Score (``Utterance.score``)
---------------------------
One note per syllable (initial + final share a note; ``lyric`` is the character), per slurred
extra note (``slur: True``, lyric ``-``) and per pause (``pitch`` 0, lyric ``SP``/``AP``,
``rest: True``): the fields of the synthetic singing items (``lyric``, ``pitch`` as MIDI,
``start`` where the note's first phone starts in the audio, ``duration`` the score's note
duration, ``phoneme_start``/``phoneme_end`` a half-open range of ``phonemes``, ``word``, ``rest``,
``slur``) plus ``corpus_phone_start``/``corpus_phone_end`` into ``extra["corpus_phones"]`` (with
``extra["corpus_phone_durations"]`` in seconds). A slurred note's range is its syllable's final.

A line that cannot be read this way is quarantined with a one-line reason: wrong field counts,
an unknown phone, an initial without its final, a slur that continues nothing, a sung phone whose
note is ``rest``, lyric characters that do not match the sung syllables, characters the front end
cannot read, phone durations that do not match the audio's length.

Splits: the official ``test.txt`` -> test; the last ``num_valid`` ids of ``train.txt`` -> valid.
Opencpop is distributed on request only: :meth:`Opencpop.download` explains how to get it.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

from ns2.data.recipes.base import Archive, Entry, Quarantined, Recipe, RecipeError, audio_info, one_line

INITIALS = frozenset("b p m f d t n l g k h j q x zh ch sh r z c s y w".split())
FINALS = frozenset("a ai an ang ao e ei en eng er i ia ian iang iao ie in ing iong iu o ong ou u ua uai uan uang "
                   "ui un uo v van ve vn io ueng iou uei uen".split())
REST_PHONES = frozenset({"SP", "AP"})
SIL = "<sil>"
_NOTE = re.compile(r"^([A-Ga-g])([#b]*)(-?\d+)$")
_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# a final's consonants (medial glides, the nasal coda) and their share, as in score_frames' defaults
CONSONANT_SHARE, MAX_CONSONANT_S = 0.3, 0.08


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
    if any(d < 0 for d in out["phone_durations"]):
        raise ValueError("negative phone duration")
    return out


def lyric_characters(text: str) -> list[str]:
    """The sung characters of ``text`` (``AP``/``SP`` markers, spaces and punctuation removed)."""
    text = re.sub(r"AP|SP", "", text)
    return [c for c in text if c.isalnum()]


def syllable_units(item: dict) -> list[dict]:
    """The phones grouped: ``{"rest": i}`` per pause, ``{"initial": i | None, "final": j, "slurs": [k, ...]}``
    per sung syllable. ValueError (one line) for phones that do not form syllables."""
    phones, pitches, slurs = item["phones"], item["pitches"], item["slurs"]
    unknown = [(i, p) for i, p in enumerate(phones) if p not in INITIALS and p not in FINALS and p not in REST_PHONES]
    if unknown:
        i, p = unknown[0]
        raise ValueError(f"unknown phone {p!r} at position {i}; expected Opencpop initials, finals, SP or AP")
    units: list[dict] = []
    i, n = 0, len(phones)
    while i < n:
        p = phones[i]
        if slurs[i]:
            if p not in FINALS or not units or "rest" in units[-1]:
                raise ValueError(f"phone {p!r} at position {i} is slurred but continues no sung syllable")
            if pitches[i] is None:
                raise ValueError(f"slurred phone {p!r} at position {i} has the note 'rest'")
            units[-1]["slurs"].append(i)
            i += 1
            continue
        if p in REST_PHONES:
            units.append({"rest": i})
            i += 1
            continue
        initial = None
        if p in INITIALS:
            if i + 1 >= n or phones[i + 1] not in FINALS or slurs[i + 1]:
                after = repr(phones[i + 1]) if i + 1 < n else "the end of the line"
                raise ValueError(f"initial {p!r} at position {i} is followed by {after}, not by its final")
            initial, i = i, i + 1
        if pitches[i] is None:
            raise ValueError(f"phone {phones[i]!r} at position {i} is sung but its note is 'rest'")
        units.append({"initial": initial, "final": i, "slurs": []})
        i += 1
    return units


def _phone_starts(item: dict) -> list[float]:
    starts, t = [], 0.0
    for d in item["phone_durations"]:
        starts.append(round(t, 6))
        t += d
    return starts


def build_score(item: dict) -> list[dict]:
    """Notes ``{"lyric", "pitch", "start", "duration", "phoneme_start", "phoneme_end", "slur", "rest"}``
    with the phoneme range over the corpus's own phones (see the module doc)."""
    phones, starts = item["phones"], _phone_starts(item)

    def note(lyric: str, pitch: int, a: int, b: int, slur: bool, rest: bool) -> dict:
        duration = item["note_durations"][b - 1]
        if duration <= 0:
            duration = sum(item["phone_durations"][a:b])
        if duration <= 0:
            raise ValueError(f"note at phone {a} ({phones[a]!r}) has no duration")
        return {"lyric": lyric, "pitch": pitch, "start": starts[a], "duration": duration, "phoneme_start": a,
                "phoneme_end": b, "slur": slur, "rest": rest}

    notes: list[dict] = []
    sung: list[dict] = []
    for u in syllable_units(item):
        if "rest" in u:
            i = u["rest"]
            notes.append(note(phones[i], 0, i, i + 1, False, True))
            continue
        a = u["final"] if u["initial"] is None else u["initial"]
        j = u["final"]
        notes.append(note("".join(phones[a:j + 1]), item["pitches"][j], a, j + 1, False, False))
        sung.append(notes[-1])
        for k in u["slurs"]:
            notes.append(note("-", item["pitches"][k], k, k + 1, True, False))
    chars = lyric_characters(item["text"])
    if len(chars) == len(sung):  # otherwise the lyric stays the pinyin of the syllable
        for nt, c in zip(sung, chars):
            nt["lyric"] = c
    return notes


# --------------------------------------------------------------------------- front-end mapping
def pinyin_of(initial: str | None, final: str) -> str:
    """Opencpop's initial + final -> standard (toneless) pinyin: ``("y", "van")`` -> ``yuan``,
    ``("j", "v")`` -> ``ju``, ``("w", "ui")`` -> ``wei``, ``(None, "iu")`` -> ``you``."""
    ini, f = initial or "", final
    if f.startswith("v"):  # ü: written u after j q x y
        if ini in ("j", "q", "x"):
            return ini + "u" + f[1:]
        return ("yu" + f[1:]) if ini in ("", "y") else ini + f
    if ini in ("", "y") and f.startswith("i"):
        return "y" + f if f in ("i", "in", "ing") else "y" + {"iu": "ou", "iou": "ou"}.get(f, f[1:])
    if ini in ("", "w") and f.startswith("u"):
        return "wu" if f == "u" else "w" + {"ui": "ei", "uei": "ei", "un": "en", "uen": "en"}.get(f, f[1:])
    return ini + f


_TONE_DIGIT = {"˥": "1", "˧˥": "2", "˨˩˦": "3", "˥˩": "4", "˩": "5"}


def _is_nucleus(symbol: str) -> bool:
    from ns2.data.synthetic.singing import is_vowel

    return is_vowel(symbol) or symbol in ("ʅ", "ɿ") or "\u030d" in symbol or "\u0329" in symbol


def _is_zero_width(symbol: str) -> bool:
    from ns2.text.charset import PUNCTUATION
    from ns2.text.mandarin import TONE_SYMBOLS
    from ns2.text.symbols import SUPRASEGMENTALS, WORD_BOUNDARY

    return symbol in SUPRASEGMENTALS or symbol in TONE_SYMBOLS or symbol == WORD_BOUNDARY or symbol in PUNCTUATION


def _strip_stress(symbols: Sequence[str]) -> tuple[str, ...]:
    from ns2.text.symbols import STRESS_SYMBOLS

    return tuple(s for s in symbols if s not in STRESS_SYMBOLS)


@lru_cache(maxsize=8192)
def read_pinyin(syllable: str) -> tuple[str, ...] | None:
    """The front end's symbols for one tone-numbered pinyin syllable (``chang2``), read by the same
    espeak-ng ``cmn`` voice; None when espeak does not read it as one Mandarin syllable."""
    from ns2.text import DEFAULT_SYMBOLS
    from ns2.text.backends import mandarin_backend, run_backend
    from ns2.text.mandarin import FOREIGN, count_syllables

    words = run_backend(mandarin_backend(), [syllable])
    phones = [p for w in (words[0] if words else []) for p in w]
    if len(words[0] if words else []) != 1 or FOREIGN in phones:
        return None
    symbols: list[str] = []
    for p in phones:
        found, missing = DEFAULT_SYMBOLS.split_ipa(p)
        if missing:
            return None
        symbols += found
    return tuple(symbols) if count_syllables(symbols) == 1 else None


def sung_reading(symbols: Sequence[str], char: str, pinyin: str) -> list[str] | None:
    """None when the front end's syllable ``symbols`` (read in context) is the annotated ``pinyin``;
    otherwise the sung reading in the front end's symbols: the character read alone when that is the
    pinyin (its tone), else the pinyin read with the context's tone; the context's stress mark kept."""
    from ns2.text.backends import han_reading
    from ns2.text.mandarin import TONE_SYMBOLS
    from ns2.text.symbols import STRESS_SYMBOLS

    def tone_of(syms: Sequence[str]) -> str | None:
        return next((x for x in syms if x in TONE_SYMBOLS), None)

    def is_pinyin(syms: Sequence[str]) -> bool:
        tone = tone_of(syms)
        reading = read_pinyin(pinyin + _TONE_DIGIT[tone]) if tone is not None else None
        return reading is None or _strip_stress(reading) == _strip_stress(syms)  # unreadable pinyin: keep

    if is_pinyin(symbols):
        return None
    alone = han_reading(char)
    if alone is not None and is_pinyin(alone):
        chosen = list(_strip_stress(alone))
    else:
        tone = tone_of(symbols)
        chosen = list(_strip_stress(read_pinyin(pinyin + _TONE_DIGIT[tone])))  # readable: is_pinyin said so
    stress = next((x for x in symbols if x in STRESS_SYMBOLS), None)
    if stress is not None:
        chosen.insert(next((q for q, x in enumerate(chosen) if _is_nucleus(x)), 0), stress)
    return chosen


def _coda(final: str) -> str | None:
    return "ŋ" if final.endswith("ng") else "n" if final.endswith("n") else None


def _split_word(symbols: list[str], finals: list[str]) -> list[list[str]]:
    """One front-end word's symbols -> its syllables (cut after each tone, with the nasal coda that
    the annotated final has; see the module doc)."""
    from ns2.text.mandarin import TONE_SYMBOLS

    tones = [k for k, s in enumerate(symbols) if s in TONE_SYMBOLS]
    out, start = [], 0
    for j, t in enumerate(tones[:-1]):
        end = t + 1
        coda = _coda(finals[j]) if j < len(finals) else None
        if end < len(symbols) and (symbols[end] == "ŋ" or symbols[end] == coda):
            end += 1
        out.append(symbols[start:end])
        start = end
    out.append(symbols[start:])
    return out


def _spread(symbols: list[str], has_initial: bool, initial: tuple[float, float] | None,
            final: tuple[float, float]) -> tuple[list[list[float]], int]:
    """``[start, end]`` per symbol of one syllable and the index of its final's first symbol."""
    timed = [k for k, s in enumerate(symbols) if not _is_zero_width(s)]
    nuclei = [k for k in timed if _is_nucleus(symbols[k])]
    lead = [k for k in timed if not nuclei or k < nuclei[0]]
    init = lead[:1] if has_initial and nuclei and lead else []
    f0, f1 = final
    times: dict[int, tuple[float, float]] = {}
    if init:
        times[init[0]] = initial  # type: ignore[assignment]
    elif initial is not None:
        f0 = initial[0]  # no consonant realises the initial: the final takes its time
    rest = [k for k in timed if k not in init]
    span = f1 - f0
    vowels = [k for k in rest if k in nuclei]
    n_cons = len(rest) - len(vowels)
    if vowels:
        each = min(MAX_CONSONANT_S, CONSONANT_SHARE * span / max(1, n_cons))
        vowel = (span - each * n_cons) / len(vowels)
    else:
        each = vowel = span / max(1, len(rest))
    t = f0
    for k in rest:
        d = vowel if k in vowels else each
        times[k] = (t, t + d)
        t += d
    if rest:
        times[rest[-1]] = (times[rest[-1]][0], f1)  # no rounding gap at the syllable's end
    out: list[list[float]] = []
    for k in range(len(symbols)):
        if k in times:
            out.append([round(times[k][0], 6), round(times[k][1], 6)])
        else:  # zero width, at the start of the next timed symbol (or the syllable's end)
            t0 = next((times[q][0] for q in range(k + 1, len(symbols)) if q in times), f1)
            out.append([round(t0, 6), round(t0, 6)])
    # the final's part starts after the initial's consonant (a stress mark before its vowel included)
    return out, (init[0] + 1 if init else 0)


def front_end_phonemes(item: dict, tokenizer: Any, reread_pinyin: bool = True) -> dict:
    """The front end's phonemes for an Opencpop line, with times from its phones and the score
    re-indexed onto them (module doc). Returns ``{"text", "phonemes", "word_index", "phoneme_times",
    "score", "rereads"}``; ValueError (one line) when the lyric and the phones do not line up."""
    units = syllable_units(item)
    notes = build_score(item)
    sung = [u for u in units if "rest" not in u]
    chars = lyric_characters(item["text"])
    if len(chars) != len(sung):
        raise ValueError(f"{len(chars)} lyric characters but {len(sung)} sung syllables in the phones")
    text = "".join(chars)
    tok = tokenizer(text)
    phones, durs, starts = item["phones"], item["phone_durations"], _phone_starts(item)
    finals = [phones[u["final"]] for u in sung]

    # the front end's syllables, each with the boundary / punctuation symbols before it
    syllables: list[tuple[list[str], int, list[str]]] = []  # (symbols, word, symbols before it)
    pending: list[str] = []
    k = 0
    seq, widx = tok.phonemes, tok.word_index
    while k < len(seq):
        if widx[k] < 0:
            pending.append(seq[k])
            k += 1
            continue
        j = k
        while j < len(seq) and widx[j] == widx[k]:
            j += 1
        first = len(syllables)
        parts = _split_word(list(seq[k:j]), finals[first:])
        for n, part in enumerate(parts):
            syllables.append((part, widx[k], pending if n == 0 else []))
        pending = []
        k = j
    if len(syllables) != len(sung):
        raise ValueError(f"the front end read {len(syllables)} syllables from the {len(chars)} lyric characters {text!r}")

    out_ph: list[str] = []
    out_wi: list[int] = []
    out_t: list[list[float]] = []
    ranges: dict[int, tuple[int, int, int]] = {}  # corpus phone of a unit's first phone -> (start, final start, end)
    rereads: list[dict] = []
    s = 0
    for u in units:
        if "rest" in u:
            i = u["rest"]
            ranges[i] = (len(out_ph), len(out_ph), len(out_ph) + 1)
            out_ph.append(SIL)
            out_wi.append(-1)
            out_t.append([starts[i], round(starts[i] + durs[i], 6)])
            continue
        symbols, word, before = syllables[s]
        ini, fin = u["initial"], u["final"]
        if reread_pinyin:
            pinyin = pinyin_of(phones[ini] if ini is not None else None, phones[fin])
            sung_symbols = sung_reading(symbols, chars[s], pinyin)
            if sung_symbols is not None:
                rereads.append({"char": chars[s], "front_end": " ".join(symbols), "sung": " ".join(sung_symbols),
                                "pinyin": " ".join(phones[q] for q in (ini, fin) if q is not None)})
                symbols = sung_symbols
        end = starts[u["slurs"][-1]] + durs[u["slurs"][-1]] if u["slurs"] else starts[fin] + durs[fin]
        initial = (starts[ini], starts[ini] + durs[ini]) if ini is not None else None
        times, first_final = _spread(symbols, ini is not None, initial, (starts[fin], end))
        t0 = initial[0] if initial is not None else starts[fin]
        a = len(out_ph)
        for b in before:  # word boundary / punctuation: no time, at the syllable's start
            out_ph.append(b)
            out_wi.append(-1)
            out_t.append([round(t0, 6), round(t0, 6)])
        out_ph += symbols
        out_wi += [word] * len(symbols)
        out_t += times
        ranges[fin if ini is None else ini] = (a, len(out_ph) - len(symbols) + first_final, len(out_ph))
        for q in u["slurs"]:
            ranges[q] = ranges[fin if ini is None else ini]
        s += 1
    for b in pending:  # trailing punctuation
        out_ph.append(b)
        out_wi.append(-1)
        out_t.append([out_t[-1][1], out_t[-1][1]] if out_t else [0.0, 0.0])

    score: list[dict] = []
    for nt in notes:
        a, f, b = ranges[nt["phoneme_start"]]
        wi = next((out_wi[q] for q in range(a, b) if out_wi[q] >= 0), -1)
        score.append({**nt, "phoneme_start": f if nt["slur"] else a, "phoneme_end": b,
                      "word": tok.words[wi] if wi >= 0 else "",
                      "corpus_phone_start": nt["phoneme_start"], "corpus_phone_end": nt["phoneme_end"]})
    return {"text": text, "phonemes": out_ph, "word_index": out_wi, "phoneme_times": out_t, "score": score,
            "rereads": rereads}


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

    def walk(self, tree: Path, subsets: Sequence[str], *, num_valid: int = 50, reread_pinyin: bool = True,
             max_length_mismatch: float = 0.1) -> Iterator[Entry | Quarantined]:
        """``max_length_mismatch``: phone durations may differ from the audio's length by this many
        seconds (or 5 % of it, whichever is more) before the line is quarantined."""
        from ns2.data.stages.phonemes import get_tokenizer
        from ns2.text import TextFrontendError

        seg = tree / "segments"
        try:
            tokenizer = get_tokenizer(self.language)
        except TextFrontendError as e:
            raise RecipeError(f"opencpop: the Mandarin text front end cannot start: {one_line(e)}") from None

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
                mapped = front_end_phonemes(item, tokenizer, reread_pinyin)
            except TextFrontendError as e:
                yield self.quarantine(uid, wav, f"text front end: {one_line(e)}")
                continue
            except ValueError as e:
                yield self.quarantine(uid, wav, f"bad transcription line: {one_line(e)}")
                continue
            if not wav.exists():
                yield self.quarantine(uid, wav, "audio file listed in the transcription is missing")
                continue
            try:
                _, seconds, _ = audio_info(wav)
            except Exception:  # noqa: BLE001 - unreadable audio is quarantined by build_manifest's probe
                seconds = None
            total = sum(item["phone_durations"])
            if seconds is not None and abs(total - seconds) > max(float(max_length_mismatch), 0.05 * seconds):
                yield self.quarantine(uid, wav, f"phone durations sum to {total:.3f} s but the audio lasts {seconds:.3f} s")
                continue
            split = "test" if uid in test_ids else "valid" if uid in valid_ids else "train"
            extra: dict[str, Any] = {"song": uid[:4], "corpus_phones": item["phones"],
                                     "corpus_phone_durations": item["phone_durations"]}
            if mapped["rereads"]:
                extra["pinyin_rereads"] = mapped["rereads"]
            yield Entry(uid, wav, "opencpop", mapped["text"], split, score=mapped["score"], extra=extra,
                        phonemes=mapped["phonemes"], word_index=mapped["word_index"],
                        phoneme_times=mapped["phoneme_times"])
