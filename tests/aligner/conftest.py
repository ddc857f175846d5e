"""Synthetic aligner data: each phoneme id is a distinct tone, held for a known number of frames."""
from __future__ import annotations

import math

import pytest
import torch

HOP = 200
SR = 16000


def tone_utterance(ids: list[int], durations: list[int], g: torch.Generator, cut: int = 0) -> torch.Tensor:
    """audio [sum(durations) * HOP - cut]: token i is a sine at 250 + 240 * id Hz for durations[i] frames."""
    segs = []
    for i, n in zip(ids, durations):
        t = torch.arange(n * HOP) / SR
        segs.append(0.5 * torch.sin(2 * math.pi * (250 + 240 * i) * t))
    wav = torch.cat(segs)
    wav = wav[: len(wav) - cut]
    return wav + 0.01 * torch.randn(len(wav), generator=g)


def make_batch(batch_size: int, vocab: int, g: torch.Generator, min_len: int = 4, max_len: int = 10,
               min_dur: int = 2, max_dur: int = 8) -> dict:
    """A collated batch like ns2.data.dataset.collate gives, plus ``true_durations`` (list of [L])."""
    items = []
    for _ in range(batch_size):
        L = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        ids = [int(torch.randint(1, vocab, (1,), generator=g))]
        while len(ids) < L:  # no two neighbours alike: their boundary would be unobservable
            i = int(torch.randint(1, vocab, (1,), generator=g))
            if i != ids[-1]:
                ids.append(i)
        d = torch.randint(min_dur, max_dur + 1, (L,), generator=g).tolist()
        cut = int(torch.randint(0, HOP, (1,), generator=g))
        items.append((ids, d, tone_utterance(ids, d, g, cut)))
    Lm = max(len(i[0]) for i in items)
    Sm = max(len(i[2]) for i in items)
    phonemes = torch.zeros(batch_size, Lm, dtype=torch.long)
    phoneme_mask = torch.zeros(batch_size, Lm, dtype=torch.bool)
    audio = torch.zeros(batch_size, Sm)
    audio_lengths = torch.zeros(batch_size, dtype=torch.long)
    for b, (ids, _, wav) in enumerate(items):
        phonemes[b, : len(ids)] = torch.tensor(ids)
        phoneme_mask[b, : len(ids)] = True
        audio[b, : len(wav)] = wav
        audio_lengths[b] = len(wav)
    frames = (audio_lengths + HOP - 1) // HOP
    T = int(frames.max())
    return {
        "phonemes": phonemes, "phoneme_mask": phoneme_mask, "audio": audio, "audio_lengths": audio_lengths,
        "frame_mask": torch.arange(T)[None, :] < frames[:, None], "frame_lengths": frames,
        "true_durations": [torch.tensor(d) for _, d, _ in items],
    }


@pytest.fixture()
def tone_batch():
    return make_batch
