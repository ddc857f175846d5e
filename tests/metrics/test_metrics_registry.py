"""Registry, build_metrics and the torchmetrics wrappers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ns2.metrics import Metric, MetricInputError, available_metrics, build_metrics, get_metric_class, register_metric
from ns2.metrics.registry import INPUTS
from ns2.metrics.torchmetrics_compat import MetricAdapter, UtteranceMean

SR = 16000


def test_every_metric_declares_its_contract():
    names = available_metrics()
    assert {"sim_wavlm_tdnn", "sim_wavlm_large_ecapa", "sim_resemblyzer", "wer_hubert_large", "wer_whisper_large_v3",
            "wer_pocketsphinx", "prosody", "dnsmos", "utmos"} <= set(names)
    for name, backbone in names.items():
        cls = get_metric_class(name)
        assert cls.name == name and cls.backbone == backbone and cls.keys
        assert cls.requires <= set(INPUTS)
        assert cls.needs_text == ("text" in cls.requires)
        assert cls.needs_reference_audio == bool(cls.requires & {"prompt_wav", "ref_wav"})
        if cls.fallback:
            assert get_metric_class(cls.fallback).fallback is None


def test_unknown_metric_and_duplicate_registration():
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        build_metrics(["nope"])
    with pytest.raises(ValueError, match="already registered"):

        @register_metric("prosody")
        class Other(Metric):
            pass


class _Constant(Metric):
    """A test metric: returns a value per utterance, NaN for silent input."""

    name = "_test_constant"
    backbone = "praat"
    keys = ("_test_constant", "_test_constant_extra")
    requires = frozenset({"text"})
    needs_text = True

    def _score(self, hyp_wav, sr, *, text, **_):
        v = float(np.abs(hyp_wav).max())
        out = {"_test_constant": v if v > 0 else float("nan")}
        if text == "extra":
            out["_test_constant_extra"] = 1.0
        return out


register_metric("_test_constant")(_Constant)


def test_build_metrics_dedupes_and_passes_options(tmp_path):
    ms = build_metrics(["_test_constant", "prosody", "_test_constant"], tmp_path, options={"prosody": {"f0_max": 900.0}})
    assert [m.name for m in ms] == ["_test_constant", "prosody"]
    assert ms[1].f0_max == 900.0
    with pytest.raises(MetricInputError, match="expected input\\(s\\) text"):
        ms[0].score(np.ones(4), SR)


def test_utterance_mean_skips_and_counts_nan():
    m = UtteranceMean()
    m.update(1.0)
    m.update([2.0, float("nan")])
    m.update(torch.tensor([3.0, float("inf")]))
    assert m.compute().item() == pytest.approx(2.0)
    assert m.n_nan.item() == 2 and m.count.item() == 3
    m.reset()
    assert math.isnan(m.compute().item())


def test_metric_adapter_means_per_key():
    adapter = MetricAdapter(build_metrics(["_test_constant"])[0])
    adapter.update(np.full(10, 0.5), SR, text="a")
    adapter.update(np.zeros(10), SR, text="extra")
    adapter.update(np.full(10, 0.25), SR, text="extra")
    out = adapter.compute()
    assert out["_test_constant"].item() == pytest.approx(0.375)
    assert out["_test_constant_n_nan"].item() == 1
    assert out["_test_constant_extra"].item() == 1.0 and out["_test_constant_extra_n_nan"].item() == 0
