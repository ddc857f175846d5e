"""Evaluation metrics: speaker similarity, WER, prosody similarity, MOS proxies, and their statistics.

>>> from ns2.metrics import available_metrics
>>> sorted(available_metrics())[:3]
['dnsmos', 'prosody', 'sim_resemblyzer']

Metric (reported name) -> backbone:

========================  =========================  ==============================================
sim_wavlm_large_ecapa     wavlm_large_ecapa          UniSpeech WavLM-Large + ECAPA-TDNN (papers' SIM)
sim_wavlm_tdnn            wavlm_base_plus_sv         transformers WavLMForXVector
sim_resemblyzer           resemblyzer                offline fallback of both SIM metrics
wer_hubert_large          hubert_large_ls960_ft      HuBERT-Large CTC (NS2 / VALL-E WER)
wer_whisper_large_v3      whisper_large_v3           Whisper large-v3 (Seed-TTS-eval WER)
wer_pocketsphinx          pocketsphinx_en_us         offline fallback of both WER metrics
wer_pocketsphinx_domain   pocketsphinx_en_us         the same with a domain LM (ns2.metrics.lm)
prosody                   praat                      NS2 phoneme-level pitch / duration statistics
singing                   praat                      score following: raw pitch/chroma accuracy, ...
dnsmos                    dnsmos_p835                DNSMOS P.835 + P.808 (speechmos ONNX)
utmos                     utmos22_strong             UTMOS22 strong learner (fallback: dnsmos)
========================  =========================  ==============================================

``build_metrics(names, cache_dir, allow_fallbacks=False)`` loads them; each ``score(hyp_wav, sr, ...)``
returns per-utterance floats; :mod:`ns2.metrics.stats` and :func:`aggregate_wer` summarise them.
Heavy dependencies (transformers, resemblyzer, onnxruntime, pocketsphinx) are imported on first use.
"""
# The built-in metric modules register their metrics on import (mos, prosody, sim, singing, wer).
from ns2.metrics import mos, prosody, sim, singing, wer  # noqa: F401
from ns2.metrics.backbones import BackboneChecksumError, MissingBackboneError
from ns2.metrics.prosody import Alignment
from ns2.metrics.registry import (
    Metric,
    MetricInputError,
    available_metrics,
    build_metrics,
    get_metric_class,
    register_metric,
)
from ns2.metrics.stats import bootstrap_ci, bootstrap_ratio_ci, paired_bootstrap_ci, summarize
from ns2.metrics.wer import aggregate_wer, seed_normalize, whisper_basic_normalize, word_errors

__all__ = [
    "Alignment",
    "BackboneChecksumError",
    "Metric",
    "MetricInputError",
    "MissingBackboneError",
    "aggregate_wer",
    "available_metrics",
    "bootstrap_ci",
    "bootstrap_ratio_ci",
    "build_metrics",
    "get_metric_class",
    "paired_bootstrap_ci",
    "register_metric",
    "seed_normalize",
    "summarize",
    "whisper_basic_normalize",
    "word_errors",
]
