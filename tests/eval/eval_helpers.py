"""Helpers of the evaluation-harness tests: cheap metrics, a scripted system, a plain evaluation config."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ns2.inference.synthesizer import SynthesisError, Synthesizer
from ns2.metrics.registry import Metric, get_metric_class, register_metric


def _register(name: str, cls: type) -> None:
    try:
        get_metric_class(name)
    except KeyError:
        register_metric(name)(cls)


class LoudnessMetric(Metric):
    """RMS level in dB of the synthesis (cheap; stands in for the real metrics)."""

    backbone = "praat"
    keys = ("test_loudness_db",)
    higher_is_better = None

    def _score(self, hyp_wav, sr, **_):
        x = np.asarray(hyp_wav, dtype=np.float64)
        return {"test_loudness_db": float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))}


class ResynthMetric(Metric):
    """Needs the codec-resynthesised prompt: skipped (and counted) when no codec is given."""

    backbone = "praat"
    keys = ("test_resynth",)
    requires = frozenset({"prompt_resynth_wav"})

    def _score(self, hyp_wav, sr, **_):
        return {"test_resynth": 1.0}


_register("test_loudness", LoudnessMetric)
_register("test_resynth", ResynthMetric)


class ScriptedSystem(Synthesizer):
    """Returns the ground truth scaled by ``gain``; raises for ``fail_ids``; ``interrupt_after`` calls
    then KeyboardInterrupt (an interrupted run). ``calls`` lists the ids it was asked for; ``last`` is
    the latest instance (systems are built inside the runner)."""

    last: "ScriptedSystem | None" = None

    stores_outputs = False
    same_timing_as_reference = True

    def __init__(self, root: str, gain: float = 0.5, fail_ids: tuple = (), interrupt_after: int | None = None):
        import json

        self.name = "scripted"
        type(self).last = self
        self.root = Path(root)
        self.gain, self.fail_ids, self.interrupt_after = gain, set(fail_ids), interrupt_after
        self.calls: list[str] = []
        self.gt = {}
        for line in (self.root / "manifest.jsonl").read_text().splitlines():
            d = json.loads(line)
            self.gt[d["id"]] = self.root / d["audio"]

    @classmethod
    def from_checkpoint(cls, path: str, **kwargs: Any) -> "ScriptedSystem":  # the ns2 system's constructor shape
        return cls(root=path, **kwargs)

    def synthesize(self, text, prompt_wav, prompt_sr, *, prompt_text=None, score=None, seed=0, utt_id=None):
        import soundfile as sf

        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls.append(utt_id)
        if utt_id in self.fail_ids:
            raise SynthesisError(f"scripted failure for {utt_id}")
        x, sr = sf.read(str(self.gt[utt_id]), dtype="float32")
        return x * self.gain, sr


def eval_conf(mini, list_path, out, *, systems, system_defs, metrics=("test_loudness",), **over) -> dict:
    """A plain evaluation config (what `ns2 eval` resolves to) over the mini corpus."""
    conf = {
        "seed": 0, "systems": list(systems), "system": system_defs, "metrics": list(metrics), "optional_metrics": [],
        "fallbacks": False, "metric_options": {}, "cache_dir": str(out / "cache"), "checksums": None, "device": "cpu",
        "sample_rate": 16000, "wer": {"normalizers": ["seed", "whisper_basic"], "fail_threshold": 0.5},
        "sim_r": {"codec": None}, "prosody": {"aligner": None, "frame_tolerance": 2}, "out_dir": str(out),
        "stage": "all", "shard": None, "max_items": None, "retry_failed": False, "save_audio": False,
        "report": {"n_resamples": 200, "confidence": 0.95, "seed": 0, "pairs": "all", "plots": False},
        "protocol": {"name": "synthetic-mini", "audio_root": str(mini), "manifest": str(mini / "manifest.jsonl"),
                     "lists": [{"name": "synthetic-mini", "path": str(list_path)}]},
    }
    conf.update(over)
    return conf


class TimedSystem(ScriptedSystem):
    """A scripted system whose output keeps the ground truth's timing and says so itself
    (``reports_alignment``), the way NaturalSpeech 2 reports the durations it synthesised with."""

    same_timing_as_reference = False
    reports_alignment = True

    def __init__(self, root: str, **kw: Any):
        import json

        super().__init__(root, **kw)
        self.timing = {}
        for line in (self.root / "manifest.jsonl").read_text().splitlines():
            d = json.loads(line)
            self.timing[d["id"]] = {"phonemes": d["phonemes"], "durations": d["durations"], "frame_rate": d["frame_rate"]}
        self.last_alignment = None

    def synthesize(self, text, prompt_wav, prompt_sr, *, prompt_text=None, score=None, seed=0, utt_id=None):
        out = super().synthesize(text, prompt_wav, prompt_sr, prompt_text=prompt_text, score=score, seed=seed, utt_id=utt_id)
        self.last_alignment = self.timing[utt_id]
        return out
