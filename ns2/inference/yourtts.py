"""YourTTS synthesis: text + a speech prompt -> speaker embedding -> VITS prior, flow, HiFi-GAN -> waveform.

The checkpoint contract: :class:`~ns2.lit.yourtts.YourTTSLit` writes one record under
``checkpoint["yourtts"]`` (plain containers and tensors, ``torch.load(weights_only=True)``)::

    {"kind": "yourtts", "version": 1, "net": {...YourTTS kwargs...}, "weights": {...state_dict...},
     "symbols": SymbolTable.to_dict(), "language": "en-us", "languages": ["en-us"],
     "sample_rate": 16000, "speaker_encoder": {"target": "pkg.mod.Class", "kwargs": {...},
     "state_dict": {...}}, "sampling": {...}, "config": {...}}

``weights`` are the generator side only (text encoder, posterior encoder, flow, duration predictor,
decoder, language embedding); the discriminator is left out. The speaker encoder is frozen during
training; its weights travel in the record so the synthesizer embeds prompts exactly as training did.

Zero-shot synthesis (YourTTS §3): the prompt's embedding from the speaker encoder conditions the flow,
the duration predictor and the decoder; the text prior is sampled with ``noise_scale`` (VITS: 0.667),
durations from the stochastic predictor with ``noise_scale_dp`` (0.8) times ``length_scale`` (speed:
> 1 is slower). Each call draws from a generator seeded by ``seed``: the same call gives the same wave.
The released YourTTS is loaded by :func:`ns2.models.yourtts.coqui.load_released_yourtts` and wrapped by
:meth:`YourTTSSynthesizer.from_released`.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ns2.inference.checkpoint import NS2CheckpointError, _one_line, plain, read_record
from ns2.inference.synthesizer import SynthesisError, Synthesizer, TextFrontend, prepare_prompt

__all__ = ["CharacterFrontend", "DEFAULT_SAMPLING", "KIND", "YourTTSCheckpoint", "YourTTSSynthesizer", "load_yourtts_checkpoint",
           "make_yourtts_record", "speaker_encoder_from_record", "speaker_encoder_record"]

KIND = "yourtts"
VERSION = 1
EXPECTED = "a YourTTS training checkpoint (a .ckpt written by `ns2 train experiment=yourtts/...`, with a 'yourtts' entry)"
RECORD_KEYS = ("net", "weights", "symbols", "language", "sample_rate", "speaker_encoder")
DEFAULT_SAMPLING = {"noise_scale": 0.667, "length_scale": 1.0, "noise_scale_dp": 0.8}


# --- the checkpoint record ------------------------------------------------------------------------
def speaker_encoder_record(encoder: torch.nn.Module) -> dict[str, Any]:
    """``{target, kwargs, state_dict}`` of a speaker encoder whose class takes ``encoder.kwargs``."""
    kwargs = getattr(encoder, "kwargs", {})
    cls = type(encoder)
    return {"target": f"{cls.__module__}.{cls.__qualname__}", "kwargs": plain(dict(kwargs)),
            "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}


def speaker_encoder_from_record(rec: Mapping[str, Any], where: str) -> torch.nn.Module:
    """The frozen speaker encoder of a record's ``speaker_encoder`` entry."""
    target = str(rec.get("target", ""))
    if not target.startswith("ns2."):
        raise NS2CheckpointError(f"{where}: speaker encoder {target!r}; expected a class of the ns2 package")
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        enc = cls(**dict(rec.get("kwargs") or {}))
        enc.load_state_dict(rec["state_dict"])
    except (ImportError, AttributeError, TypeError, ValueError, RuntimeError, KeyError) as e:
        raise NS2CheckpointError(f"{where}: its speaker encoder does not rebuild ({_one_line(e)})") from None
    return enc.eval().requires_grad_(False)


