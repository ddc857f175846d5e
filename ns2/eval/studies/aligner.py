"""Alignment accuracy against ground-truth durations: phoneme-boundary errors in milliseconds.

A phoneme boundary is the end of a token in frames, ``cumsum(durations)``. For one utterance the
aligner's durations and the reference durations index the same phoneme sequence, so boundary ``i``
of one is compared with boundary ``i`` of the other. Tokens that have 0 frames on both sides (word
boundaries ``|``, punctuation, stress marks: symbols without acoustics of their own) are left out,
since their boundary repeats their neighbour's; the last kept token's end (the utterance's end,
equal on both sides) is left out too. Errors are ``|pred - ref|`` in frames times ``1000 /
frame_rate`` ms (12.5 ms at 80 frames/s).

Summaries (:func:`summarize_errors`) pool every boundary of every utterance: ``median_boundary_error_ms``,
``mean_boundary_error_ms``, ``within_20ms`` and ``within_50ms`` (fractions of boundaries), ``n_boundaries``.
:func:`evaluate_aligner` scores an aligner on one split of a prepared manifest and adds the same
numbers for the ``uniform/`` baseline (each utterance's frames split evenly across its aligned
tokens), per-kind blocks (``speech/``, ``singing/``) and ``n_utterances``.

Command line::

    python -m ns2.eval.studies.aligner CKPT MANIFEST --split test --out results.json
"""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from ns2.data.manifest import Utterance

__all__ = ["boundaries", "boundary_errors_ms", "uniform_durations", "summarize_errors", "evaluate_aligner",
           "checkpoint_provenance", "main"]


def _kept(pred: np.ndarray, ref: np.ndarray, keep: Sequence[bool] | np.ndarray | None) -> np.ndarray:
    if keep is None:
        return (pred > 0) | (ref > 0)
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != pred.shape:
        raise ValueError(f"keep has {keep.shape[0] if keep.ndim else 0} entries for {pred.shape[0]} tokens")
    return keep


def boundaries(durations: Sequence[int] | np.ndarray, keep: Sequence[bool] | np.ndarray) -> np.ndarray:
    """durations: [L] frames, keep: [L] bool -> [n - 1] end frames of the kept tokens but the last."""
    d = np.asarray(durations, dtype=np.int64)
    ends = np.cumsum(d)[np.asarray(keep, dtype=bool)]
    return ends[:-1]


def boundary_errors_ms(pred: Sequence[int] | np.ndarray, ref: Sequence[int] | np.ndarray, frame_rate: float,
                       keep: Sequence[bool] | np.ndarray | None = None) -> np.ndarray:
    """Absolute boundary errors in ms of one utterance.

    pred, ref: [L] frames per token of the same phoneme sequence, each summing to the utterance's
    frame count; keep: [L] bool, the tokens whose boundaries count (default: tokens with frames on
    either side). Returns [n_kept - 1] float errors.
    """
    p, r = np.asarray(pred, dtype=np.int64), np.asarray(ref, dtype=np.int64)
    if p.ndim != 1 or p.shape != r.shape:
        raise ValueError(f"pred and ref must be 1-D durations of the same phonemes, got shapes {p.shape} and {r.shape}")
    if p.sum() != r.sum():
        raise ValueError(f"pred sums to {int(p.sum())} frames but ref to {int(r.sum())}: they must cover the same frames")
    if frame_rate <= 0:
        raise ValueError(f"frame_rate must be > 0, got {frame_rate}")
    k = _kept(p, r, keep)
    return np.abs(boundaries(p, k) - boundaries(r, k)).astype(np.float64) * (1000.0 / frame_rate)


def uniform_durations(num_frames: int, aligned: Sequence[bool] | np.ndarray) -> list[int]:
    """``num_frames`` split as evenly as possible across the ``aligned`` tokens (0 frames for the others).

    aligned: [L] bool. Boundaries are ``round(k * num_frames / n)`` for the n aligned tokens.
    """
    aligned = np.asarray(aligned, dtype=bool)
    n = int(aligned.sum())
    if n == 0:
        raise ValueError("uniform_durations: no aligned tokens to give frames to")
    edges = np.floor(np.arange(n + 1) * num_frames / n + 0.5).astype(np.int64)
    out = np.zeros(len(aligned), dtype=np.int64)
    out[aligned] = np.diff(edges)
    return [int(x) for x in out]


def summarize_errors(errors: Sequence[float] | np.ndarray, prefix: str = "") -> dict[str, float | int | None]:
    """Pooled boundary errors (ms) -> ``{prefix}median_boundary_error_ms``, ``mean_...``, ``within_20ms``,
    ``within_50ms`` (fractions) and ``n_boundaries`` (``None`` values when there are no errors)."""
    e = np.asarray(errors, dtype=np.float64)
    n = int(e.size)
    stats: dict[str, float | int | None] = {
        "median_boundary_error_ms": float(np.median(e)) if n else None,
        "mean_boundary_error_ms": float(e.mean()) if n else None,
        "within_20ms": float((e <= 20.0).mean()) if n else None,
        "within_50ms": float((e <= 50.0).mean()) if n else None,
        "n_boundaries": n,
    }
    return {f"{prefix}{k}": v for k, v in stats.items()}


