"""Speaker similarity (SIM): cosine similarity of speaker embeddings, synthesized speech vs prompt.

Reported per utterance:

- ``<name>_o`` (SIM-o): hypothesis vs the original prompt recording;
- ``<name>_r`` (SIM-r): hypothesis vs the prompt passed through the codec (``prompt_resynth_wav``),
  returned only when that waveform is given.

Backbones:

- ``sim_wavlm_large_ecapa``: WavLM-Large + ECAPA-TDNN (UniSpeech ``wavlm_large_finetune.pth``). This
  is the model the papers call "WavLM-TDNN" (VALL-E, NaturalSpeech 2/3) and Seed-TTS-eval's SIM: use
  it to compare with published numbers.
- ``sim_wavlm_tdnn``: transformers ``WavLMForXVector`` ``microsoft/wavlm-base-plus-sv`` (WavLM Base+
  with an x-vector TDNN head); convenient, but not the papers' model.
- ``sim_resemblyzer``: the GE2E LSTM encoder shipped inside the resemblyzer wheel; works offline; the
  fallback of the two above. Its values are not comparable with the WavLM ones.

All backbones run at 16 kHz; inputs at other rates are resampled. Embeddings of prompts are cached
(keyed by the exact waveform), since every system is scored against the same prompts.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import numpy as np

from ns2.metrics.audio import as_mono, fingerprint, resample
from ns2.metrics.backbones import find_file, get_backbone, load_torch_file
from ns2.metrics.registry import Metric, register_metric

__all__ = ["ResemblyzerSimilarity", "SpeakerSimilarity", "WavLMECAPASimilarity", "WavLMTDNNSimilarity", "cosine"]

SAMPLE_RATE = 16000


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors; NaN when either has zero norm."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0 or not (np.isfinite(na) and np.isfinite(nb)):
        return float("nan")
    return float(np.dot(a, b) / (na * nb))


class SpeakerSimilarity(Metric):
    """Base class: subclasses implement ``_embed(wav16: [S]) -> [D]``."""

    requires = frozenset({"prompt_wav"})
    needs_reference_audio = True
    higher_is_better = True
    cache_size = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def _embed(self, wav16: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def embed(self, wav: Any, sr: int, name: str = "wav") -> np.ndarray:
        """Speaker embedding ``[D]`` of ``wav: [S]`` at ``sr``."""
        x = resample(as_mono(wav, name), sr, SAMPLE_RATE)
        key = fingerprint(x, SAMPLE_RATE)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        e = np.asarray(self._embed(x), dtype=np.float32).ravel()
        self._cache[key] = e
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return e

    def similarity(self, a: Any, b: Any, sr: int) -> float:
        """Cosine similarity of the speaker embeddings of two waveforms at ``sr``."""
        return cosine(self.embed(a, sr, "a"), self.embed(b, sr, "b"))

    def _score(
        self, hyp_wav: Any, sr: int, *, prompt_wav: Any, prompt_resynth_wav: Any = None, **_: Any
    ) -> dict[str, float]:
        h = self.embed(hyp_wav, sr, "hyp_wav")
        out = {f"{self.name}_o": cosine(h, self.embed(prompt_wav, sr, "prompt_wav"))}
        if prompt_resynth_wav is not None:
            out[f"{self.name}_r"] = cosine(h, self.embed(prompt_resynth_wav, sr, "prompt_resynth_wav"))
        return out


@register_metric("sim_resemblyzer")
class ResemblyzerSimilarity(SpeakerSimilarity):
    """Resemblyzer ``VoiceEncoder`` (weights in the wheel), on its own preprocessing (volume
    normalisation, long silences trimmed by webrtcvad); audio the VAD empties is embedded untrimmed."""

    backbone = "resemblyzer"
    keys = ("sim_resemblyzer_o", "sim_resemblyzer_r")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._require_backbone()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad's pkg_resources notice
            from resemblyzer import VoiceEncoder, preprocess_wav

        self._preprocess = preprocess_wav
        # VoiceEncoder reads its bundled pretrained.pt itself with a bare torch.load: force weights_only
        import functools
        from unittest import mock

        import torch

        with mock.patch.object(torch, "load", functools.partial(torch.load, weights_only=True)):
            self.encoder = VoiceEncoder(device=self.device, verbose=False)

    def _embed(self, wav16: np.ndarray) -> np.ndarray:
        x = self._preprocess(wav16)
        if x.size < SAMPLE_RATE // 5:
            x = wav16
        return self.encoder.embed_utterance(x.astype(np.float32))


@register_metric("sim_wavlm_tdnn")
class WavLMTDNNSimilarity(SpeakerSimilarity):
    """transformers ``WavLMForXVector`` (``microsoft/wavlm-base-plus-sv``): x-vector embeddings."""

    backbone = "wavlm_base_plus_sv"
    keys = ("sim_wavlm_tdnn_o", "sim_wavlm_tdnn_r")
    fallback = "sim_resemblyzer"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        folder = self._require_backbone()
        from transformers import Wav2Vec2FeatureExtractor, WavLMForXVector

        from ns2.metrics.hf import load_local

        self.feature_extractor = load_local(Wav2Vec2FeatureExtractor, folder)
        self.model = load_local(WavLMForXVector, folder).float().eval().to(self.device)

    def _embed(self, wav16: np.ndarray) -> np.ndarray:
        import torch

        inputs = self.feature_extractor(wav16, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            e = self.model(**inputs).embeddings[0]
        return torch.nn.functional.normalize(e.float(), dim=-1).cpu().numpy()


@register_metric("sim_wavlm_large_ecapa")
class WavLMECAPASimilarity(SpeakerSimilarity):
    """WavLM-Large + ECAPA-TDNN from ``wavlm_large_finetune.pth`` (see :mod:`ns2.metrics.ecapa_tdnn`).

    An optional ``arch.json`` beside the checkpoint overrides the architecture
    (``{"wavlm_config": {...}, "channels": ..., "normalize_waveform": ...}``); without it the
    checkpoint's published architecture is used.
    """

    backbone = "wavlm_large_ecapa"
    keys = ("sim_wavlm_large_ecapa_o", "sim_wavlm_large_ecapa_r")
    fallback = "sim_resemblyzer"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        folder = self._require_backbone()
        from ns2.metrics.ecapa_tdnn import WavLMECAPA, convert_unispeech_state_dict

        ckpt = find_file(folder, get_backbone(self.backbone).files[0])
        arch_file = find_file(folder, ("arch.json", "speaker_similarity/arch.json"))
        arch = json.loads(arch_file.read_text(encoding="utf-8")) if arch_file else {}
        model = WavLMECAPA(**arch)
        raw = load_torch_file(ckpt)
        state = raw.get("model", raw) if isinstance(raw, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"{ckpt}: expected a dict with a 'model' state dict, got {type(raw).__name__}")
        model.load_state_dict(convert_unispeech_state_dict(state, model), strict=True)
        self.model = model.eval().to(self.device)

    def _embed(self, wav16: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            e = self.model(torch.from_numpy(wav16)[None].to(self.device))[0]
        return e.float().cpu().numpy()
