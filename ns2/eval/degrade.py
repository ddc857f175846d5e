"""``python -m ns2.eval.degrade``: a folder of degraded ground-truth copies, a known-worse reference system.

Each item's ground truth gets white noise at ``--snr`` dB (relative to the utterance's mean power) and
optionally a low-pass filter at ``--lowpass`` Hz, and is written as ``<out>/<id>.wav`` at its own rate.
Timing is unchanged, so the folder can be scored with ``same_timing_as_reference=true``.
``--drop K`` leaves K items (chosen with the seed) without an output, to show how missing outputs are
counted. Example::

    python -m ns2.eval.degrade eval/protocols/synthetic-small.jsonl \\
        --audio-root data/synthetic-small/prepared --out outputs/eval/degraded-snr10 --snr 10 --drop 2
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ns2.eval.protocol import load_item_audio, read_protocol
from ns2.utils.io import atomic_open, write_json

__all__ = ["degrade", "main"]


def degrade(wav: np.ndarray, sr: int, snr_db: float, rng: np.random.Generator, lowpass_hz: float | None = None) -> np.ndarray:
    """``wav: [S]`` + white noise at ``snr_db`` (optionally low-passed first) -> ``[S]`` float32, clipped to [-1, 1]."""
    x = np.asarray(wav, dtype=np.float64)
    if lowpass_hz:
        from scipy.signal import butter, sosfiltfilt

        x = sosfiltfilt(butter(8, float(lowpass_hz), btype="low", fs=sr, output="sos"), x)
    power = float(np.mean(x**2)) or 1e-12
    noise = rng.standard_normal(x.size) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(x + noise, -1.0, 1.0).astype(np.float32)


def main(argv: Sequence[str] | None = None) -> Path:
    import soundfile as sf

    p = argparse.ArgumentParser(prog="python -m ns2.eval.degrade", description=__doc__.split("\n\n")[0])
    p.add_argument("list", help="test list (.jsonl)")
    p.add_argument("--audio-root", required=True, help="folder the list's audio paths are relative to")
    p.add_argument("--out", required=True, help="output folder (<out>/<id>.wav)")
    p.add_argument("--snr", type=float, default=10.0, help="signal-to-noise ratio in dB")
    p.add_argument("--lowpass", type=float, default=None, help="low-pass cut-off in Hz (none by default)")
    p.add_argument("--drop", type=int, default=0, help="leave this many items without an output")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    items = [it for it in read_protocol(a.list) if it.gt_wav]
    rng = np.random.default_rng(a.seed)
    dropped = set(rng.choice([it.id for it in items], size=min(a.drop, len(items)), replace=False).tolist()) if a.drop else set()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for it in items:
        if it.id in dropped:
            continue
        wav, sr = load_item_audio(it, "gt", a.audio_root)
        with atomic_open(out / f"{it.id}.wav", "wb") as f:
            sf.write(f, degrade(wav, sr, a.snr, rng, a.lowpass), sr, format="WAV", subtype="PCM_16")
    write_json(out / "degrade.json", {"list": os.fspath(a.list), "snr_db": a.snr, "lowpass_hz": a.lowpass,
                                      "seed": a.seed, "written": len(items) - len(dropped), "dropped": sorted(dropped)})
    print(f"{out}: {len(items) - len(dropped)} degraded copies (snr {a.snr:g} dB), {len(dropped)} left out: {sorted(dropped)}")
    return out


if __name__ == "__main__":
    main()
