"""Speech recognisers behind the WER metrics: ``transcribe(wav16: [S] float32 at 16 kHz) -> str``.

- :class:`CTCRecognizer`: a transformers CTC model (HuBERT-Large ``HubertForCTC``; any
  ``AutoModelForCTC`` folder works) with its ``Wav2Vec2Processor``; greedy (argmax) CTC decoding, as in
  the HuBERT-based TTS evaluations.
- :class:`WhisperRecognizer`: ``WhisperForConditionalGeneration`` + ``WhisperProcessor``, greedy
  decoding with the language and task tokens forced (Seed-TTS-eval's call); audio over 30 s uses
  transformers' long-form (timestamp) generation.
- :class:`PocketsphinxRecognizer`: PocketSphinx 5 with the US-English model in its wheel.

Models load from a local folder only (``from_pretrained(folder, local_files_only=True)``) and run in
float32 whatever the stored precision (whisper-large-v3's ``model.safetensors`` is float16).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ns2.metrics.hf import load_local

__all__ = ["CTCRecognizer", "PocketsphinxRecognizer", "WhisperRecognizer"]

SAMPLE_RATE = 16000


class CTCRecognizer:
    """Greedy CTC transcription with a transformers CTC model and its processor."""

    def __init__(self, folder: str | os.PathLike, device: str = "cpu") -> None:
        from transformers import AutoModelForCTC, Wav2Vec2Processor

        self.processor = load_local(Wav2Vec2Processor, folder)
        self.model = load_local(AutoModelForCTC, folder).float().eval().to(device)
        self.device = device

    def transcribe(self, wav16: np.ndarray) -> str:
        import torch

        inputs = self.processor(wav16, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(inputs.input_values.to(self.device)).logits  # [1, T, V]
        ids = logits.argmax(dim=-1).cpu()
        return self.processor.batch_decode(ids)[0]


class WhisperRecognizer:
    """Whisper transcription in a fixed language (default English)."""

    max_short_s = 30.0

    def __init__(self, folder: str | os.PathLike, device: str = "cpu", language: str = "en") -> None:
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.processor = load_local(WhisperProcessor, folder)
        self.model = load_local(WhisperForConditionalGeneration, folder).float().eval().to(device)
        self.device = device
        self.language = language

    def transcribe(self, wav16: np.ndarray, **generate_kwargs: Any) -> str:
        import torch

        long_form = wav16.size > self.max_short_s * SAMPLE_RATE
        if long_form:
            inputs = self.processor(
                wav16, sampling_rate=SAMPLE_RATE, return_tensors="pt", truncation=False,
                padding="longest", return_attention_mask=True,
            )
            generate_kwargs.setdefault("return_timestamps", True)
        else:
            inputs = self.processor(wav16, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        kwargs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_features", "attention_mask")}
        kwargs["input_features"] = kwargs["input_features"].to(self.model.dtype)
        with torch.inference_mode():
            ids = self.model.generate(**kwargs, language=self.language, task="transcribe", **generate_kwargs)
        if not torch.is_tensor(ids):  # some generate() modes return a ModelOutput
            ids = ids["sequences"]
        return self.processor.batch_decode(ids.cpu(), skip_special_tokens=True)[0].strip()


class PocketsphinxRecognizer:
    """PocketSphinx 5 decoder with its bundled US-English acoustic model, LM and dictionary;
    ``lm``: an ARPA (or binary) language model to decode with instead of the bundled one."""

    def __init__(self, lm: str | os.PathLike | None = None) -> None:
        from pocketsphinx import Decoder

        kwargs: dict[str, Any] = {}
        if lm is not None:
            if not os.path.isfile(lm):
                raise FileNotFoundError(f"PocketSphinx language model {lm} not found (expected an ARPA file)")
            kwargs["lm"] = str(lm)
        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **kwargs)

    def transcribe(self, wav16: np.ndarray) -> str:
        return self.transcribe_scored(wav16)[0]

    def transcribe_scored(self, wav16: np.ndarray) -> tuple[str, float]:
        """-> (text, confidence): the mean posterior probability of the recognised words (0 when
        nothing is recognised), from the decoder's word lattice."""
        pcm = (np.clip(wav16, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None:
            return "", 0.0
        words = [seg.prob for seg in d.seg() if not (seg.word.startswith("<") or seg.word.startswith("["))]
        return hyp.hypstr, float(np.clip(np.mean(words), 0.0, 1.0)) if words else 0.0
