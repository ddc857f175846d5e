"""Flite segments -> events in the text front end's symbols, for :func:`align_events`.

Flite times its own phones (CMU set); the corpus needs times for the phones the text front end
reads (espeak IPA through phonemizer), since those are what the model sees at synthesis. Word by
word (Flite's words and the front end's words are the same orthographic tokens), the two phone
strings are aligned by dynamic time warping with a phonetic cost (:func:`phone_cost`): each CMU
phone's interval is shared equally by the front-end phones warped onto it, and a front-end phone
warped over several CMU phones takes all their time. Stress marks ride on the phone after them.
Every word keeps exactly the span Flite gave it; silences (``pau``) become unnamed events, which
:func:`align_events` turns into ``<sil>``. The result then goes through the same layout as
espeak's events (word boundaries, punctuation marks, contiguous times covering the audio).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ns2.data.synthetic.alignment import ZERO_LENGTH_MARKS, AlignmentError, text_items
from ns2.data.synthetic.espeak_synth import Event
from ns2.data.synthetic.flite_synth import Segment
from ns2.data.synthetic.singing import is_vowel

__all__ = ["CMU_TO_IPA", "flite_events", "phone_cost", "warp"]

#: CMU (Flite) phone -> the IPA phone(s) it most often is in the front end's reading.
CMU_TO_IPA: dict[str, tuple[str, ...]] = {
    "aa": ("ɑː", "ɑ", "ɔ"), "ae": ("æ", "a"), "ah": ("ʌ", "ə", "ɐ"), "ao": ("ɔː", "ɔ", "ɑː"),
    "aw": ("aʊ",), "ax": ("ə", "ɐ", "ɪ", "ʌ"), "axr": ("ɚ", "ɜː"), "ay": ("aɪ", "aɪə"), "eh": ("ɛ", "e", "ɛɹ"),
    "er": ("ɜː", "ɚ", "ɝ"), "ey": ("eɪ", "e"), "ih": ("ɪ", "i", "ᵻ", "ə"), "iy": ("i", "iː", "iə"),
    "ow": ("oʊ", "o", "əʊ"), "oy": ("ɔɪ",), "uh": ("ʊ", "ʊɹ"), "uw": ("uː", "u", "juː"),
    "b": ("b",), "ch": ("tʃ",), "d": ("d", "ɾ"), "dh": ("ð",), "f": ("f",), "g": ("ɡ", "g"), "hh": ("h",),
    "jh": ("dʒ",), "k": ("k",), "l": ("l", "əl"), "m": ("m", "əm"), "n": ("n", "ən", "ɾ̃"), "ng": ("ŋ",),
    "p": ("p",), "r": ("ɹ", "r"), "s": ("s",), "sh": ("ʃ",), "t": ("t", "ɾ", "ʔ"), "th": ("θ",), "v": ("v",),
    "w": ("w",), "y": ("j",), "z": ("z",), "zh": ("ʒ",),
}


def phone_cost(cmu: str, ipa: str) -> float:
    """0 when ``ipa`` is a reading of ``cmu`` (or starts like one), 0.4 for a phone of the same
    class (vowel/consonant), 1 otherwise."""
    readings = CMU_TO_IPA.get(cmu)
    if readings is None:
        raise AlignmentError(f"Flite phone {cmu!r} has no entry in CMU_TO_IPA")
    if ipa in readings or (cmu in ("r", "er", "axr") and "ɹ" in ipa) \
            or any(ipa.startswith(r) or r.startswith(ipa) for r in readings):
        return 0.0
    return 0.4 if is_vowel(readings[0]) == is_vowel(ipa) else 1.0


def warp(cmu: Sequence[str], ipa: Sequence[str]) -> list[tuple[int, int]]:
    """Dynamic-time-warping path ``[(i_ipa, j_cmu), ...]`` from (0, 0) to the last pair, every
    phone of both strings on it (librosa's DTW; steps (1, 1), (1, 0), (0, 1), ties in that order)."""
    import librosa

    if not ipa or not cmu:
        raise AlignmentError(f"cannot warp empty phone strings (front end {list(ipa)}, Flite {list(cmu)})")
    cost = np.array([[phone_cost(c, p) for c in cmu] for p in ipa])
    _, path = librosa.sequence.dtw(C=cost, step_sizes_sigma=np.array([[1, 1], [1, 0], [0, 1]]))
    return [(int(i), int(j)) for i, j in path[::-1]]


def _word_phone_times(segs: list[Segment], phones: list[str]) -> list[float]:
    """Start time of each front-end phone of one word (the word spans its Flite segments)."""
    path = warp([s.name for s in segs], phones)
    share = np.zeros(len(phones))
    per_cmu: dict[int, list[int]] = {}
    for i, j in path:
        per_cmu.setdefault(j, []).append(i)
    for j, members in per_cmu.items():
        dur = segs[j].end - segs[j].start
        for i in members:
            share[i] += dur / len(members)
    starts = segs[0].start + np.concatenate([[0.0], np.cumsum(share)[:-1]])
    return [float(t) for t in starts]


def flite_events(segments: Sequence[Segment], text: str, reference: list[list[str]], sample_rate: int,
                 context: str = "") -> list[Event]:
    """Espeak-style events (word, phoneme with IPA names, unnamed pauses) for Flite's ``segments``
    of ``text``; ``reference[k]``: the front end's symbols for orthographic word ``k`` of ``text``."""
    items = text_items(text)
    where = f"{context}, text {text!r}" if context else f"text {text!r}"
    by_word: dict[int, list[Segment]] = {}
    for s in segments:
        if s.word >= 0:
            by_word.setdefault(s.word, []).append(s)
    if len(by_word) != len(items.words) or len(reference) != len(items.words):
        raise AlignmentError(f"Flite read {len(by_word)} words, the text has {len(items.words)} and the front end "
                             f"{len(reference)} ({where})")
    events: list[Event] = []
    done: set[int] = set()
    for s in segments:
        if s.word < 0:
            events.append(Event("phoneme", int(round(s.start * sample_rate))))
            continue
        if s.word in done:
            continue
        done.add(s.word)
        k = s.word
        syms = reference[k]
        phones = [q for q, sym in enumerate(syms) if sym not in ZERO_LENGTH_MARKS]
        if not phones:
            raise AlignmentError(f"front-end word {items.words[k]!r} has no phones ({where})")
        starts = _word_phone_times(by_word[k], [syms[q] for q in phones])
        a, b = items.spans[k]
        events.append(Event("word", int(round(by_word[k][0].start * sample_rate)), number=k + 1,
                            text_position=a + 1, length=b - a))
        prev = 0
        for q, t in zip(phones, starts):
            events.append(Event("phoneme", int(round(t * sample_rate)), name="".join(syms[prev:q + 1])))
            prev = q + 1
        if prev < len(syms):  # trailing marks (none in practice) join the last phone
            last = events[-1]
            events[-1] = Event("phoneme", last.sample, name=last.name + "".join(syms[prev:]))
    return events
