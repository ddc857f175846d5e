"""Singing with a known score: spoken lyrics re-timed and re-pitched by Praat PSOLA.

Recipe for one item:

1. the lyric line is spoken by espeak-ng (slowly) and aligned to phonemes (ground truth);
2. each word's phonemes are cut into syllables (:func:`syllabify`): every vowel (or syllabic
   consonant) is a nucleus; between two nuclei a single consonant starts the next syllable and
   of a cluster the first consonant closes the previous one (``b ɑ s | k ɪ t``); consonants before
   the first / after the last nucleus belong to the first / last syllable; stress marks, the
   word boundary ``|`` and punctuation (zero-length) go with the syllable that follows them;
3. a melody is drawn from a seeded RNG (:func:`make_melody`): one note per syllable, a random walk
   over a major or minor scale around the singer's own speaking pitch, durations of 1/2..2 beats;
4. Praat's Manipulation replaces the pitch tier with the note pitches (short glides between notes,
   light vibrato on long notes) and the duration tier stretches each syllable to its note: the
   consonants keep their spoken length and the vowels absorb the rest (all phonemes of a syllable
   are scaled alike when the note is shorter than that allows); "Get resynthesis (overlap-add)".

The output phoneme times are the analytic images of the input times under the duration tier
(piecewise constant factors per phoneme), and the audio is trimmed/padded to exactly their total,
so ``phoneme_times`` cover the file. The score lists one note per syllable (``rest: False``) and
one rest (``pitch`` 0, ``rest: True``) per stretch of ``<sil>``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ns2.audio.f0 import hz_to_midi, midi_to_hz

SIL = "<sil>"
_VOWEL_CHARS = frozenset("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪɯɵɶʉʊʌʏᵻøœɯʅɿ")  # ʅ ɿ: Mandarin apical vowels
_TONE_LETTERS = frozenset("˥˦˧˨˩")  # Chao tone letters (the front end's Mandarin tones)
_SYLLABIC = "\u0329"  # combining vertical line below: n̩, l̩
_ZERO_LENGTH = frozenset({"ˈ", "ˌ", "ː", "|", ",", ".", "!", "?", ";", ":"})
SCALES: dict[str, tuple[int, ...]] = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


class SingingError(RuntimeError):
    """A lyric that cannot be turned into a sung item (no syllable, unvoiced pitch ...)."""


def seed_praat(seed: int) -> None:
    """Seed Praat's random generator: its overlap-add resynthesis draws random numbers (for
    unvoiced stretches), so without this the same item would give different samples each run."""
    from parselmouth.praat import run

    run(f"a = random_initializeWithSeedUnsafelyButPredictably ({int(seed) % (2 ** 53)})")


def is_vowel(symbol: str) -> bool:
    """True for a syllable nucleus: a symbol with a vowel letter or a syllabic consonant."""
    return any(ch in _VOWEL_CHARS for ch in symbol) or _SYLLABIC in symbol


def is_zero_length(symbol: str) -> bool:
    """Stress/length marks, Mandarin tone letters, the word boundary and punctuation: symbols that take no time."""
    return symbol in _ZERO_LENGTH or (bool(symbol) and all(ch in _TONE_LETTERS for ch in symbol))


# ------------------------------------------------------------------------------- syllables
def syllabify(phonemes: list[str], word_index: list[int]) -> list[tuple[int, int]]:
    """Half-open phoneme ranges ``[start, end)`` of the syllables, in order (see the module doc).

    ``<sil>`` never belongs to a syllable; a word without a nucleus is one syllable.
    """
    n = len(phonemes)
    syllables: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if word_index[i] < 0:
            i += 1
            continue
        j = i
        while j < n and word_index[j] == word_index[i]:
            j += 1
        members = [k for k in range(i, j) if phonemes[k] != SIL]
        start = members[0]
        while start > 0 and is_zero_length(phonemes[start - 1]) and word_index[start - 1] < 0:
            start -= 1  # a word boundary / mark just before the word goes with its first syllable
        nuclei = [k for k in members if is_vowel(phonemes[k])]
        if not nuclei:
            syllables.append((start, members[-1] + 1))
            i = j
            continue
        cuts = [start]
        for a, b in zip(nuclei, nuclei[1:]):
            consonants = [k for k in range(a + 1, b) if not is_zero_length(phonemes[k])]
            cuts.append(consonants[0] + 1 if len(consonants) >= 2 else (consonants[0] if consonants else b))
            # zero-length marks right before the next nucleus's consonants stay with that syllable
            while cuts[-1] - 1 > a and is_zero_length(phonemes[cuts[-1] - 1]):
                cuts[-1] -= 1
        cuts.append(members[-1] + 1)
        syllables.extend((cuts[k], cuts[k + 1]) for k in range(len(cuts) - 1))
        i = j
    return syllables


# ------------------------------------------------------------------------------- melody
@dataclass(frozen=True)
class Note:
    pitch: int        # MIDI
    beats: float


def make_melody(num_notes: int, rng: random.Random, center_midi: float) -> tuple[list[Note], float, str, int]:
    """A random-walk melody in a scale near ``center_midi``.

    Returns ``(notes, seconds_per_beat, scale_name, tonic_midi)``.
    """
    scale_name = rng.choice(sorted(SCALES))
    scale = SCALES[scale_name]
    tonic = int(round(center_midi)) - rng.choice((0, 2, 3, 5))
    tempo = rng.randrange(100, 153, 4)  # beats per minute
    degree = rng.choice((0, 2, 4))
    notes: list[Note] = []
    for k in range(num_notes):
        if k:
            degree += rng.choice((-2, -1, -1, 0, 1, 1, 2, 3, -3))
            degree = max(-2, min(8, degree))
        octave, step = divmod(degree, len(scale))
        pitch = tonic + 12 * octave + scale[step]
        last = k == num_notes - 1
        beats = rng.choice((1.5, 2.0)) if last else rng.choice((0.5, 0.5, 1.0, 1.0, 1.0, 1.5, 2.0))
        notes.append(Note(pitch, beats))
    return notes, 60.0 / tempo, scale_name, tonic


# ------------------------------------------------------------------------------- timing
def stretch_factors(phonemes: list[str], times: np.ndarray, syllables: list[tuple[int, int]],
                    targets: list[float]) -> np.ndarray:
    """Per-phoneme duration factors that give syllable ``k`` the length ``targets[k]`` seconds.

    ``times: [P, 2]`` input [start, end]; phonemes outside syllables keep factor 1.
    """
    dur = times[:, 1] - times[:, 0]
    factors = np.ones(len(phonemes))
    for (a, b), target in zip(syllables, targets):
        idx = np.arange(a, b)
        vowels = np.array([is_vowel(phonemes[k]) for k in idx])
        v = float(dur[idx][vowels].sum())
        c = float(dur[idx][~vowels].sum())
        if v > 0 and target - c >= 0.5 * v:
            factors[idx[vowels]] = (target - c) / v
        elif v + c > 0:
            factors[idx] = target / (v + c)
    return factors


def _time_map(times: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Output ``[P, 2]`` times: the input phonemes laid end to end with their new lengths."""
    out_dur = (times[:, 1] - times[:, 0]) * factors
    ends = times[0, 0] + np.cumsum(out_dur)
    starts = np.concatenate([[times[0, 0]], ends[:-1]])  # exactly contiguous
    return np.stack([starts, ends], axis=1)


