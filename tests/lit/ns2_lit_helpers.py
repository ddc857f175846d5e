"""The NS2 LightningModule tests' corpus: a small prepared manifest with codes from a tiny codec file."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ns2.data.manifest import Utterance, write_manifest
from ns2.text import DEFAULT_SYMBOLS

SR, HOP = 16000, 200
REPO = Path(__file__).resolve().parents[2]
SPLITS = {"s0": "train", "s1": "train", "s2": "train", "s3": "train", "s4": "valid", "s5": "test"}
PHONES = ["h", "ə", "l", "oʊ", "w", "d", "s", "t", "n", "æ", "ɪ", "m", "k", "iː"]
TINY_NET = dict(
    vocab_size=len(DEFAULT_SYMBOLS) + 8, latent_dim=None, hidden=32, num_query_tokens=4,
    phoneme_encoder={"layers": 1, "heads": 2, "filter_size": 64, "kernel_sizes": [3, 1], "dropout": 0.1},
    prompt_encoder={"layers": 1, "heads": 2, "filter_size": 64, "kernel_sizes": [3, 1], "dropout": 0.1},
    duration_predictor={"layers": 3, "kernel_size": 3, "attention_every": 3, "heads": 2, "dropout": 0.1},
    pitch_predictor={"layers": 3, "kernel_size": 5, "attention_every": 3, "heads": 2, "dropout": 0.1},
    pitch_embedding={"n_bins": 32},
    diffusion={"layers": 4, "kernel_size": 3, "cond_kernel_size": 3, "dilation_cycle": 2, "attention_every": 2,
               "heads": 2, "dropout": 0.1},
)


@dataclass
class Corpus:
    root: Path          # data.root: <root>/prepared/manifest.jsonl
    manifest: Path
    codec_file: Path    # written by ns2.codec.save_codec; the codes were extracted with this codec


def tiny_codec(seed: int = 0):
    from ns2.codec import RVQCodec

    torch.manual_seed(seed)
    return RVQCodec(encoder_dim=8, encoder_rates=[2, 4, 5, 5], latent_dim=32, decoder_dim=64, decoder_rates=[5, 5, 4, 2],
                    n_codebooks=4, codebook_size=128, codebook_dim=8, quantizer_dropout=0.5, sample_rate=SR)


def _signal(rng: np.random.Generator, frames: int, f0: np.ndarray) -> np.ndarray:
    """Harmonics of a frame-wise F0 contour (0 = unvoiced: noise), gated into syllables."""
    n = frames * HOP
    f = np.repeat(f0, HOP)
    phase = 2 * np.pi * np.cumsum(f) / SR
    voiced = np.repeat(f0 > 0, HOP)
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * voiced + 0.05 * rng.standard_normal(n) * ~voiced
    return (0.4 * x / (np.abs(x).max() + 1e-9)).astype(np.float32)


def make_corpus(root: Path, per_speaker: int = 3, seed: int = 0) -> Path:
    """``root/prepared/{audio,f0}`` and ``manifest.jsonl`` with phonemes, durations and F0 (no codes yet)."""
    rng = np.random.default_rng(seed)
    prepared = root / "prepared"
    for sub in ("audio", "f0"):
        (prepared / sub).mkdir(parents=True, exist_ok=True)
    assert all(p in DEFAULT_SYMBOLS for p in PHONES)
    utts = []
    for s, (spk, split) in enumerate(SPLITS.items()):
        for i in range(per_speaker):
            uid = f"{spk}_{i}"
            words = [list(rng.choice(PHONES, size=int(rng.integers(2, 5)))) for _ in range(int(rng.integers(3, 6)))]
            phonemes = ["<sil>"] + [p for w in words for p in (w + ["|"])][:-1] + ["<sil>"]
            durations = [int(rng.integers(0, 3)) if p == "|" else int(rng.integers(2, 8)) for p in phonemes]
            frames = sum(durations)
            t = np.arange(frames)
            f0 = (100 + 20 * s) * (1 + 0.1 * np.sin(2 * np.pi * t / 40 + s))
            f0 = np.where((t % 17) < 13, f0, 0.0).astype(np.float32)
            x = _signal(rng, frames, f0)
            sf.write(prepared / "audio" / f"{uid}.wav", x, SR, subtype="PCM_16")
            np.save(prepared / "f0" / f"{uid}.npy", f0)
            word_index, w = [], 0
            for p in phonemes:
                word_index.append(-1 if p in ("<sil>", "|") else w)
                w += p == "|"
            utts.append(Utterance(id=uid, audio=f"audio/{uid}.wav", sample_rate=SR, duration=len(x) / SR, speaker=spk,
                                  text="a b c", split=split, language="en-us", phonemes=phonemes, word_index=word_index,
                                  durations=durations, frame_rate=SR / HOP, num_frames=math.ceil(len(x) / HOP),
                                  features={"f0": f"f0/{uid}.npy"}))
    manifest = prepared / "manifest.jsonl"
    write_manifest(manifest, utts)
    return manifest




def start(args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    """``ns2 train ARGS`` in a child process (one thread, wandb offline); stdout and stderr together."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "ns2.cli.main", "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def run_dir(root: Path, run: str, task: str = "ns2_tiny") -> Path:
    return root / "outputs" / task / run
