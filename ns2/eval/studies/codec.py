"""Codec quality on held-out speakers, next to a plain baseline (8-bit mu-law quantisation of the waveform).

:func:`evaluate_codec` reconstructs every utterance of a split (``test``: held-out speakers) whole, one at a
time, through ``encode -> codes_to_latent -> decode`` with all quantisers (or ``n_q``), and reports

* ``mel_distance``: DAC's multi-scale log10-mel L1 (:class:`~ns2.losses.codec.MultiScaleMelLoss`; lower
  is better), the mean over utterances;
* ``si_sdr``: scale-invariant SDR in dB (higher is better), the mean over utterances;
* ``perplexity/qNN``: exp(entropy) of each quantiser's code histogram over all frames (at most
  ``codebook_size``; a collapsed codebook is near 1), and ``usage/qNN``, the fraction of codes used;
* ``kbps``: the bitrate (n_q · log2 K · frame rate);
* pitch fidelity (Praat F0 of the input vs the reconstruction, one frame per hop): ``f0_rmse_cents``,
  ``f0_corr`` and ``vuv_f1`` per utterance (frames voiced in both; means over utterances), and
  ``f0_mean_corr``, the Pearson correlation across utterances of their mean log-F0 (does the
  reconstruction keep each speaker's pitch level? what zero-shot pitch following can reach at most).

The baseline ``mulaw8`` quantises every sample to 8 bits after mu-law companding (mu = 255), i.e. 128 kbps
at 16 kHz, and is scored the same way (its one "codebook" is the 256 levels). The result is one flat dict
(``codec/...``, ``mulaw8/...``), ready for an experiment's ``results.json``.
"""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import torch

from ns2.audio.f0 import compute_f0, mean_log_f0
from ns2.data.manifest import Utterance
from ns2.losses.codec import MultiScaleMelLoss, si_sdr
from ns2.metrics.prosody import frame_f0_metrics, sequence_agreement

__all__ = ["evaluate_codec", "main", "mulaw_decode", "mulaw_encode", "perplexity"]