def _out_to_in(t_out: np.ndarray, times_in: np.ndarray, times_out: np.ndarray) -> np.ndarray:
    """Invert the piecewise-linear time map (output seconds -> input seconds)."""
    xs = np.concatenate([[times_out[0, 0]], times_out[:, 1]])
    ys = np.concatenate([[times_in[0, 0]], times_in[:, 1]])
    keep = np.concatenate([[True], np.diff(xs) > 0])
    return np.interp(t_out, xs[keep], ys[keep])


# ------------------------------------------------------------------------------- sing
@dataclass
class SungItem:
    """``audio: [S]`` float64 in [-1, 1]; ``phoneme_times`` post-stretch; ``score`` notes."""

    audio: np.ndarray
    phoneme_times: list[list[float]]
    score: list[dict]
    info: dict


def sing(audio: np.ndarray, sample_rate: int, phonemes: list[str], word_index: list[int],
         phoneme_times: list[list[float]], words: list[str], rng: random.Random,
         vibrato_cents: float = 25.0, glide: float = 0.03) -> SungItem:
    """Turn a spoken, aligned lyric into singing with a random score (see the module doc).

    ``audio: [S]`` float in [-1, 1]; ``words``: the lyric's words (``word_index`` points into it);
    ``rng`` draws the melody and seeds Praat, so the result is a function of the arguments.
    """
    import parselmouth
    from parselmouth.praat import call

    syllables = syllabify(phonemes, word_index)
    if not syllables:
        raise SingingError(f"lyric {' '.join(words)!r} has no syllable to sing")
    audio = np.asarray(audio, dtype=np.float64)
    snd = parselmouth.Sound(audio, float(sample_rate))
    seed_praat(rng.getrandbits(48))
    pitch = snd.to_pitch(0.01, 60.0, 600.0).selected_array["frequency"]
    voiced = pitch[pitch > 0]
    if voiced.size == 0:
        raise SingingError(f"lyric {' '.join(words)!r}: the spoken audio has no voiced frame")
    notes, spb, scale, tonic = make_melody(len(syllables), rng, hz_to_midi(float(np.median(voiced))))
    targets = [n.beats * spb for n in notes]

    times_in = np.asarray(phoneme_times, dtype=np.float64)
    factors = stretch_factors(phonemes, times_in, syllables, targets)
    times_out = _time_map(times_in, factors)

    # Praat's overlap-add writes at most 3x the input duration: pad the input with silence
    # (factor 1) so that the stretched phonemes always fit, and trim the output afterwards.
    total = float(times_out[-1, 1])
    pad = max(0.0, total - 2.0 * snd.xmax) + 0.2
    padded = parselmouth.Sound(np.pad(audio, (0, int(round(pad * sample_rate)))), float(sample_rate))
    manipulation = call(padded, "To Manipulation", 0.01, 60.0, 600.0)
    duration_tier = call("Create DurationTier", "duration", padded.xmin, padded.xmax)
    eps = 5e-4
    for (a, b), f in zip(times_in, factors):
        if b - a > 4 * eps:
            call(duration_tier, "Add point", a + eps, float(f))
            call(duration_tier, "Add point", b - eps, float(f))
    call(duration_tier, "Add point", float(times_in[-1, 1]) + eps, 1.0)
    call([manipulation, duration_tier], "Replace duration tier")

    # pitch contour on a 5 ms grid of output time, mapped back to input time
    pitch_tier = call("Create PitchTier", "pitch", padded.xmin, padded.xmax)
    starts = [float(times_out[a, 0]) for a, _ in syllables]
    ends = [float(times_out[b - 1, 1]) for _, b in syllables]
    for k, note in enumerate(notes):
        t0, t1 = starts[k], ends[k]
        grid = np.arange(t0, t1, 0.005)
        if grid.size == 0:
            continue
        semis = np.full(grid.shape, float(note.pitch))
        if k and abs(starts[k] - ends[k - 1]) < 1e-6:  # legato: glide from the previous note
            g = np.clip((grid - t0) / glide, 0.0, 1.0)
            semis = notes[k - 1].pitch + (note.pitch - notes[k - 1].pitch) * g
        if t1 - t0 > 0.35:
            ramp = np.clip((grid - t0 - 0.2) / 0.15, 0.0, 1.0)
            semis = semis + ramp * (vibrato_cents / 100.0) * np.sin(2 * np.pi * 5.5 * (grid - t0))
        t_in = _out_to_in(grid, times_in, times_out)
        for t, s in zip(t_in, semis):
            call(pitch_tier, "Add point", float(t), midi_to_hz(float(s)))
    call([pitch_tier, manipulation], "Replace pitch tier")
    sung = call(manipulation, "Get resynthesis (overlap-add)")

    n_out = int(round(total * sample_rate))
    y = np.asarray(sung.values[0], dtype=np.float64)
    y = y[:n_out] if y.size >= n_out else np.pad(y, (0, n_out - y.size))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.95:
        y = y * (0.95 / peak)
    times_out[-1, 1] = n_out / sample_rate
    times_list = [[float(a), float(b)] for a, b in times_out]

    score: list[dict] = []
    covered = 0
    for (a, b), note in zip(syllables, notes):
        _add_rests(score, phonemes, times_list, covered, a)  # silences before this syllable
        wi = next((word_index[q] for q in range(a, b) if word_index[q] >= 0), -1)
        lyric = "".join(p for p in phonemes[a:b] if not is_zero_length(p))
        score.append({
            "lyric": lyric, "pitch": int(note.pitch), "start": round(times_list[a][0], 6),
            "duration": round(times_list[b - 1][1] - times_list[a][0], 6), "phoneme_start": a, "phoneme_end": b,
            "word": words[wi] if 0 <= wi < len(words) else "", "rest": False, "slur": False,
        })
        covered = b
    _add_rests(score, phonemes, times_list, covered, len(phonemes))
    info = {"scale": scale, "tonic": tonic, "seconds_per_beat": round(spb, 6)}
    return SungItem(y, times_list, score, info)


def _add_rests(score: list[dict], phonemes: list[str], times: list[list[float]], a: int, b: int) -> None:
    """Rest notes for the ``<sil>`` runs in phonemes ``[a, b)``; other symbols there join the last note."""
    k = a
    while k < b:
        if phonemes[k] != SIL:
            if score and score[-1]["phoneme_end"] == k:
                score[-1]["phoneme_end"] = k + 1
            k += 1
            continue
        j = k
        while j < b and phonemes[j] == SIL:
            j += 1
        start, end = times[k][0], times[j - 1][1]
        if end - start > 0:
            score.append({"lyric": SIL, "pitch": 0, "start": round(start, 6), "duration": round(end - start, 6),
                          "phoneme_start": k, "phoneme_end": j, "word": "", "rest": True, "slur": False})
        k = j
