"""The Synthesizer interface: text + speech prompt [+ score] -> waveform.

Every system the evaluation harness scores implements it (NaturalSpeech 2 from a checkpoint, the
baselines, ground truth, a folder of another system's outputs), so the harness treats them alike::

    wav, sr = synth.synthesize("Hello there.", prompt_wav, 16000, seed=0)

``prompt_wav`` is a float array ``[S]`` (mono) or ``[C, S]`` / ``[S, C]`` at ``prompt_sr``; a system
converts it to what it needs (:func:`prepare_prompt`). ``utt_id`` names the test item, for systems that
look outputs up rather than compute them (a folder, ground truth); computing systems ignore it.
"""
from __future__ import annotations

import abc
from typing import Any

import numpy as np

__all__ = ["Synthesizer", "SynthesisError", "TextFrontend", "prepare_prompt"]


class SynthesisError(ValueError):
    """A request a system cannot serve (bad prompt, empty text, missing output); one clear line."""


class Synthesizer(abc.ABC):
    """Base class of every system: ``synthesize(text, prompt_wav, prompt_sr, ...) -> (wav [S], sr)``."""

    #: a short stable name used in reports (``ns2``, ``groundtruth``, ``folder:<name>``)
    name: str = "synthesizer"

    @abc.abstractmethod
    def synthesize(
        self,
        text: str,
        prompt_wav: np.ndarray,
        prompt_sr: int,
        *,
        prompt_text: str | None = None,
        score: Any = None,
        seed: int = 0,
        utt_id: str | None = None,
    ) -> tuple[np.ndarray, int]:
        """Synthesize ``text`` in the prompt's voice; return a mono float32 waveform ``[S]`` and its rate."""

    def describe(self) -> dict[str, Any]:
        """Provenance for reports (checkpoint, commit, sampler...); override to add more."""
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}"}


def prepare_prompt(wav: np.ndarray, sr: int, target_sr: int, *, min_seconds: float = 1.0, name: str = "prompt") -> np.ndarray:
    """A prompt of any common layout and rate -> mono float32 ``[S]`` at ``target_sr``.

    Accepts ``[S]``, ``[C, S]`` or ``[S, C]`` (channels averaged; the shorter axis is taken as the
    channel axis), integer PCM (scaled to [-1, 1]) or float; resamples with soxr. Raises
    :class:`SynthesisError` when the prompt is empty, not finite, silent or shorter than ``min_seconds``.
    """
    import soxr

    x = np.asarray(wav)
    if x.size == 0:
        raise SynthesisError(f"{name}: empty audio; expected at least {min_seconds:g} s of speech")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0 if x.shape[0] <= x.shape[1] else 1)
    elif x.ndim != 1:
        raise SynthesisError(f"{name}: audio of shape {tuple(x.shape)}; expected [S], [C, S] or [S, C]")
    if sr <= 0:
        raise SynthesisError(f"{name}: sample rate {sr}; expected a positive rate in Hz")
    seconds = len(x) / sr
    if seconds < min_seconds:
        raise SynthesisError(f"{name}: {seconds:.2f} s of audio; expected at least {min_seconds:g} s")
    if not np.all(np.isfinite(x)):
        raise SynthesisError(f"{name}: audio contains NaN or infinite samples")
    if float(np.abs(x).max()) < 1e-4:
        raise SynthesisError(f"{name}: audio is silent (peak < 1e-4); expected speech")
    if sr != target_sr:
        x = soxr.resample(x, sr, target_sr).astype(np.float32)
    return x


class TextFrontend:
    """Text -> phoneme ids of a symbol table with the project's tokenizer (built on first use); a text
    that cannot be read raises :class:`SynthesisError` naming it."""

    def __init__(self, language: str, symbols: Any) -> None:
        self.language, self.symbols = str(language), symbols
        self._tokenizer = None

    def ids(self, text: str, what: str = "text") -> list[int]:
        from ns2.text import Tokenizer
        from ns2.text.errors import TextFrontendError, snippet

        if not isinstance(text, str) or not text.strip():
            raise SynthesisError(f"{what} {text!r}: empty; expected words to speak")
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self.language, symbols=self.symbols)
        try:
            ids = self.symbols.encode(list(self._tokenizer(text).phonemes))
        except TextFrontendError as e:
            raise SynthesisError(f"{what} {snippet(text)}: {str(e).split('; pass unknown=')[0]}") from None
        if not ids:
            raise SynthesisError(f"{what} {snippet(text)}: no phonemes; expected at least one")
        return ids