def evaluate_aligner(aligner: Any, utts: Sequence[Utterance], root: str | os.PathLike, *, split: str | None = "test",
                     max_utterances: int | None = None, device: str = "cpu", batch_size: int = 16) -> dict[str, Any]:
    """Boundary errors of ``aligner`` (an :class:`~ns2.data.aligner.infer.Aligner`, a checkpoint path or
    anything :func:`~ns2.data.aligner.infer.load_aligner` takes) on the utterances of ``split`` (all when
    ``None``) that carry reference ``durations`` on the aligner's frame grid.

    Returns a flat dict: the summary of :func:`summarize_errors`, ``uniform/...`` (the even-split
    baseline), ``speech/...`` and ``singing/...`` when both kinds are present, ``n_utterances``,
    ``n_failed`` (utterances the aligner could not align), ``mean_align_confidence`` and ``frame_rate``.
    """
    from ns2.data.aligner.infer import load_aligner
    from ns2.data.aligner.stage import align_manifest

    al = load_aligner(aligner, device=device)
    rate = al.mel.frame_rate
    chosen = [u for u in utts if split is None or u.split == split]
    if max_utterances is not None:
        chosen = chosen[: int(max_utterances)]
    if not chosen:
        raise ValueError(f"no utterances in split {split!r} to evaluate")
    for u in chosen:
        if u.durations is None or u.frame_rate is None or not math.isclose(u.frame_rate, rate):
            raise ValueError(f"utterance {u.id!r} has no reference durations at {rate:g} frames/s "
                             f"(frame_rate {u.frame_rate}); prepare the corpus with durations_source=corpus or textgrid")
    quarantine: list[dict] = []
    aligned = align_manifest(al, chosen, root, device=device, batch_size=batch_size, quarantine=quarantine)
    by_id = {u.id: u for u in chosen}
    errors: dict[str, list[np.ndarray]] = {"": [], "uniform/": []}
    per_kind: dict[str, list[np.ndarray]] = {}
    skip = set(al.skip_ids)
    for out in aligned:
        ref = by_id[out.id]
        if sum(ref.durations) != out.num_frames:
            quarantine.append({"id": ref.id, "reason": f"reference durations sum to {sum(ref.durations)}, "
                                                       f"the audio has {out.num_frames} frames"})
            continue
        e = boundary_errors_ms(out.durations, ref.durations, rate)
        errors[""].append(e)
        per_kind.setdefault(f"{ref.kind}/", []).append(e)
        is_aligned = [i not in skip for i in al.encode(ref.phonemes)]
        base = uniform_durations(out.num_frames, is_aligned)
        errors["uniform/"].append(boundary_errors_ms(base, ref.durations, rate))
    if not errors[""]:
        raise ValueError(f"none of the {len(chosen)} utterances could be aligned; first reason: "
                         f"{quarantine[0]['reason'] if quarantine else '?'}")
    results: dict[str, Any] = {}
    for prefix, es in errors.items():
        results.update(summarize_errors(np.concatenate(es), prefix))
    if len(per_kind) > 1:
        for prefix, es in sorted(per_kind.items()):
            results.update(summarize_errors(np.concatenate(es), prefix))
    scored = [u for u in aligned if u.id not in {q["id"] for q in quarantine}]
    results["n_utterances"] = len(errors[""])
    results["n_failed"] = len(quarantine)
    results["mean_align_confidence"] = float(np.mean([u.extra.get("align_confidence", float("nan")) for u in scored]))
    results["frame_rate"] = float(rate)
    return results


def checkpoint_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """What a checkpoint says about its training: ``train_steps`` (a Lightning checkpoint's global step)
    and ``config`` (the Hydra overrides of the run, read from ``<run>/.hydra/overrides.yaml`` when the
    checkpoint sits in ``<run>/checkpoints/``). Missing pieces are left out."""
    from pathlib import Path

    import torch

    out: dict[str, Any] = {}
    path = Path(path)
    if not path.is_file():
        return out
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("global_step"), int):
        out["train_steps"] = int(ckpt["global_step"])
    overrides = path.resolve().parent.parent / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        import yaml

        items = yaml.safe_load(overrides.read_text()) or []
        out["config"] = " ".join(str(x) for x in items)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m ns2.eval.studies.aligner CKPT MANIFEST [--split test] [--out results.json]``."""
    import argparse
    from pathlib import Path

    from ns2.data.manifest import read_manifest
    from ns2.utils.provenance import emit_results, git_commit

    ap = argparse.ArgumentParser(prog="python -m ns2.eval.studies.aligner",
                                 description="Phoneme-boundary errors of a trained aligner against a manifest's durations.")
    ap.add_argument("checkpoint", help="an aligner checkpoint (AlignerLit .ckpt or save_aligner file)")
    ap.add_argument("manifest", help="a prepared manifest with reference durations (audio paths relative to its folder)")
    ap.add_argument("--split", default="test", help="split to score ('all' for every utterance)")
    ap.add_argument("--max-utterances", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="write the results (plus commit and inputs) to this JSON file")
    args = ap.parse_args(argv)
    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise SystemExit(f"manifest not found: {manifest}")
    split = None if args.split == "all" else args.split
    results = evaluate_aligner(args.checkpoint, read_manifest(manifest), manifest.parent, split=split,
                               max_utterances=args.max_utterances, device=args.device)
    results.update({"commit": git_commit(), "checkpoint": str(args.checkpoint), "manifest": str(manifest),
                    "split": args.split, **checkpoint_provenance(args.checkpoint)})
    return emit_results(results, args.out)


if __name__ == "__main__":
    main()
