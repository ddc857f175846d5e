"""espeak-ng events -> ground-truth ``phonemes``, ``word_index`` and ``phoneme_times``.

The synthesizer reports, for every phoneme it speaks, the sample at which it starts and its IPA
name (stress attached: ``ˈaɪ``); pauses are phoneme events with an empty name; word events give
each espeak word's position and length in the text. From these:

* every phoneme lasts until the next phoneme event (the last one until the end of the audio);
* names are split into table symbols exactly as the text front end splits phonemizer output
  (:meth:`ns2.text.SymbolTable.split_ipa`: greedy longest match, stress marks as their own
  symbols). Stress and length marks take no time; when a name splits into several phones they
  share its interval equally. Repairs: :data:`EVENT_NAME_FIXES` first; a modifier espeak speaks
  as a phoneme of its own (Scottish ``e`` + ``ʲ``) joins the phoneme before it when the pair is a
  table symbol (as the front end reads ``eʲ``); any other character outside the table raises
  :class:`AlignmentError` naming it;
* unnamed events are either pauses (the audio is silent: :data:`PAUSE_RMS`) or the short linking
  glides espeak inserts in vowel hiatus ("the area", "piano"), whose time is added to the
  phoneme before them; pauses, and the silence before the first / after the last phoneme, become
  ``<sil>`` (merged, zero-length ones left out), so the times are contiguous and cover
  ``[0, duration]`` exactly;
* words: each espeak word is matched to the orthographic words its characters cover (the words
  of the text as :mod:`ns2.text` reads it: ``[A-Za-z0-9']+``). espeak joins some function words
  ("of the"); such a joined word is split between its orthographic words following the front
  end's own reading of them (same phones: split at the same places; otherwise an edit-distance
  alignment), so ``word_index`` matches the tokenizer's;
* layout, as the text front end and the TextGrid reader lay out a sentence: a zero-length word
  boundary ``|`` between two words, punctuation marks as zero-length symbols after the word they
  follow, and a pause ``<sil>`` in place of the boundary.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ns2.data.synthetic.espeak_synth import Event

SIL = "<sil>"
WORD_BOUNDARY = "|"
PUNCTUATION = (",", ".", "!", "?", ";", ":")
ZERO_LENGTH_MARKS = frozenset({"ˈ", "ˌ", "ː"})
#: An unnamed event quieter than this (RMS, int16 units) is a pause; espeak's pauses are digital
#: silence, while its unnamed linking glides in vowel hiatus ("the area") are loud.
PAUSE_RMS = 30.0

#: Repairs of event names before splitting: espeak's Scottish voice writes one long vowel with an
#: ASCII colon (``ˈa:``), which would otherwise split into ``a`` and the punctuation mark ``:``.
EVENT_NAME_FIXES: dict[str, str] = {":": "ː"}

_TOKEN = re.compile(r"(?P<word>[A-Za-z0-9']+)|(?P<punct>[,.!?;:])")


class AlignmentError(ValueError):
    """Events that cannot be turned into symbols of the table (names the event and the text)."""


@dataclass
class TextItems:
    """Orthographic words and punctuation marks of a (normalised) text with character spans."""

    words: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    marks: list[tuple[str, int]] = field(default_factory=list)  # (mark, char position)


def text_items(text: str) -> TextItems:
    """Words (``[A-Za-z0-9']+``, apostrophes stripped at the ends) and marks of ``text``."""
    items = TextItems()
    for m in _TOKEN.finditer(text):
        if m.lastgroup == "punct":
            items.marks.append((m.group(0), m.start()))
            continue
        word = m.group(0)
        lead = len(word) - len(word.lstrip("'"))
        word = word.strip("'")
        if word:
            items.words.append(word)
            items.spans.append((m.start() + lead, m.start() + lead + len(word)))
    return items


@dataclass
class Aligned:
    """``phonemes``, ``word_index`` (-1 for ``<sil>``/``|``/marks) and ``times`` (``[P, 2]`` s)."""

    phonemes: list[str]
    word_index: list[int]
    times: list[list[float]]
    words: list[str]


def fix_name(name: str) -> str:
    return "".join(EVENT_NAME_FIXES.get(ch, ch) for ch in name)


def split_name(name: str, symbols, context: str) -> list[str]:
    """One event name -> symbols of the table; :class:`AlignmentError` for unknown characters."""
    out, unknown = symbols.split_ipa(fix_name(name))
    out = [s for s in out if s != WORD_BOUNDARY]
    if unknown or not out:
        raise AlignmentError(f"espeak phoneme {name!r} ({context}) has characters {unknown or [name]} outside symbol "
                             f"table {symbols.version!r}; add a repair to EVENT_NAME_FIXES or extend the table")
    return out


# ------------------------------------------------------------------------------- words
def _edit_align(ours: Sequence[str], ref: Sequence[str]) -> list[int | None]:
    """For each of ``ours``, the index in ``ref`` it aligns with (None for an insertion)."""
    n, m = len(ours), len(ref)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (ours[i - 1] != ref[j - 1]))
    out: list[int | None] = [None] * n
    i, j = n, m
    while i > 0:
        if j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ours[i - 1] != ref[j - 1]):
            out[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif j > 0 and cost[i][j] == cost[i][j - 1] + 1:
            j -= 1
        else:
            i -= 1
    return out


def split_joined(ours: list[str], words: list[int], reference: list[list[str]]) -> list[int]:
    """Owner word (from ``words``) of each of ``ours``, a joined espeak word covering ``words``.

    ``reference[k]``: the front end's symbols for ``words[k]``. Identical sequences split at the
    same places; otherwise each symbol goes to the word of the reference symbol it aligns with
    (monotonic, insertions join the word before).
    """
    flat = [s for part in reference for s in part]
    labels = [words[k] for k, part in enumerate(reference) for _ in part]
    if not flat:
        return [words[0]] * len(ours)
    if flat == ours:
        return labels
    owners: list[int] = []
    for i, j in enumerate(_edit_align(ours, flat)):
        owner = labels[j] if j is not None else (owners[-1] if owners else words[0])
        owners.append(max(owner, owners[-1]) if owners else owner)
    return owners


def _covered_words(items: TextItems, position: int, end: int) -> list[int]:
    """Orthographic words of an espeak word starting at character ``position`` (0-based) and
    ending before ``end`` (where the next espeak word starts): espeak's own ``length`` counts
    only the first word of a joined group."""
    hit = [k for k, (a, b) in enumerate(items.spans) if (a < end and position < b)]
    if hit:
        return hit
    after = [k for k, (a, _) in enumerate(items.spans) if a >= position]
    return [after[0]] if after else ([len(items.spans) - 1] if items.spans else [])


# ------------------------------------------------------------------------------- main
def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if x.size else 0.0


def align_events(events: Sequence[Event], audio: np.ndarray, sample_rate: int, text: str, symbols,
                 reference: list[list[str]] | None = None, context: str = "",
                 pause_rms: float | None = PAUSE_RMS) -> Aligned:
    """Ground truth for one utterance (see the module doc).

    ``audio: [S]`` int16 as synthesized (tells pauses from glides); ``text``: exactly the string
    that was synthesized; ``reference``: the front end's symbols per orthographic word of
    ``text`` (used to split joined espeak words), or None; ``pause_rms``: the RMS below which an
    unnamed event is a pause rather than a glide (None: every unnamed event is a pause, as Flite's
    ``pau`` segments are).
    """
    num_samples = int(audio.shape[0])
    items = text_items(text)
    if reference is not None and len(reference) != len(items.words):
        reference = None
    where = f"{context}, text {text!r}" if context else f"text {text!r}"

    # 1. espeak words -> orthographic words they cover; phoneme events tagged with their espeak
    #    word (None for unnamed events and anything before the first word event)
    phone_events: list[tuple[Event, int | None]] = []
    groups: list[list[int]] = []  # per espeak word: orthographic words it covers
    current: int | None = None
    word_starts = [ev.text_position - 1 for ev in events if ev.kind == "word"] + [len(text) + 1]
    for ev in events:
        if ev.kind == "word":
            start = ev.text_position - 1
            end = next((p for p in word_starts if p > start), len(text) + 1)
            groups.append(_covered_words(items, start, end))
            current = len(groups) - 1
        elif ev.kind == "phoneme":
            phone_events.append((ev, current if ev.name else None))
    if not phone_events:
        raise AlignmentError(f"espeak gave no phoneme events for {where}")

    # 2. times per event, symbols per event; unnamed events: pauses (silent) or linking glides
    seg_syms: list[list[str]] = []
    seg_bounds: list[tuple[int, int]] = []
    seg_group: list[int | None] = []
    for k, (ev, g) in enumerate(phone_events):
        start = min(max(ev.sample, 0), num_samples)
        end = phone_events[k + 1][0].sample if k + 1 < len(phone_events) else num_samples
        end = min(max(end, start), num_samples)
        if not ev.name and end > start and seg_syms and seg_syms[-1] != [SIL] \
                and pause_rms is not None and _rms(audio[start:end]) >= pause_rms:
            seg_bounds[-1] = (seg_bounds[-1][0], end)  # a glide: part of the phoneme before it
            continue
        if ev.name and seg_syms and seg_group[-1] == g and seg_syms[-1] != [SIL] \
                and symbols.split_ipa(fix_name(ev.name))[1] and seg_syms[-1][-1] + fix_name(ev.name) in symbols:
            # a modifier espeak speaks as its own phoneme (Scottish "e" + "ʲ"), one symbol in the table
            seg_syms[-1][-1] += fix_name(ev.name)
            seg_bounds[-1] = (seg_bounds[-1][0], end)
            continue
        seg_syms.append(split_name(ev.name, symbols, where) if ev.name else [SIL])
        seg_bounds.append((start, end))
        seg_group.append(g)

    # 3. owner word per symbol
    owners: list[list[int]] = [[-1] * len(s) for s in seg_syms]
    by_group: dict[int, list[tuple[int, int]]] = {}
    for k, g in enumerate(seg_group):
        if g is None:
            continue
        for q in range(len(seg_syms[k])):
            by_group.setdefault(g, []).append((k, q))
    for g, members in by_group.items():
        covered = groups[g] if groups[g] else [-1]
        if len(covered) == 1 or reference is None:
            for k, q in members:
                owners[k][q] = covered[0]
            continue
        ours = [seg_syms[k][q] for k, q in members]
        split = split_joined(ours, covered, [reference[w] for w in covered])
        for (k, q), w in zip(members, split):
            owners[k][q] = w

    # 4. lay out with silences, boundaries and marks
    sr = float(sample_rate)
    phonemes: list[str] = []
    word_index: list[int] = []
    times: list[list[float]] = []
    marks = list(items.marks)
    mark_ptr = 0

    def emit(sym: str, a: float, b: float, w: int) -> None:
        if sym == SIL:
            if b <= a:
                return
            if phonemes and phonemes[-1] == SIL:
                times[-1][1] = b
                return
            if phonemes and phonemes[-1] == WORD_BOUNDARY:  # a pause replaces the boundary
                phonemes.pop(), word_index.pop(), times.pop()
        phonemes.append(sym)
        word_index.append(w)
        times.append([a, b])

    def emit_marks_before(char_pos: int, t: float) -> None:
        nonlocal mark_ptr
        while mark_ptr < len(marks) and marks[mark_ptr][1] < char_pos:
            emit(marks[mark_ptr][0], t, t, -1)
            mark_ptr += 1

    first = seg_bounds[0][0]
    emit(SIL, 0.0, first / sr, -1)
    last_word = -1
    for k, syms in enumerate(seg_syms):
        a, b = seg_bounds[k][0] / sr, seg_bounds[k][1] / sr
        if syms == [SIL]:
            if last_word >= 0:
                emit_marks_before(items.spans[last_word][1] + 1, a)  # marks right after the word
            emit(SIL, a, b, -1)
            continue
        phones = [i for i, s in enumerate(syms) if s not in ZERO_LENGTH_MARKS]
        if not phones:
            raise AlignmentError(f"espeak phoneme {''.join(syms)!r} ({where}) is only stress/length marks")
        step = (b - a) / len(phones)
        t = a
        for q, sym in enumerate(syms):
            w = owners[k][q]
            if w != last_word and w >= 0:
                if last_word >= 0:
                    emit_marks_before(items.spans[w][0], t)
                    if phonemes and phonemes[-1] != SIL:
                        emit(WORD_BOUNDARY, t, t, -1)
                last_word = w
            if sym in ZERO_LENGTH_MARKS:
                emit(sym, t, t, w)
            else:
                end = b if q == phones[-1] else t + step
                emit(sym, t, end, w)
                t = end
    end_t = num_samples / sr
    emit_marks_before(len(text) + 1, times[-1][1] if times else 0.0)
    emit(SIL, times[-1][1] if times else 0.0, end_t, -1)
    if times:
        times[-1][1] = end_t
    return Aligned(phonemes, word_index, times, items.words)
