"""Synthetic speakers: an espeak-ng accent x voice variant, prosody parameters and a formant shift.

A speaker is ``<accent>+<variant>`` (``en-us+f3``) with its own rate (words per minute), base pitch
and pitch range (espeak's 0..100 scales) and an optional formant-shift ratio applied afterwards with
Praat's "Change gender" (pitch and duration unchanged, so phoneme timings stay exact). Pitches are
calibrated so that no two speakers share a median F0 (:func:`calibrate_pitch`). Training and
held-out speakers draw their variants from disjoint pools, so a held-out speaker never shares a
voice variant with any training speaker (accents are shared: they are dialects, not identities).
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np

from ns2.data.synthetic.espeak_synth import VoiceSettings

# espeak-ng English voices: "en" is British English (espeak has no "en-gb" name).
ACCENTS: tuple[str, ...] = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")

# Voice variants (espeak-ng-data/voices/!v), chosen for clear voicing (no whisper, robot or
# croak variants). Male and female pools; training and held-out pools are disjoint.
TRAIN_VARIANTS_MALE: tuple[str, ...] = (
    "m1", "m3", "m4", "m6", "m7", "Andy", "Gene", "Henrique", "Hugo", "Lee", "Mario", "Michael",
    "adam", "benjamin", "david", "edward", "klatt3", "klatt4", "max", "michel", "norbert", "paul",
    "quincy", "rob", "robert", "sandro", "travis", "victor",
)
TRAIN_VARIANTS_FEMALE: tuple[str, ...] = (
    "f1", "f2", "f3", "f5", "Annie", "anika", "belinda", "grandma", "shelby", "steph",
)
TEST_VARIANTS_MALE: tuple[str, ...] = (
    "m2", "m5", "m8", "Diogo", "Jacky", "Mike", "Reed", "boris", "gustave", "john", "klatt5",
    "marcelo", "miguel", "pablo", "edward2", "iven3",
)
TEST_VARIANTS_FEMALE: tuple[str, ...] = ("f4", "Alicia", "Andrea", "aunty", "linda", "steph2")


@dataclass(frozen=True)
class Speaker:
    """One synthetic voice. ``held_out`` speakers only appear in the ``test`` split."""

    id: str
    accent: str
    variant: str
    gender: str
    rate: int
    pitch: int
    range: int
    formant_shift: float
    held_out: bool
    f0: float = 0.0  # median F0 (Hz) of the calibration sentence, see calibrate_pitch

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    def settings(self, rate_scale: float = 1.0) -> VoiceSettings:
        """espeak settings; ``rate_scale`` < 1 speaks slower (used for singing)."""
        return VoiceSettings(self.voice, rate=max(80, int(round(self.rate * rate_scale))), pitch=self.pitch,
                             range=self.range)

    def to_dict(self) -> dict:
        return asdict(self) | {"voice": self.voice}


def _draw(rng: random.Random, n: int, male: Sequence[str], female: Sequence[str], accents: Sequence[str],
          id_base: int, held_out: bool, formant_shift_prob: float) -> list[Speaker]:
    """``n`` speakers alternating female/male, each (accent, variant) pair used once."""
    if not accents:
        raise ValueError("synthetic speakers: 'accents' is empty; expected espeak voices such as ('en-us',)")
    pools = {"female": list(female), "male": list(male)}
    for pool in pools.values():
        rng.shuffle(pool)
    used: set[tuple[str, str]] = set()
    capacity = (len(male) + len(female)) * len(accents)
    if n > capacity:
        raise ValueError(f"synthetic speakers: asked for {n} {'held-out' if held_out else 'training'} speakers, "
                         f"but the variant pools x accents give only {capacity}")
    out: list[Speaker] = []
    counters = {"female": 0, "male": 0}
    for i in range(n):
        gender = "female" if i % 2 == 0 else "male"
        if not pools[gender]:
            gender = "male" if gender == "female" else "female"
        pool = pools[gender]
        while True:  # next unused (accent, variant) pair of this gender
            variant = pool[counters[gender] % len(pool)]
            accent = accents[(counters[gender] // len(pool) + rng.randrange(len(accents))) % len(accents)]
            counters[gender] += 1
            if (accent, variant) not in used:
                break
        used.add((accent, variant))
        shift = 1.0
        if rng.random() < formant_shift_prob:
            shift = round(rng.choice((rng.uniform(0.90, 0.96), rng.uniform(1.04, 1.12))), 3)
        out.append(Speaker(
            id=str(id_base + i), accent=accent, variant=variant, gender=gender,
            rate=rng.randrange(140, 196, 5), pitch=rng.randrange(20, 81, 5), range=rng.randrange(30, 86, 5),
            formant_shift=shift, held_out=held_out,
        ))
    return out


CALIBRATION_TEXT = "The quiet baker carried a wooden basket across the old bridge yesterday."


def median_f0(settings: VoiceSettings) -> float:
    """Median F0 (Hz) of :data:`CALIBRATION_TEXT` spoken with ``settings``."""
    import parselmouth

    from ns2.data.synthetic.espeak_synth import get_espeak

    out = get_espeak().synthesize(CALIBRATION_TEXT, settings)
    f0 = parselmouth.Sound(out.audio / 32768.0, out.sample_rate).to_pitch(0.01, 50.0, 600.0).selected_array["frequency"]
    return float(np.median(f0[f0 > 0])) if np.any(f0 > 0) else 0.0


def calibrate_pitch(speakers: list[Speaker], min_gap: float = 0.75) -> list[Speaker]:
    """Nudge each speaker's espeak pitch (in steps of 5, within 10..90) until its median F0 is at
    least ``min_gap`` semitones from every speaker before it, so that no two voices share a pitch;
    records the F0 in ``Speaker.f0``. Falls back to the pitch with the largest gap."""
    taken: list[float] = []
    out: list[Speaker] = []
    for spk in speakers:
        candidates = [spk.pitch + d for d in (0, 5, -5, 10, -10, 15, -15, 20, -20, 25, -25, 30, -30)]
        best: tuple[float, int, float] | None = None
        for pitch in (p for p in candidates if 10 <= p <= 90):
            f0 = median_f0(replace(spk, pitch=pitch).settings())
            gap = min((abs(12.0 * math.log2(f0 / t)) for t in taken), default=float("inf")) if f0 > 0 else -1.0
            if best is None or gap > best[0]:
                best = (gap, pitch, f0)
            if gap >= min_gap:
                break
        assert best is not None
        taken.append(best[2])
        out.append(replace(spk, pitch=best[1], f0=round(best[2], 2)))
    return out


def make_speakers(num_train: int, num_test: int, seed: int, accents: Sequence[str] = ACCENTS,
                  formant_shift_prob: float = 0.5, calibrate: bool = True) -> list[Speaker]:
    """Training speakers (ids ``1000 + i``) then held-out speakers (ids ``9000 + i``), from ``seed``;
    ``calibrate`` spreads their pitches apart (:func:`calibrate_pitch`)."""
    if num_train < 1 or num_test < 0:
        raise ValueError(f"synthetic speakers: need num_train >= 1 and num_test >= 0, got {num_train}, {num_test}")
    bad = [a for a in accents if a not in ACCENTS]
    if bad:
        raise ValueError(f"synthetic speakers: unknown accents {bad}; expected a subset of {ACCENTS}")
    rng = random.Random(f"speakers-{seed}")
    train = _draw(rng, num_train, TRAIN_VARIANTS_MALE, TRAIN_VARIANTS_FEMALE, accents, 1000, False, formant_shift_prob)
    test = _draw(rng, num_test, TEST_VARIANTS_MALE, TEST_VARIANTS_FEMALE, accents, 9000, True, formant_shift_prob)
    return calibrate_pitch(train + test) if calibrate else train + test


# ------------------------------------------------------------------------------- Flite speakers
#: Flite base voices (see :mod:`ns2.data.synthetic.flite_synth`) and their own sex; ``kal`` (8 kHz)
#: is left out for its bandwidth.
FLITE_BASES: dict[str, str] = {"rms": "male", "awb": "male", "kal16": "male", "slt": "female"}
#: Target median F0 (Hz) and formant-ratio ranges per (speaker sex, base sex).
_FLITE_PITCH = {"male": (82.0, 150.0), "female": (165.0, 255.0)}
_FLITE_FORMANT = {("male", "male"): (0.90, 1.06), ("male", "female"): (0.84, 0.92),
                  ("female", "female"): (0.94, 1.10), ("female", "male"): (1.10, 1.20)}


@dataclass(frozen=True)
class FliteSpeaker:
    """One synthetic voice made from a Flite voice: Praat's "Change gender" sets its median F0
    (``f0``, Hz), pitch-range factor and formant ratio afterwards (duration unchanged, so the
    segment timings stay exact); ``duration_stretch`` > 1 speaks slower."""

    id: str
    base: str
    gender: str
    f0: float
    pitch_range: float
    formant_shift: float
    duration_stretch: float
    held_out: bool
    accent: str = "en-us"

    @property
    def voice(self) -> str:
        return f"flite-{self.base}"

    def to_dict(self) -> dict:
        return asdict(self) | {"voice": self.voice}


def _flite_distance(a: FliteSpeaker, b: FliteSpeaker) -> float:
    """Distance between two voices in semitones of F0 and of formant ratio (x2), plus 3 for
    different base voices."""
    return math.hypot(12.0 * math.log2(a.f0 / b.f0), 24.0 * math.log2(a.formant_shift / b.formant_shift)) \
        + (3.0 if a.base != b.base else 0.0)


def make_flite_speakers(num_train: int, num_test: int, seed: int, min_distance: float = 1.5) -> list[FliteSpeaker]:
    """Training speakers (ids ``1000 + i``) then held-out speakers (``9000 + i``) alternating
    female/male, each at least ``min_distance`` (:func:`_flite_distance`) from every other."""
    if num_train < 1 or num_test < 0:
        raise ValueError(f"synthetic speakers: need num_train >= 1 and num_test >= 0, got {num_train}, {num_test}")
    rng = random.Random(f"flite-speakers-{seed}")
    bases = {"male": ["rms", "awb", "kal16", "rms", "awb", "kal16", "slt"], "female": ["slt", "slt", "slt", "rms", "kal16"]}
    out: list[FliteSpeaker] = []
    for i in range(num_train + num_test):
        held_out = i >= num_train
        gender = "female" if i % 2 == 0 else "male"
        for _ in range(200):
            base = rng.choice(bases[gender])
            lo, hi = _FLITE_FORMANT[(gender, FLITE_BASES[base])]
            f_lo, f_hi = _FLITE_PITCH[gender]
            spk = FliteSpeaker(
                id=str((9000 + i - num_train) if held_out else (1000 + i)), base=base, gender=gender,
                f0=round(math.exp(rng.uniform(math.log(f_lo), math.log(f_hi))), 1),
                pitch_range=round(rng.uniform(0.7, 1.5), 2), formant_shift=round(rng.uniform(lo, hi), 3),
                duration_stretch=round(rng.uniform(0.92, 1.15), 2), held_out=held_out,
            )
            if all(_flite_distance(spk, o) >= min_distance for o in out):
                break
        else:
            raise ValueError(f"synthetic speakers: cannot place {num_train + num_test} Flite voices "
                             f"{min_distance} apart; lower min_distance")
        out.append(spk)
    return out