def mulaw_encode(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Mu-law companding and uniform quantisation. x in [-1, 1] -> integer levels in [0, 2**bits)."""
    mu = 2**bits - 1
    y = torch.sign(x) * torch.log1p(mu * x.abs().clamp(max=1.0)) / math.log1p(mu)
    return torch.round((y + 1) / 2 * mu).long()


def mulaw_decode(q: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Levels in [0, 2**bits) -> waveform in [-1, 1] (the inverse of :func:`mulaw_encode` up to quantisation)."""
    mu = 2**bits - 1
    y = 2 * q.float() / mu - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


def perplexity(counts: np.ndarray) -> float:
    """exp(entropy) of a histogram (natural log); 0 for an empty one."""
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def _load(utt: Utterance, root: str | os.PathLike, sample_rate: int) -> torch.Tensor:
    from ns2.data.audio import load_audio, resample, to_mono

    x, sr = load_audio(utt.audio_path(root))
    x = to_mono(x)
    if sr != sample_rate:
        x = resample(x, sr, sample_rate)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


@torch.no_grad()
def evaluate_codec(
    codec: Any,
    utts: Sequence[Utterance],
    root: str | os.PathLike,
    split: str | None = "test",
    n_q: int | None = None,
    max_utterances: int | None = None,
    mel_loss: MultiScaleMelLoss | None = None,
) -> dict[str, Any]:
    """Score ``codec`` and the mu-law baseline on the utterances of ``split`` (None: all of ``utts``).

    ``root`` is the manifest's folder (audio paths resolve against it). Audio at another rate is
    resampled to the codec's. Returns a flat dict of floats (see the module docstring).
    """
    chosen = [u for u in utts if split is None or u.split == split]
    if max_utterances is not None:
        chosen = chosen[: int(max_utterances)]
    if not chosen:
        raise ValueError(f"evaluate_codec: no utterances in split {split!r} (of {len(utts)} given)")
    n_q = int(codec.n_q if n_q is None else n_q)
    sr, k = int(codec.sample_rate), int(codec.codebook_size)
    device = next((p.device for p in codec.parameters()), torch.device("cpu"))
    mel = (mel_loss or MultiScaleMelLoss(sr)).to(device)
    was_training = codec.training
    codec.eval()
    try:
        metrics = ("mel_distance", "si_sdr", "f0_rmse_cents", "f0_corr", "vuv_f1", "mean_log_f0")
        scores: dict[str, list[float]] = {f"{name}/{m}": [] for name in ("codec", "mulaw8") for m in metrics}
        ref_log_f0: list[float] = []
        code_counts = np.zeros((n_q, k), dtype=np.int64)
        mulaw_counts = np.zeros(256, dtype=np.int64)
        seconds = 0.0
        for utt in chosen:
            x = _load(utt, root, sr).to(device)[None, None]  # [1, 1, S]
            seconds += x.shape[-1] / sr
            codes = codec.encode(x, n_q)  # [1, n_q, T]
            x_hat = codec.decode(codec.codes_to_latent(codes), length=x.shape[-1])
            for j in range(n_q):
                code_counts[j] += np.bincount(codes[0, j].cpu().numpy(), minlength=k)[:k]
            levels = mulaw_encode(x)
            x_mu = mulaw_decode(levels)
            mulaw_counts += np.bincount(levels.reshape(-1).cpu().numpy(), minlength=256)[:256]
            f0_ref = compute_f0(x[0, 0].cpu().numpy(), sr, codec.hop_length)
            ref_log_f0.append(mean_log_f0(f0_ref))
            for name, y in (("codec", x_hat), ("mulaw8", x_mu)):
                scores[f"{name}/mel_distance"].append(float(mel.distance(y, x)[0]))
                scores[f"{name}/si_sdr"].append(float(si_sdr(y, x)[0]))
                f0 = compute_f0(y[0, 0].cpu().numpy(), sr, codec.hop_length, num_frames=len(f0_ref))
                for key, value in frame_f0_metrics(f0, f0_ref).items():
                    scores[f"{name}/{key}"].append(value)
                scores[f"{name}/mean_log_f0"].append(mean_log_f0(f0))
    finally:
        codec.train(was_training)

    out: dict[str, Any] = {"split": split, "utterances": len(chosen), "audio_seconds": round(seconds, 3)}
    for name in ("codec", "mulaw8"):
        out[f"{name}/f0_mean_corr"] = sequence_agreement(scores.pop(f"{name}/mean_log_f0"), ref_log_f0)[0]
    out.update({key: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for key, v in scores.items()})
    out["codec/kbps"] = n_q * math.log2(k) * codec.sample_rate / codec.hop_length / 1000
    out["mulaw8/kbps"] = 8 * sr / 1000
    pps = [perplexity(c) for c in code_counts]
    for j, (pp, c) in enumerate(zip(pps, code_counts)):
        out[f"codec/perplexity/q{j:02d}"] = pp
        out[f"codec/usage/q{j:02d}"] = float((c > 0).mean())
    out["codec/perplexity_mean"] = float(np.mean(pps))
    out["mulaw8/perplexity"] = perplexity(mulaw_counts)
    out["mulaw8/usage"] = float((mulaw_counts > 0).mean())
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m ns2.eval.studies.codec CODEC MANIFEST [--out results.json]``: score a codec, write the results."""
    import argparse
    from pathlib import Path

    from ns2.codec.load import load_any_codec
    from ns2.data.manifest import read_manifest
    from ns2.utils.provenance import emit_results, git_commit

    ap = argparse.ArgumentParser(prog="python -m ns2.eval.studies.codec", description=evaluate_codec.__doc__)
    ap.add_argument("codec", help="a CodecLit checkpoint (.ckpt), a DAC-format weight file or a release name")
    ap.add_argument("manifest", help="a prepared manifest (audio paths relative to its folder)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n-q", type=int, default=None)
    ap.add_argument("--max-utterances", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="write the results (plus commit and inputs) to this JSON file")
    args = ap.parse_args(argv)
    codec = load_any_codec(args.codec).to(args.device)
    manifest = Path(args.manifest)
    results = evaluate_codec(codec, read_manifest(manifest), manifest.parent, split=args.split, n_q=args.n_q,
                             max_utterances=args.max_utterances)
    results.update({"commit": git_commit(), "codec": str(args.codec), "manifest": str(manifest)})
    return emit_results(results, args.out)


if __name__ == "__main__":
    main()