def make_yourtts_record(*, net: Mapping[str, Any], weights: Mapping[str, torch.Tensor], symbols: Any, language: str,
                        languages: Sequence[str], sample_rate: int, speaker_encoder: torch.nn.Module,
                        sampling: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``checkpoint["yourtts"]`` record (module docstring)."""
    return {"kind": KIND, "version": VERSION, "net": plain(net), "weights": dict(weights),
            "symbols": symbols.to_dict(), "language": str(language), "languages": [str(x) for x in languages],
            "sample_rate": int(sample_rate), "speaker_encoder": speaker_encoder_record(speaker_encoder),
            "sampling": plain(dict(sampling or {})), "config": plain(config or {})}


@dataclass
class YourTTSCheckpoint:
    """A loaded YourTTS checkpoint: ``net`` (eval, no gradients), ``speaker_encoder`` (frozen), ``symbols``,
    ``language``, ``languages``, ``sample_rate``, ``sampling`` defaults, ``config``, ``path``, ``step``."""

    net: Any
    speaker_encoder: Any
    symbols: Any
    language: str
    languages: list[str]
    sample_rate: int
    sampling: dict[str, Any]
    config: dict[str, Any]
    path: Path
    step: int = 0


def load_yourtts_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> YourTTSCheckpoint:
    """Rebuild the network and speaker encoder of a YourTTS checkpoint; one-line NS2CheckpointError otherwise."""
    from ns2.models.yourtts import YourTTS
    from ns2.text.symbols import SymbolTable

    path = Path(path).expanduser()
    obj = read_record(path, map_location, kind=KIND, version=VERSION, keys=RECORD_KEYS, expected=EXPECTED)
    rec = obj[KIND]
    where = f"{path}: YourTTS checkpoint"
    try:
        symbols = SymbolTable.from_dict(rec["symbols"])
        net = YourTTS(**rec["net"])
        net.load_state_dict(rec["weights"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise NS2CheckpointError(f"{where}: its network does not rebuild ({_one_line(e)})") from None
    encoder = speaker_encoder_from_record(rec["speaker_encoder"], where)
    net.eval().requires_grad_(False)
    return YourTTSCheckpoint(net=net, speaker_encoder=encoder, symbols=symbols, language=str(rec["language"]),
                             languages=list(rec.get("languages") or [rec["language"]]),
                             sample_rate=int(rec["sample_rate"]), sampling=dict(rec.get("sampling") or {}),
                             config=dict(rec.get("config") or {}), path=path, step=int(obj.get("global_step", 0) or 0))


class CharacterFrontend:
    """Text -> character ids of a released Coqui model (:class:`ns2.text.coqui_chars.CoquiCharacters`)."""

    def __init__(self, characters: Any, language: str) -> None:
        self.characters, self.language = characters, str(language)

    def ids(self, text: str, what: str = "text") -> list[int]:
        if not isinstance(text, str) or not text.strip():
            raise SynthesisError(f"{what} {text!r}: empty; expected words to speak")
        ids = self.characters.encode(text, self.language)
        if not any(i != self.characters.blank_id for i in ids):
            raise SynthesisError(f"{what} {text[:40]!r}: no character of the model's alphabet")
        return ids


# --- the synthesizer ------------------------------------------------------------------------------
class YourTTSSynthesizer(Synthesizer):
    """Text + speech prompt -> waveform with a YourTTS network and its speaker encoder (module docstring).

    Args:
        net: :class:`~ns2.models.yourtts.YourTTS`.  speaker_encoder: ``wav [B, S] -> emb [B, D]`` at its
            ``sample_rate`` (the one training used).  symbols, language: phoneme table and text front end.
        sample_rate: the network's output rate.  languages: the language embedding's table (index of
            ``language`` is used; None when the network has no language embedding).
        noise_scale, length_scale, noise_scale_dp: VITS's sampling temperatures and speed.
        max_prompt_seconds: longer prompts are cut to their first seconds.  device: ``cpu``/``cuda``/``auto``.
        frontend: text -> ids (``ids(text, what)``); default the project's phonemizer over ``symbols``
            (the released model reads characters: :meth:`from_released` passes its own).
    """

    name = "yourtts"
    # VITS decodes frame-synchronous latents: the durations it used are the exact phoneme timing of its
    # output, so an evaluation may score prosody with them (:attr:`last_alignment`; phoneme input only)
    reports_alignment = True

    def __init__(self, net: torch.nn.Module, speaker_encoder: torch.nn.Module, symbols: Any, language: str = "en-us",
                 sample_rate: int = 16000, languages: Sequence[str] | None = None, noise_scale: float = 0.667,
                 length_scale: float = 1.0, noise_scale_dp: float = 0.8, max_prompt_seconds: float | None = None,
                 max_seconds: float = 30.0, device: str | torch.device = "cpu", name: str = "yourtts",
                 checkpoint: str | os.PathLike | None = None, frontend: Any = None) -> None:
        if float(length_scale) <= 0:
            raise ValueError(f"length_scale must be > 0, got {length_scale}")
        if float(noise_scale) < 0 or float(noise_scale_dp) < 0:
            raise ValueError(f"noise scales must be >= 0, got {noise_scale}, {noise_scale_dp}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.net = net.eval().to(self.device)
        self.speaker_encoder = speaker_encoder.eval().to(self.device)
        self.symbols, self.language = symbols, str(language)
        self.languages = list(languages) if languages else None
        if self.languages is not None and self.language not in self.languages:
            raise ValueError(f"language {self.language!r} is not among the model's languages {self.languages}")
        self._sample_rate = int(sample_rate)
        self.sampling = {"noise_scale": float(noise_scale), "length_scale": float(length_scale),
                         "noise_scale_dp": float(noise_scale_dp)}
        self.max_prompt_seconds = None if max_prompt_seconds is None else float(max_prompt_seconds)
        self.max_seconds = float(max_seconds)
        self.name = name
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.frontend = frontend if frontend is not None else TextFrontend(self.language, self.symbols)
        self.last_info: dict[str, Any] | None = None

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **overrides: Any) -> YourTTSSynthesizer:
        """A synthesizer from a YourTTS training checkpoint; ``overrides``: any constructor argument (None:
        the checkpoint's setting)."""
        ckpt = load_yourtts_checkpoint(path)
        kwargs = {**DEFAULT_SAMPLING, **ckpt.sampling, **{k: v for k, v in overrides.items() if v is not None}}
        languages = ckpt.languages if getattr(ckpt.net, "emb_l", None) is not None else None
        return cls(ckpt.net, ckpt.speaker_encoder, ckpt.symbols, ckpt.language, ckpt.sample_rate, languages,
                   checkpoint=ckpt.path, **kwargs)

    @classmethod
    def from_released(cls, path: str | os.PathLike | None = None, language: str = "en", **overrides: Any) -> YourTTSSynthesizer:
        """The released YourTTS (Coqui's files in the folder ``path``, default ``$NS2_CACHE/yourtts``), read by
        :func:`ns2.models.yourtts.coqui.load_released_yourtts`; ``language``: one of its languages (``en``,
        ``fr-fr``, ``pt-br``). Missing files raise one line saying where to put them."""
        from ns2.models.yourtts.coqui import load_released_yourtts

        net, encoder, meta = load_released_yourtts(path)
        if meta.get("characters") is None:
            raise NS2CheckpointError(f"{meta['root']}: config.json has no 'characters' entry; expected Coqui's "
                                     "YourTTS config (it reads characters)")
        if int(meta["audio"]["sample_rate"]) != int(encoder.sample_rate):
            raise NS2CheckpointError(f"{meta['root']}: the model is at {meta['audio']['sample_rate']} Hz, its speaker "
                                     f"encoder at {encoder.sample_rate} Hz; expected the release's 16 kHz pair")
        languages = meta["languages"] or None
        kwargs = {**DEFAULT_SAMPLING, "name": "yourtts_pretrained",
                  **{k: v for k, v in overrides.items() if v is not None}}
        return cls(net, encoder, None, language, int(meta["audio"]["sample_rate"]), languages,
                   checkpoint=meta["root"], frontend=CharacterFrontend(meta["characters"], language), **kwargs)

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def frame_rate(self) -> float:
        return self._sample_rate / int(self.net.hop_length)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "checkpoint": self.checkpoint, **self.sampling, "language": self.language,
                "symbols": (f"{self.symbols.version}:{self.symbols.checksum}" if self.symbols is not None
                            else type(self.frontend).__name__),
                "speaker_encoder": type(self.speaker_encoder).__name__,
                "parameters": sum(p.numel() for p in self.net.parameters()), "device": str(self.device)}

    # --- steps --------------------------------------------------------------------------------
    @torch.inference_mode()
    def embed_prompt(self, wav: np.ndarray, sr: int) -> torch.Tensor:
        """The prompt's speaker embedding [1, D]."""
        x = prepare_prompt(wav, sr, int(self.speaker_encoder.sample_rate), min_seconds=1.0, name="prompt")
        if self.max_prompt_seconds is not None:
            x = x[: int(round(self.max_prompt_seconds * self.speaker_encoder.sample_rate))]
        return self.speaker_encoder(torch.from_numpy(np.ascontiguousarray(x)).to(self.device)[None])

    @property
    def last_alignment(self) -> dict[str, Any] | None:
        """The phonemes and frame durations of the last output (``{"phonemes", "durations", "frame_rate"}``), or
        None before the first call, for a character model (the released one) or an output cut by the guard."""
        info = self.last_info or {}
        if self.symbols is None or "durations" not in info or info.get("capped"):
            return None
        return {"phonemes": self.symbols.decode(info["ids"]), "durations": list(info["durations"]),
                "frame_rate": self.frame_rate}

    def language_ids(self, batch: int) -> torch.Tensor | None:
        if self.languages is None:
            return None
        return torch.full((batch,), self.languages.index(self.language), dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def generate(self, ids: Sequence[int], spk: torch.Tensor, seed: int = 0) -> np.ndarray:
        """Phoneme ids + speaker embedding [1, D] -> wav [S] float32 (seeded)."""
        tokens = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        lengths = torch.tensor([tokens.shape[1]], dtype=torch.long, device=self.device)
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        max_frames = int(self.max_seconds * self.frame_rate)
        out = self.net.infer(tokens, lengths, spk, lang=self.language_ids(1), generator=gen, max_frames=max_frames,
                             **self.sampling)
        n = int(out["wav_lengths"][0])
        self.last_info = {"frames": n // int(self.net.hop_length), "phonemes": len(ids),
                          "capped": int(out["durations"][0].sum()) > max_frames, "ids": list(ids),
                          "durations": [int(d) for d in out["durations"][0].tolist()]}
        return out["wav"][0, 0, :n].float().clamp(-1, 1).cpu().numpy().astype(np.float32)

    def synthesize(self, text: str, prompt_wav: np.ndarray, prompt_sr: int, *, prompt_text: str | None = None,
                   score: Any = None, seed: int = 0, utt_id: str | None = None) -> tuple[np.ndarray, int]:
        """Zero-shot TTS in the prompt's voice -> (wav [S] float32, its rate)."""
        if score is not None:
            raise SynthesisError("score: YourTTS takes no score (its durations come from its duration predictor)")
        ids = self.frontend.ids(text)
        wav = self.generate(ids, self.embed_prompt(prompt_wav, prompt_sr), seed)
        if wav.size == 0:
            raise SynthesisError("YourTTS produced no frames (every predicted duration rounded to 0)")
        return wav, self.sample_rate

    def __repr__(self) -> str:
        return f"YourTTSSynthesizer(name={self.name!r}, sampling={self.sampling}, checkpoint={self.checkpoint!r})"
