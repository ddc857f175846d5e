"""Apply the built metrics to one synthesized utterance.

:class:`Scorer` calls every :class:`~ns2.metrics.registry.Metric` on the synthesis and the item's
inputs (all at one sample rate) and sorts the outcome into ``scores`` (``{metric: {key: value}}``),
``metric_errors`` (the metric raised: counted as a failure of that metric on that item), ``skipped``
(an input the metric needs is unavailable, with the reason) and ``transcripts``.

WER metrics are handled here rather than through their ``score``: the synthesis is transcribed once
and counted under every configured text normaliser, reported as ``<metric>/<normaliser>`` (per-utterance
WER) with ``<metric>/<normaliser>/errors`` and ``/ref_words`` for the corpus WER.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ns2.metrics.registry import Metric, MetricInputError
from ns2.metrics.wer import NORMALIZERS, WERMetric, word_errors

__all__ = ["ItemScores", "Scorer", "expected_keys", "key_direction"]

log = logging.getLogger(__name__)


@dataclass
class ItemScores:
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    metric_errors: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    transcripts: dict[str, str] = field(default_factory=dict)


def expected_keys(metric: Metric, normalizers: Sequence[str], with_resynth: bool, with_reference: bool) -> list[str]:
    """The per-utterance keys a metric reports in this evaluation (report rows exist for each)."""
    if isinstance(metric, WERMetric):
        return [f"{metric.name}/{n}" for n in normalizers]
    keys = list(metric.keys)
    if metric.name.startswith("sim_") and not with_resynth:
        keys = [k for k in keys if not k.endswith("_r")]
    if metric.name == "prosody" and not with_reference:
        from ns2.metrics.prosody import PROMPT_KEYS

        keys = list(PROMPT_KEYS)
    return keys


def key_direction(key: str, metric: Metric | None = None) -> bool | None:
    """True when higher is better for a reported key, False when lower is, None when neither."""
    last = key.split("/")[-1]
    if key.startswith("wer_") or last.endswith(("_diff", "_rmse", "rmse_cents", "_error_ms")) or last == "frac_gt_50":
        return False
    if last.endswith(("_corr", "vuv_f1", "_rpa", "_rca", "hit_rate")) or key.startswith(("sim_", "dnsmos", "utmos")):
        return True
    return None if metric is None else metric.higher_is_better


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


class Scorer:
    """Score syntheses with ``metrics``; every waveform passed to :meth:`score` is at ``sample_rate``."""

    def __init__(self, metrics: Sequence[Metric], *, sample_rate: int = 16000,
                 normalizers: Sequence[str] = ("seed", "whisper_basic")) -> None:
        bad = [n for n in normalizers if n not in NORMALIZERS]
        if bad or not normalizers:
            raise ValueError(f"wer normalizers: expected a non-empty subset of {sorted(NORMALIZERS)}, got {list(normalizers)}")
        self.metrics = list(metrics)
        self.sample_rate = int(sample_rate)
        self.normalizers = tuple(normalizers)

    def score(self, hyp, *, text: str, inputs: Mapping[str, Any], unavailable: Mapping[str, str] | None = None) -> ItemScores:
        """``hyp: [S]``; ``inputs`` holds the :data:`~ns2.metrics.registry.INPUTS` that exist (others None);
        ``unavailable[input]`` says why an input is missing (shown in ``skipped``)."""
        out = ItemScores()
        unavailable = dict(unavailable or {})
        for m in self.metrics:
            try:
                if isinstance(m, WERMetric):
                    hyp_text = m.transcribe(hyp, self.sample_rate)
                    out.transcripts[m.name] = hyp_text
                    vals: dict[str, float] = {}
                    for n in self.normalizers:
                        we = word_errors(text, hyp_text, n)
                        vals[f"{m.name}/{n}"] = we.wer
                        vals[f"{m.name}/{n}/errors"] = float(we.errors)
                        vals[f"{m.name}/{n}/ref_words"] = float(we.ref_words)
                    out.scores[m.name] = vals
                else:
                    given = {k: v for k, v in inputs.items() if v is not None and k != "text"}
                    out.scores[m.name] = {k: float(v) for k, v in m.score(hyp, self.sample_rate, text=text, **given).items()}
            except MetricInputError as e:
                missing = sorted(k for k in m.requires if inputs.get(k) is None)
                why = "; ".join(f"{k}: {unavailable[k]}" for k in missing if k in unavailable)
                out.skipped[m.name] = f"{e}" + (f" ({why})" if why else "")
            except Exception as e:  # noqa: BLE001  (counted per metric and reported, never silent)
                log.warning("metric %s failed: %s", m.name, _one_line(e))
                out.metric_errors[m.name] = _one_line(e)
        return out
