"""What the metrics need besides the synthesis: phoneme alignments (the codec-resynthesised prompt of SIM-r:
:class:`ns2.inference.systems.CodecResynthesis`).

- :func:`manifest_alignment`: the phoneme durations of a manifest utterance (non-phone symbols such as
  word boundaries, punctuation and stress marks dropped: they cover no frame of their own), optionally
  cropped to a time window (a cropped prompt: phonemes cut by the window keep the frames inside it).
- :class:`AlignerDurations`: durations of any audio from a trained aligner checkpoint
  (:mod:`ns2.data.aligner.infer`) and the phonemes of its text.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Sequence

import numpy as np

from ns2.data.manifest import Utterance
from ns2.metrics.audio import resample
from ns2.metrics.prosody import Alignment

__all__ = ["AlignerDurations", "crop_alignment", "manifest_alignment"]


@functools.lru_cache(maxsize=1)
def non_phone_symbols() -> frozenset[str]:
    """Symbols of the default table that are not phones: specials (but ``<sil>``), word boundaries,
    punctuation, stress and tone marks. They take no frames of their own and are left out of alignments."""
    from ns2.text import DEFAULT_SYMBOLS

    return frozenset(set(DEFAULT_SYMBOLS.symbols) - set(DEFAULT_SYMBOLS.phones) - {"<sil>"})


def crop_alignment(durations: Sequence[int], frame_rate: float, phonemes: Sequence[str] | None,
                   start: float | None = None, end: float | None = None) -> Alignment:
    """Durations ``[N]`` (frames) restricted to ``[start, end]`` seconds -> an :class:`Alignment`.

    Phonemes overlapping the window keep the frames inside it; zero-length phones keep their place when
    it lies inside the window; non-phone symbols (:func:`non_phone_symbols`) are dropped when named, so
    two alignments of the same phoneme sequence always have the same length.
    """
    d = np.asarray(durations, dtype=np.int64)
    edges = np.concatenate([[0], np.cumsum(d)])
    f0 = 0 if start is None else int(round(start * frame_rate))
    f1 = int(edges[-1]) if end is None else min(int(edges[-1]), int(round(end * frame_rate)))
    skip = non_phone_symbols() if phonemes is not None else frozenset()
    keep_d, keep_p = [], []
    for i in range(d.size):
        if phonemes is not None and phonemes[i] in skip:
            continue
        n = min(int(edges[i + 1]), f1) - max(int(edges[i]), f0)
        if n > 0 or (d[i] == 0 and f0 <= edges[i] < f1) or (d[i] == 0 and start is None and end is None):
            keep_d.append(max(n, 0))
            if phonemes is not None:
                keep_p.append(phonemes[i])
    if not keep_d or sum(keep_d) == 0:
        raise ValueError(f"crop_alignment: no phoneme inside [{start}, {end}] s ({int(edges[-1])} frames at {frame_rate} /s)")
    return Alignment(tuple(keep_d), float(frame_rate), tuple(keep_p) if phonemes is not None else None)


def manifest_alignment(utt: Utterance, start: float | None = None, end: float | None = None) -> Alignment | None:
    """The utterance's phoneme alignment (cropped to ``[start, end]`` s), None without durations."""
    if utt.durations is None or not utt.frame_rate:
        return None
    return crop_alignment(utt.durations, float(utt.frame_rate), utt.phonemes, start, end)


class AlignerDurations:
    """Phoneme durations of audio from a trained aligner: ``(wav [S], sr, phonemes) -> Alignment``."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu") -> None:
        from ns2.data.aligner.infer import load_aligner

        self.checkpoint = str(checkpoint)
        self.aligner = load_aligner(checkpoint, device=device)
        self.sample_rate = int(self.aligner.mel.sample_rate)
        self.frame_rate = self.sample_rate / int(self.aligner.mel.hop_length)

    @staticmethod
    def phonemes_of(text: str, language: str) -> list[str]:
        from ns2.text import Tokenizer

        return list(Tokenizer(language, unknown="drop")(text).phonemes)

    def __call__(self, wav: np.ndarray, sr: int, phonemes: Sequence[str]) -> Alignment:
        x = resample(np.asarray(wav, dtype=np.float32), sr, self.sample_rate)
        d = self.aligner.durations(list(phonemes), x)
        return crop_alignment(d, self.frame_rate, list(phonemes))

    def describe(self) -> dict[str, Any]:
        from ns2.metrics.backbones import sha256_file

        return {"checkpoint": self.checkpoint, "sha256": sha256_file(self.checkpoint), "frame_rate": self.frame_rate}


def synthesis_score(extra: dict[str, Any]) -> dict[str, Any] | None:
    """What a system sings a test item from: ``{phonemes, durations, f0, note_frames}`` built from the item's
    score (notes with MIDI pitch, start and duration in seconds, 0 = rest) and its frame durations
    (``extra.score_durations`` at ``score_frame_rate``); F0 per frame is the pitch of the note holding the
    frame's centre (0 in rests). None when the item carries no score frames (speech items)."""
    from ns2.audio.f0 import midi_to_hz

    notes, durations = extra.get("score"), extra.get("score_durations")
    if not notes or not durations:
        return None
    fr = float(extra["score_frame_rate"])
    T = int(sum(durations))
    f0 = np.zeros(T, dtype=np.float32)
    spans = []
    for n in notes:
        a = int(round(float(n["start"]) * fr))
        b = min(int(round((float(n["start"]) + float(n["duration"])) * fr)), T)
        spans.append([a, b])
        if not n.get("rest") and float(n.get("pitch") or 0) > 0:
            f0[a:b] = float(midi_to_hz(float(n["pitch"])))
    return {"phonemes": list(extra["score_phonemes"]), "durations": [int(d) for d in durations], "f0": f0,
            "note_frames": [s for s in spans if s[1] > s[0]]}
