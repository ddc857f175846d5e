"""Helpers of the codec-training tests: a small prepared corpus of speech-like signals, tiny networks."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ns2.data.manifest import Utterance, write_manifest

SR = 16000
HOP = 200
SPLITS = {"s0": "train", "s1": "train", "s2": "train", "s3": "valid", "s4": "test", "s5": "test"}


def voice(rng: np.random.Generator, seconds: float, f0: float, formants: tuple[float, ...]) -> np.ndarray:
    """Harmonics of a gliding f0 shaped by a formant envelope, gated into syllables, plus noise."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = np.zeros(n)
    for k in range(1, int(4000 / f0)):
        gain = sum(math.exp(-((k * f0 - fm) / 250.0) ** 2) for fm in formants) + 0.05 / k
        x += gain * np.sin(k * phase)
    rate = rng.uniform(3, 5)
    gate = np.clip(np.sin(2 * np.pi * rate * t + rng.uniform(0, 6)) * 2 + 0.5, 0, 1)
    x = x * gate + 0.01 * rng.standard_normal(n)
    return (0.5 * x / (np.abs(x).max() + 1e-9)).astype(np.float32)


def make_prepared(root: Path, per_speaker: int = 3, seed: int = 0) -> Path:
    """Write ``root/prepared/{audio/*.wav, f0/*.npy, manifest.jsonl}``; return the manifest path."""
    from ns2.audio.f0 import compute_f0

    rng = np.random.default_rng(seed)
    prepared = root / "prepared"
    (prepared / "audio").mkdir(parents=True, exist_ok=True)
    (prepared / "f0").mkdir(exist_ok=True)
    utts = []
    for s, (spk, split) in enumerate(SPLITS.items()):
        f0 = 100 + 25 * s
        formants = (500 + 60 * s, 1500 - 40 * s, 2500 + 30 * s)
        for i in range(per_speaker):
            uid = f"{spk}_0_{i}"
            x = voice(rng, rng.uniform(1.0, 1.5), f0, formants)
            sf.write(prepared / "audio" / f"{uid}.wav", x, SR, subtype="PCM_16")
            np.save(prepared / "f0" / f"{uid}.npy", compute_f0(x, SR, HOP))
            utts.append(Utterance(id=uid, audio=f"audio/{uid}.wav", sample_rate=SR, duration=len(x) / SR, speaker=spk,
                                  text="a", split=split, frame_rate=SR / HOP, num_frames=math.ceil(len(x) / HOP),
                                  features={"f0": f"f0/{uid}.npy"}))
    manifest = prepared / "manifest.jsonl"
    write_manifest(manifest, utts)
    return manifest


def tiny_codec(seed: int = 0):
    from ns2.codec import RVQCodec

    torch.manual_seed(seed)
    return RVQCodec(encoder_dim=8, encoder_rates=[2, 4, 5, 5], latent_dim=32, decoder_dim=64, decoder_rates=[5, 5, 4, 2],
                    n_codebooks=4, codebook_size=128, codebook_dim=8, quantizer_dropout=0.5, sample_rate=SR)


def tiny_discriminator():
    from ns2.codec.discriminators import Discriminator

    return Discriminator(fft_sizes=[512, 256, 128], period_channels=[8, 16, 32, 32, 32], stft_channels=8)
