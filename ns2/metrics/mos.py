"""MOS predictors (proxies of listening tests; not substitutes for them).

- ``dnsmos``: Microsoft DNSMOS P.835 (``dnsmos_sig`` speech quality, ``dnsmos_bak`` background,
  ``dnsmos_ovrl`` overall) and P.808 (``dnsmos_p808``), from the ONNX models in the speechmos wheel
  (offline). Input: 16 kHz float in [-1, 1] (resampled and clipped here); clips shorter than 9.01 s are
  tiled to that length by speechmos, longer ones scored in 9.01 s windows hopped by 1 s and averaged.
  The non-personalised P.835 model is used.
- ``utmos``: UTMOS22 strong learner (:mod:`ns2.metrics.utmos`) from ``utmos22_strong_step7459_v1.pt``
  in the backbone cache; falls back to ``dnsmos`` when allowed.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ns2.metrics.audio import prepare
from ns2.metrics.backbones import find_file, get_backbone, load_state_strict, load_torch_file
from ns2.metrics.registry import Metric, register_metric

__all__ = ["DNSMOSMetric", "UTMOSMetric"]

SAMPLE_RATE = 16000


@register_metric("dnsmos")
class DNSMOSMetric(Metric):
    """DNSMOS P.835 + P.808 (speechmos ONNX models)."""

    backbone = "dnsmos_p835"
    keys = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
    higher_is_better = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._require_backbone()
        import speechmos.dnsmos as dm

        root = os.path.dirname(os.path.abspath(dm.__file__))
        models = os.path.join(root, "dnsmos_models")
        self.model = dm.DNSMOS(os.path.join(models, "sig_bak_ovr.onnx"), os.path.join(models, "model_v8.onnx"))

    def _score(self, hyp_wav: Any, sr: int, **_: Any) -> dict[str, float]:
        x = np.clip(prepare(hyp_wav, sr, SAMPLE_RATE, "hyp_wav"), -1.0, 1.0).astype(np.float32)
        r = self.model(x, SAMPLE_RATE, False)
        return {
            "dnsmos_ovrl": float(r["ovrl_mos"]),
            "dnsmos_sig": float(r["sig_mos"]),
            "dnsmos_bak": float(r["bak_mos"]),
            "dnsmos_p808": float(r["p808_mos"]),
        }


@register_metric("utmos")
class UTMOSMetric(Metric):
    """UTMOS22 strong learner; an optional ``arch.json`` beside the weights overrides its dimensions."""

    backbone = "utmos22_strong"
    keys = ("utmos",)
    higher_is_better = True
    fallback = "dnsmos"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        folder = self._require_backbone()
        import json

        from ns2.metrics.utmos import UTMOS22Strong

        weights = find_file(folder, get_backbone(self.backbone).files[0])
        arch_file = find_file(folder, ("arch.json", "mos/arch.json"))
        model = UTMOS22Strong(**(json.loads(arch_file.read_text(encoding="utf-8")) if arch_file else {}))
        state = load_torch_file(weights)
        if not isinstance(state, dict):
            raise ValueError(f"{weights}: expected a state dict, got {type(state).__name__}")
        load_state_strict(model, state, weights, "UTMOS22 strong (SpeechMOS v1)")
        self.model = model.eval().to(self.device)

    def _score(self, hyp_wav: Any, sr: int, **_: Any) -> dict[str, float]:
        import torch

        x = torch.from_numpy(prepare(hyp_wav, sr, SAMPLE_RATE, "hyp_wav"))[None].to(self.device)
        with torch.inference_mode():
            return {"utmos": float(self.model(x)[0])}
