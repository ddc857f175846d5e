"""The ``f0`` stage: Praat F0 on the frame grid per utterance, and per-speaker log-F0 statistics."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

import numpy as np

from ns2.audio.f0 import compute_f0, log_f0_moments, moments_to_stats
from ns2.audio.frames import num_frames
from ns2.data.audio import BadAudio, load_audio, to_mono
from ns2.data.manifest import Utterance
from ns2.data.stages.base import Quarantine, StageContext, on_grid, require_model_rate, safe_name
from ns2.utils.io import atomic_open, write_json

__all__ = ["F0Stage", "f0_stats"]


@dataclass
class F0Stage:
    """F0 (Hz, 0 = unvoiced) per frame into ``<prepared>/f0/<id>.npy``; per-speaker log-F0 stats into
    ``<prepared>/f0_stats.json`` (``{"speakers": {spk: {"mean", "std", "voiced_frames"}}, "all": {...}}``)."""

    name: ClassVar[str] = "f0"
    version: ClassVar[int] = 1  # bump when the output for the same input changes
    pitch_floor: float = 65.0
    pitch_ceiling: float = 800.0
    singing_pitch_ceiling: float = 1100.0
    voicing_threshold: float = 0.45

    def process(self, utt: Utterance, ctx: StageContext) -> tuple[Utterance, dict]:
        require_model_rate(utt, ctx)
        try:
            x, sr = load_audio(utt.audio_path(ctx.prepared))
        except BadAudio as e:
            raise Quarantine(e.reason) from None
        frames = num_frames(x.shape[1], ctx.hop_length)
        ceiling = self.singing_pitch_ceiling if utt.kind == "singing" else self.pitch_ceiling
        f0 = compute_f0(to_mono(x), sr, ctx.hop_length, frames, self.pitch_floor, ceiling, self.voicing_threshold)
        out = ctx.prepared_dir / "f0" / f"{safe_name(utt.id)}.npy"
        with atomic_open(out, "wb") as f:
            np.save(f, f0.astype(np.float32))
        utt = on_grid(utt, ctx, frames)
        return utt.replace(features={**utt.features, "f0": ctx.relative(out)}), {"speaker": utt.speaker, **log_f0_moments(f0)}

    def finalize(self, records: list[dict], ctx: StageContext) -> None:
        kept = (r.get("info") or {} for r in records if r["status"] == "kept")
        write_json(ctx.prepared_dir / "f0_stats.json", f0_stats(kept))


def f0_stats(infos: Iterable[dict]) -> dict[str, Any]:
    """Per-speaker and overall mean/std of log-F0 over voiced frames, from per-item moments."""
    per: dict[str, dict[str, float]] = {}
    total = {"n": 0, "sum": 0.0, "sumsq": 0.0}
    for info in infos:
        if "n" not in info:
            continue
        acc = per.setdefault(info["speaker"], {"n": 0, "sum": 0.0, "sumsq": 0.0})
        for k in total:
            acc[k] += info[k]
            total[k] += info[k]
    return {"speakers": {s: moments_to_stats(m) for s, m in sorted(per.items())}, "all": moments_to_stats(total)}
