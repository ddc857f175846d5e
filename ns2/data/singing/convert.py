"""Score + text front end -> what a singing synthesis needs: phonemes, per-phoneme frame durations
and a frame-level F0 contour.

:func:`score_frames` reads the lyrics word by word (syllables ending in ``-`` continue their word,
see :mod:`ns2.data.singing.readers`), phonemizes each word with the text front end and splits it
into syllables (:func:`ns2.data.synthetic.singing.syllabify`); each sung note takes one syllable
(extra phonetic syllables join the word's last note; extra notes of a word, and slurs, continue the
previous vowel). Within a note's span the vowel carries the note: consonants before the vowel take
``consonant_share`` of the span at most and ``max_consonant_s`` each, those after it the same at the
end; rests become ``<sil>``; stress marks and word boundaries take no time. Boundaries are placed in
seconds and rounded to frames as the corpus's phoneme times are
(:func:`ns2.data.features.durations.times_to_durations`), so the durations sum exactly to the
score's length in frames.

F0 (Hz per frame, 0 in rests) is the written pitch shifted by ``transpose`` semitones, with an
optional ``portamento_s`` glide (linear in cents, from the previous note) and ``vibrato`` (rate in
Hz, depth in cents, starting ``vibrato_delay_s`` into a note).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ns2.data.features.durations import times_to_durations
from ns2.data.singing.notes import NoteScore

__all__ = ["ScoreFrames", "score_frames", "transpose_score", "with_reference_pitch"]

SIL, WB = "<sil>", "|"


@dataclass
class ScoreFrames:
    """``phonemes [L]``, ``durations [L]`` frames (sum = ``f0.size``), ``f0 [T]`` Hz (0 = unvoiced),
    ``word_index [L]`` (-1 for ``<sil>`` and boundaries), the text the lyrics spell."""

    phonemes: list[str]
    durations: list[int]
    f0: np.ndarray
    word_index: list[int]
    text: str
    frame_rate: float
    notes: list[tuple[int, int]] = field(default_factory=list)  # frame span of each note

    def as_score(self) -> dict:
        """The mapping :meth:`ns2.inference.NS2Synthesizer.generate` takes as ``score``."""
        return {"phonemes": list(self.phonemes), "durations": list(self.durations), "f0": self.f0.copy(),
                "note_frames": [list(span) for span in self.notes]}


def _words(score: NoteScore) -> tuple[list[str], list[int | None]]:
    """Words spelled by the lyrics, and the word of each note (None for rests and slurs)."""
    words: list[str] = []
    owner: list[int | None] = []
    open_word = False
    for n in score.notes:
        if n.is_rest or n.slur or not n.lyric:
            owner.append(None)
            continue
        syl = n.lyric.strip()
        cont = syl.endswith("-")
        syl = syl.rstrip("-")
        if open_word:
            words[-1] += syl
        else:
            words.append(syl)
        owner.append(len(words) - 1)
        open_word = cont
    return words, owner


def _phonemize(words: list[str], language: str):
    from ns2.text import Tokenizer

    t = Tokenizer(language)(" ".join(words))
    return list(t.phonemes), list(t.word_index)


def score_frames(score: NoteScore, *, frame_rate: float, language: str = "en-us", transpose: float = 0.0,
                 consonant_share: float = 0.3, max_consonant_s: float = 0.08, portamento_s: float = 0.0,
                 vibrato: tuple[float, float] | None = None, vibrato_delay_s: float = 0.25,
                 phonemize: Callable[[list[str], str], tuple[list[str], list[int]]] | None = None) -> ScoreFrames:
    """See the module doc. ``phonemize(words, language) -> (phonemes, word_index)`` defaults to the
    text front end (:class:`ns2.text.Tokenizer`)."""
    from ns2.data.synthetic.singing import is_vowel, is_zero_length, syllabify

    if not 0.0 <= consonant_share < 1.0:
        raise ValueError(f"consonant_share must lie in [0, 1), got {consonant_share}")
    words, owner = _words(score)
    if not words:
        raise ValueError(f"{score.source or 'score'}: no lyrics; expected a syllable on at least one note")
    phonemes, word_index = (phonemize or _phonemize)(words, language)
    if max(word_index) + 1 != len(words):
        raise ValueError(f"{score.source or 'score'}: the front end read {max(word_index) + 1} words from the "
                         f"lyrics {' '.join(words)!r}, expected {len(words)}")
    syl_of_word: dict[int, list[tuple[int, int]]] = {}
    for a, b in syllabify(phonemes, word_index):
        w = next(word_index[k] for k in range(a, b) if word_index[k] >= 0)
        syl_of_word.setdefault(w, []).append((a, b))

    # note -> phoneme range; slurs and extra notes extend the span of the syllable before them
    notes = list(score.notes)
    notes_of_word: dict[int, list[int]] = {}
    for i, w in enumerate(owner):
        if w is not None:
            notes_of_word.setdefault(w, []).append(i)
    spans: list[tuple[int, int, float, float]] = []  # (phoneme a, b, start s, end s)
    syllable_note: dict[int, tuple[int, int]] = {}     # first note -> phoneme range
    for w, idx in notes_of_word.items():
        syls = syl_of_word.get(w, [])
        if len(syls) > len(idx):  # more phonetic syllables than notes: the last note takes the rest
            syls = syls[: len(idx) - 1] + [(syls[len(idx) - 1][0], syls[-1][1])]
        for k, i in enumerate(idx[: len(syls)]):
            syllable_note[i] = syls[k]
    current: list | None = None
    t_end = float(score.end)
    for i, n in enumerate(notes):
        if n.is_rest:
            current = None
            spans.append((-1, -1, n.onset, n.onset + n.duration))
            continue
        if i in syllable_note:
            a, b = syllable_note[i]
            current = [a, b, n.onset, n.onset + n.duration]
            spans.append(current)  # type: ignore[arg-type]
        elif current is not None:  # slur or an extra note of the word: the vowel goes on
            current[3] = n.onset + n.duration
        else:
            raise ValueError(f"{score.source or 'score'}: note {i} continues nothing (a slur after a rest)")

    # boundaries in seconds
    bounds: list[tuple[str, int, float, float]] = []  # (symbol, word, start, end)
    cursor = 0.0
    for a, b, t0, t1 in spans:
        if t0 > cursor + 1e-9:  # a gap between notes: silence
            bounds.append((SIL, -1, cursor, t0))
        if a < 0:
            bounds.append((SIL, -1, t0, t1))
            cursor = t1
            continue
        syms = list(range(a, b))
        timed = [k for k in syms if not is_zero_length(phonemes[k])]
        vowels = [k for k in timed if is_vowel(phonemes[k])]
        span = t1 - t0
        if vowels:
            n_cons = len(timed) - len(vowels)
            each = min(max_consonant_s, consonant_share * span / max(1, n_cons))
            vowel = (span - each * n_cons) / len(vowels)
        else:
            each = vowel = span / max(1, len(timed))
        t = t0
        times: dict[int, tuple[float, float]] = {}
        for k in timed:  # in order: consonants their bounded share, vowels the rest
            d = vowel if k in vowels else each
            times[k] = (t, t + d)
            t += d
        for k in syms:
            if k in times:
                s0, s1 = times[k]
            else:  # a stress mark or boundary: no time, at the start of the next timed phoneme
                s0 = s1 = next((times[q][0] for q in syms if q > k and q in times), t1)
            bounds.append((phonemes[k], word_index[k], s0, s1))
        cursor = t1
    if cursor < t_end - 1e-9:
        bounds.append((SIL, -1, cursor, t_end))

    # frames: the corpus's own rounding of phoneme times (cumulative, so they sum to the score's length)
    total = int(round(t_end * frame_rate))
    durations = times_to_durations([[b[2], b[3]] for b in bounds], total, frame_rate)

    # F0
    times_f = (np.arange(total) + 0.5) / frame_rate
    cents = np.full(total, np.nan)
    note_frames: list[tuple[int, int]] = []
    prev_pitch: float | None = None
    for n in notes:
        a, b = int(round(n.onset * frame_rate)), int(round((n.onset + n.duration) * frame_rate))
        note_frames.append((a, b))
        if n.is_rest:
            prev_pitch = None
            continue
        p = 100.0 * (float(n.pitch) + transpose)
        seg = np.full(max(0, b - a), p)
        local = times_f[a:b] - n.onset
        if portamento_s > 0 and prev_pitch is not None:
            glide = local < portamento_s
            seg[glide] = prev_pitch + (p - prev_pitch) * (local[glide] / portamento_s)
        if vibrato is not None:
            rate, depth = vibrato
            on = local >= vibrato_delay_s
            seg[on] += depth * np.sin(2 * np.pi * rate * (local[on] - vibrato_delay_s))
        cents[a:b] = seg
        prev_pitch = p
    f0 = np.where(np.isfinite(cents), 440.0 * 2.0 ** ((np.nan_to_num(cents) / 100.0 - 69.0) / 12.0), 0.0)
    f0 = f0.astype(np.float32)
    return ScoreFrames([b[0] for b in bounds], durations, f0, [b[1] for b in bounds], " ".join(words),
                       float(frame_rate), note_frames)


def transpose_score(score: NoteScore, semitones: float) -> NoteScore:
    """The same score ``semitones`` higher (negative: lower); pitch limits are checked again."""
    from dataclasses import replace

    return NoteScore(tuple(n if n.is_rest else replace(n, pitch=float(n.pitch) + semitones) for n in score.notes),
                     score.tempo_bpm, score.source, score.measures)



def with_reference_pitch(frames: ScoreFrames, ref_f0: np.ndarray, transpose: float = 0.0) -> ScoreFrames:
    """The score's timing with the pitch of a reference clip: ``ref_f0 [T']`` Hz (0 = unvoiced), e.g. a
    singer's rendition tracked at the same frame rate, is stretched linearly in time to the score's
    ``T`` frames and moved by ``transpose`` semitones; it replaces the written F0 on the score's sung
    frames where the reference is voiced. Rests stay unvoiced; sung frames where the reference is
    unvoiced keep the written pitch. Returns a new :class:`ScoreFrames`."""
    ref = np.asarray(ref_f0, dtype=np.float64).reshape(-1)
    T = frames.f0.size
    if ref.size == 0 or not (ref > 0).any():
        raise ValueError("reference pitch: the reference clip has no voiced frames; expected a sung or spoken clip")
    pos = (np.arange(T) + 0.5) * ref.size / max(T, 1) - 0.5  # frame centres of the score in the reference
    near = np.clip(np.rint(pos).astype(int), 0, ref.size - 1)
    voiced_ref = ref[near] > 0
    idx = np.flatnonzero(ref > 0)
    log_ref = np.interp(pos, idx, np.log(ref[idx]))  # log-linear between voiced reference frames
    out = frames.f0.astype(np.float64).copy()
    use = (out > 0) & voiced_ref
    out[use] = np.exp(log_ref[use]) * 2.0 ** (float(transpose) / 12.0)
    return ScoreFrames(list(frames.phonemes), list(frames.durations), out.astype(np.float32), list(frames.word_index),
                       frames.text, frames.frame_rate, list(frames.notes))
