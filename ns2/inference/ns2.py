"""NaturalSpeech 2 behind the :class:`~ns2.inference.synthesizer.Synthesizer` interface.

Zero-shot TTS (:meth:`NS2Synthesizer.synthesize`)::

    prompt wav ──prepare_prompt──► mono at the codec rate ──codec.encode──► codes ──codes_to_latent──► z_prompt [1, D, Tp]
    text ──Tokenizer(language)──► phoneme ids [1, L]
    (phonemes, z_prompt) ──infer_condition──► durations [1, L], log-F0 [1, T], condition [1, H, T]
    prior noise z_1 [1, D, T] (seeded) ──sampler(denoiser)──► ẑ_0 ──codec.decode──► wav [T · hop]

A singing ``score`` replaces the predicted durations and/or pitch (see :meth:`NS2Synthesizer.generate`);
for a model trained with score conditioning (``model.net.score_conditioning``), ``score_pitch`` /
``score_durations="predicted"`` instead predict them conditioned on the score's notes.

Source-aware diffusion (zero-shot voice conversion and speech enhancement, ``convert`` / ``enhance``)
is in :mod:`ns2.inference.source_aware`; score parsing in :mod:`ns2.inference.score`.

:meth:`NS2Synthesizer.sample_latent` is the one sampling path from phonemes and a prompt latent to ẑ0:
:meth:`NS2Synthesizer.generate` and the validation synthesis of :class:`~ns2.lit.ns2.NS2Lit` both use it.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ns2.inference.checkpoint import load_ns2_checkpoint
from ns2.inference.samplers import NS2_TAU, SAMPLERS, Sampler, get_sampler
from ns2.inference.score import parse_score
from ns2.inference.source_aware import SourceAware
from ns2.inference.synthesizer import SynthesisError, Synthesizer, prepare_prompt

__all__ = ["NS2Result", "NS2Synthesizer", "SCORE_SOURCES", "fit_durations"]

# where a score's pitch / durations come from: the score itself, or the score-conditioned predictors
SCORE_SOURCES = ("score", "predicted")


@dataclass
class NS2Result:
    """One synthesis with what the model decided on the way (durations, pitch, lengths)."""

    wav: np.ndarray  # [S] float32
    sample_rate: int
    phonemes: list[str]  # [L]
    durations: np.ndarray  # [L] int frames
    log_f0: np.ndarray  # [T] natural log of Hz
    frames: int  # T
    prompt_frames: int  # Tp
    seed: int
    mode: str = "tts"
    extra: dict[str, Any] = field(default_factory=dict)
    latent: np.ndarray | None = None  # [D, T] the sampled latent the codec decoded (None where not kept)

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate

    def info(self) -> dict[str, Any]:
        """JSON-able metadata (everything but the waveform)."""
        return {
            "mode": self.mode,
            "seed": self.seed,
            "sample_rate": self.sample_rate,
            "samples": int(len(self.wav)),
            "seconds": round(self.seconds, 4),
            "frames": self.frames,
            "prompt_frames": self.prompt_frames,
            "phonemes": list(self.phonemes),
            "durations": [int(d) for d in self.durations],
            "log_f0": [float(x) for x in self.log_f0],
            **self.extra,
        }


def fit_durations(weights: torch.Tensor, total: int) -> torch.Tensor:
    """Integer durations proportional to ``weights`` [L] (≥ 0) that sum to exactly ``total``.

    Largest-remainder rounding; all-zero weights are spread evenly. -> [L] long.
    """
    w = weights.detach().double().clamp(min=0).cpu()
    if w.numel() == 0:
        raise ValueError("fit_durations: no phonemes to distribute frames over")
    if float(w.sum()) <= 0:
        w = torch.ones_like(w)
    raw = w / w.sum() * int(total)
    d = torch.floor(raw).long()
    rest = int(total) - int(d.sum())
    if rest > 0:
        order = torch.argsort(raw - d.double(), descending=True, stable=True)
        d[order[:rest]] += 1
    return d


def _score_source(value: str, what: str) -> str:
    if value not in SCORE_SOURCES:
        raise ValueError(f"{what} must be one of {list(SCORE_SOURCES)}, got {value!r}")
    return str(value)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _sampler_kwargs(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a sampler class takes (e.g. ``order`` only for DPM-Solver++)."""
    accepted = set(inspect.signature(SAMPLERS[name].__init__).parameters) - {"self", "steps", "tau"}
    return {k: v for k, v in options.items() if k in accepted}


class NS2Synthesizer(SourceAware, Synthesizer):
    """Text + speech prompt [+ score] -> waveform with a NaturalSpeech 2 network and its codec.

    Args:
        net: :class:`~ns2.models.ns2.NaturalSpeech2` (EMA weights for a trained model); put in eval mode.
        codec: the :class:`~ns2.codec.Codec` whose latents ``net`` was trained on.
        sde: the :class:`~ns2.models.ns2.sde.VPSDE` of training.
        symbols: the :class:`~ns2.text.SymbolTable` of training (phoneme ids).
        language: espeak voice of the text front end (``en-us``, ``cmn``...).
        sampler, steps, tau: the diffusion sampler (:func:`~ns2.inference.samplers.get_sampler`);
            NaturalSpeech 2: Euler ODE, 150 steps, τ = 1.2². ``steps=None``: the sampler's default.
        sampler_options: further sampler arguments (``grid``, ``t_min``, ``order``).
        duration_scale: multiplies predicted durations (> 1 is slower speech).
        score_pitch, score_durations: with a ``score``, take its pitch / durations as written
            (``"score"``, the default) or predict them conditioned on its notes (``"predicted"``: a
            model trained with ``score_conditioning`` only); :meth:`generate` can override them per call.
        max_prompt_seconds: prompts longer than this are cut to their first ``max_prompt_seconds``.
        device: ``cpu``, ``cuda``, ``cuda:1``, or ``auto`` (CUDA when available).
        name: the label in reports.
        checkpoint: where the weights came from (for :meth:`describe`).
    """

    name = "ns2"
    # NaturalSpeech 2 decodes frame-synchronous latents, so the durations it used are the exact
    # phoneme timing of its output: an evaluation may score prosody with them (:attr:`last_alignment`).
    reports_alignment = True

    def __init__(
        self,
        net: torch.nn.Module,
        codec: Any,
        sde: Any,
        symbols: Any,
        language: str = "en-us",
        sampler: str = "euler_ode",
        steps: int | None = 150,
        tau: float = NS2_TAU,
        duration_scale: float = 1.0,
        max_prompt_seconds: float | None = None,
        device: str | torch.device = "cpu",
        name: str = "ns2",
        sampler_options: Mapping[str, Any] | None = None,
        checkpoint: str | os.PathLike | None = None,
        score_pitch: str = "score",
        score_durations: str = "score",
    ) -> None:
        if int(getattr(net, "latent_dim", codec.latent_dim)) != int(codec.latent_dim):
            raise ValueError(f"the network's latent_dim={net.latent_dim} disagrees with the codec's latent_dim={codec.latent_dim}")
        vocab = getattr(net, "vocab_size", None)
        if vocab is not None and len(symbols) > int(vocab):
            raise ValueError(f"symbol table {symbols.version!r} has {len(symbols)} symbols, more than the network's vocab_size={vocab}")
        if not float(duration_scale) > 0:
            raise ValueError(f"duration_scale must be > 0, got {duration_scale}")
        if max_prompt_seconds is not None and not float(max_prompt_seconds) >= 1.0:
            raise ValueError(f"max_prompt_seconds must be >= 1 (or None), got {max_prompt_seconds}")
        self.device = _resolve_device(device)
        self.net = net.eval().to(self.device)
        self.codec = codec.eval().to(self.device)
        self.sde = sde
        self.symbols = symbols
        self.language = str(language)
        self.sampler_options = dict(sampler_options or {})
        self.sampler: Sampler = get_sampler(sampler, steps=steps, tau=tau, **_sampler_kwargs(sampler, self.sampler_options))
        self.duration_scale = float(duration_scale)
        self.score_pitch = _score_source(score_pitch, "score_pitch")
        self.score_durations = _score_source(score_durations, "score_durations")
        self.max_prompt_seconds = None if max_prompt_seconds is None else float(max_prompt_seconds)
        self.name = name
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.last_info: dict[str, Any] | None = None
        self._tokenizer = None
        self._codec_signature: dict[str, Any] | None = None

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **overrides: Any) -> NS2Synthesizer:
        """A synthesizer from a NaturalSpeech 2 training checkpoint (EMA network, codec, SDE, symbols,
        language and sampler settings stored in it). ``overrides``: any constructor argument, e.g.
        ``sampler="dpm_solver_pp", steps=20, device="cuda"``; a new ``sampler`` without ``steps`` takes
        that sampler's default steps. Raises ValueError (one line) for a missing or wrong file."""
        path = Path(path).expanduser()
        if not path.is_file():
            why = "is a directory" if path.is_dir() else "no such checkpoint file"
            raise ValueError(f"{path}: {why}; expected a NaturalSpeech 2 training checkpoint (.ckpt)")
        ckpt = load_ns2_checkpoint(path)
        stored = dict(ckpt.sampler or {})
        sampler = str(stored.pop("name", "euler_ode"))
        steps = stored.pop("steps", None)
        tau = float(stored.pop("tau", NS2_TAU))
        if "sampler" in overrides and overrides["sampler"] not in (None, sampler):
            sampler, steps = str(overrides.pop("sampler")), None
        overrides = {k: v for k, v in overrides.items() if v is not None or k == "max_prompt_seconds"}
        kwargs: dict[str, Any] = {
            "sampler": sampler,
            "steps": steps,
            "tau": tau,
            "sampler_options": stored,
            "checkpoint": getattr(ckpt, "path", None) or path,
            **overrides,
        }
        return cls(ckpt.net, ckpt.codec, ckpt.sde, ckpt.symbols, ckpt.language, **kwargs)

    @property
    def last_alignment(self) -> dict[str, Any] | None:
        """The phonemes and durations (frames at the codec's frame rate) of the last :meth:`synthesize`
        output, or None before the first call: ``{"phonemes", "durations", "frame_rate"}``."""
        info = self.last_info or {}
        if info.get("mode", "tts") != "tts" or "durations" not in info:
            return None
        return {"phonemes": list(info["phonemes"]), "durations": list(info["durations"]),
                "frame_rate": self.frame_rate}

    def describe(self) -> dict[str, Any]:
        if self._codec_signature is None:
            from ns2.data.codes import codec_signature

            self._codec_signature = codec_signature(self.codec)
        return {
            **super().describe(),
            "checkpoint": self.checkpoint,
            "sampler": self.sampler.name,
            "steps": self.sampler.steps,
            "nfe": self.sampler.nfe,
            "tau": self.sampler.tau,
            "grid": self.sampler.grid,
            "duration_scale": self.duration_scale,
            "score_pitch": self.score_pitch,
            "score_durations": self.score_durations,
            "max_prompt_seconds": self.max_prompt_seconds,
            "language": self.language,
            "symbols": f"{self.symbols.version}:{self.symbols.checksum}",
            "codec": self._codec_signature,
            "parameters": sum(p.numel() for p in self.net.parameters()),
            "device": str(self.device),
        }

    @property
    def sample_rate(self) -> int:
        return int(self.codec.sample_rate)

    @property
    def frame_rate(self) -> float:
        """Latent frames per second (the grid of durations and of a score's pitch)."""
        return self.codec.sample_rate / self.codec.hop_length

    # --- inputs -------------------------------------------------------------------------------
    def encode_audio(self, wav: np.ndarray, sr: int, *, name: str = "prompt", min_seconds: float = 1.0,
                     max_seconds: float | None = None) -> torch.Tensor:
        """Audio of any common layout and rate -> its codec latent z [1, D, T] (codes -> Σ embeddings)."""
        x = prepare_prompt(wav, sr, self.sample_rate, min_seconds=min_seconds, name=name)
        if max_seconds is not None:
            x = x[: int(round(max_seconds * self.sample_rate))]
        audio = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)[None, None]
        with torch.inference_mode():
            return self.codec.codes_to_latent(self.codec.encode(audio))

    def _prompt(self, wav: np.ndarray, sr: int, name: str = "prompt") -> torch.Tensor:
        return self.encode_audio(wav, sr, name=name, max_seconds=self.max_prompt_seconds)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from ns2.text import Tokenizer

            self._tokenizer = Tokenizer(self.language, symbols=self.symbols)
        return self._tokenizer

    def phonemize(self, text: str, what: str = "text") -> list[str]:
        """Text -> phoneme symbols of the table; SynthesisError (naming the text) when it cannot be read."""
        from ns2.text.errors import TextFrontendError, snippet

        if not isinstance(text, str) or not text.strip():
            raise SynthesisError(f"{what} {text!r}: empty; expected words to speak")
        try:
            return list(self.tokenizer(text).phonemes)
        except TextFrontendError as e:
            reason = str(e).split("; pass unknown=")[0]  # the tokenizer's policy hint does not apply here
            raise SynthesisError(f"{what} {snippet(text)}: {reason}") from None

    def _ids(self, phonemes: list[str], what: str = "text") -> torch.Tensor:
        from ns2.text.errors import TextFrontendError

        try:
            ids = self.symbols.encode(phonemes)
        except TextFrontendError as e:
            raise SynthesisError(f"{what}: {e}") from None
        if not ids:
            raise SynthesisError(f"{what}: no phonemes; expected at least one")
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    # --- the pieces ---------------------------------------------------------------------------
    def _decode(self, z: torch.Tensor) -> np.ndarray:
        """z [1, D, T] -> wav [T · hop] float32."""
        wav = self.codec.decode(z, length=z.shape[-1] * self.codec.hop_length)
        return wav[0, 0].float().cpu().numpy().astype(np.float32)

    # --- text to speech -----------------------------------------------------------------------
    def generate(self, text: str, prompt_wav: np.ndarray, prompt_sr: int, *, score: Any = None, seed: int = 0,
                 score_pitch: str | None = None, score_durations: str | None = None) -> NS2Result:
        """Synthesize and return the waveform with its phonemes, durations and pitch (:class:`NS2Result`).

        ``score`` (singing, or any fixed timing / melody; :mod:`ns2.inference.score`): some of
        ``durations`` [L] frames, ``log_f0`` [T] or ``f0`` [T] Hz (0 = unvoiced, interpolated as in
        training), ``phonemes``, and the notes per phoneme (``note_pitch``, ``note_start``; derived from
        the durations and pitch when absent). With only a pitch contour, the predicted durations are
        rescaled to sum to its T frames.

        ``score_pitch`` / ``score_durations`` (default: the constructor's): ``"score"`` takes the
        score's pitch / durations as written; ``"predicted"`` has the predictors of a model trained
        with score conditioning predict them from the text, the prompt and the score's notes (natural
        F0 around the written notes rather than the flat note contour; predicted durations see the
        notes' pitches and onsets but not their lengths, and are rescaled to the score's pitch when that
        is kept). A score-conditioned model reads the notes in any case wherever it predicts.
        """
        pitch_from = _score_source(score_pitch or self.score_pitch, "score_pitch")
        durations_from = _score_source(score_durations or self.score_durations, "score_durations")
        conditioned = bool(getattr(self.net, "score_conditioning", False))
        note_pitch = note_start = None
        if score is None:
            phonemes, durations, log_f0 = self.phonemize(text), None, None
        else:
            sc = parse_score(score, text, self.phonemize, self.device)
            phonemes, durations, log_f0 = sc.phonemes, sc.durations, sc.log_f0
            if "predicted" in (pitch_from, durations_from):
                what = "score_pitch" if pitch_from == "predicted" else "score_durations"
                if not conditioned:
                    raise SynthesisError(
                        f"{what}='predicted' needs a model trained with score conditioning "
                        "(model.net.score_conditioning=true); to predict without the notes, leave the pitch "
                        "or the durations out of the score")
                if sc.note_pitch is None:
                    raise SynthesisError(f"score: {what}='predicted' reads the score's notes; give durations with "
                                         "f0 (or log_f0), or note_pitch")
                durations = None if durations_from == "predicted" else durations
                log_f0 = None if pitch_from == "predicted" else log_f0
            if conditioned:
                note_pitch, note_start = sc.note_pitch, sc.note_start
        ids = self._ids(phonemes, "text" if score is None else "score")
        z_prompt = self._prompt(prompt_wav, prompt_sr)
        with torch.inference_mode():
            z0, cond = self.sample_latent(ids, z_prompt, durations=durations, log_f0=log_f0, seed=seed,
                                          note_pitch=note_pitch, note_start=note_start)
            frames = int(cond.frame_mask.sum())
            wav = self._decode(z0[..., :frames])
        return NS2Result(
            wav=wav,
            sample_rate=self.sample_rate,
            phonemes=phonemes,
            durations=cond.durations[0].cpu().numpy().astype(np.int64),
            log_f0=cond.log_f0[0, :frames].float().cpu().numpy(),
            frames=frames,
            prompt_frames=int(z_prompt.shape[-1]),
            seed=int(seed),
            extra={"sampler": self.sampler.name, "steps": self.sampler.steps, "nfe": self.sampler.nfe,
                   "score": score is not None,
                   **({"score_pitch": pitch_from, "score_durations": durations_from} if score is not None else {})},
            latent=z0[0, :, :frames].float().cpu().numpy(),
        )

    @torch.no_grad()
    def sample_latent(
        self,
        ids: torch.Tensor,
        z_prompt: torch.Tensor | None,
        *,
        durations: torch.Tensor | None = None,
        log_f0: torch.Tensor | None = None,
        seed: int = 0,
        max_frames: int | None = None,
        note_pitch: torch.Tensor | None = None,
        note_start: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """The one sampling path: phoneme ids [1, L] + prompt latent [1, D, Tp] -> (ẑ0 [1, D, T], the
        :class:`~ns2.models.ns2.model.NS2Condition`). ``note_pitch`` / ``note_start`` [1, L]: a score's
        notes, read by the predictions of a score-conditioned model.

        Durations are the predictor's (times ``duration_scale``) unless given ([1, L] frames); with only
        ``log_f0`` [1, T] given they are rescaled to its T frames; ``max_frames`` caps the total of
        predicted durations (rescaled to exactly ``max_frames``: an untrained predictor can ask for
        any length). Pitch is the predictor's unless given. A model without a prompt encoder ignores
        ``z_prompt``.
        """
        net = self.net
        z_prompt = z_prompt if net.prompt_encoder is not None else None
        notes = {} if note_pitch is None else {"note_pitch": note_pitch, "note_start": note_start}
        if durations is None and log_f0 is not None:
            durations = self.fitted_durations(ids, z_prompt, log_f0.shape[-1], **notes)
        cond = net.infer_condition(ids, None, z_prompt, None, self.duration_scale, durations, log_f0, **notes)
        total = int(cond.durations.sum())
        if durations is None and max_frames is not None and total > int(max_frames):
            d = fit_durations(cond.durations[0].float(), int(max_frames)).to(ids.device)[None]
            cond = net.infer_condition(ids, None, z_prompt, None, 1.0, d, None, **notes)
        denoise_fn = net.denoiser(cond.cond, cond.frame_mask, cond.prompt_hidden, cond.prompt_mask)
        z0 = self.sampler(denoise_fn, self.sde, (1, int(net.latent_dim), cond.cond.shape[-1]), mask=cond.frame_mask,
                          seed=int(seed), device=self.device)
        return z0, cond

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
        score_pitch: str | None = None,
        score_durations: str | None = None,
    ) -> tuple[np.ndarray, int]:
        """Zero-shot TTS: ``text`` in the prompt's voice -> (wav [S] float32, codec rate). The prompt's
        transcript is not needed (NaturalSpeech 2 prompts with the latent alone). ``score``,
        ``score_pitch``, ``score_durations``: see :meth:`generate`. Metadata of the call (durations,
        log-F0, frames...) is left in :attr:`last_info`."""
        result = self.generate(text, prompt_wav, prompt_sr, score=score, seed=seed, score_pitch=score_pitch,
                               score_durations=score_durations)
        self.last_info = {**result.info(), "id": utt_id}
        return result.wav, result.sample_rate

    def fitted_durations(self, ids: torch.Tensor, z_prompt: torch.Tensor | None, total: int,
                         note_pitch: torch.Tensor | None = None, note_start: torch.Tensor | None = None) -> torch.Tensor:
        """The duration predictor's durations (prompted by ``z_prompt``; reading the notes [1, L] of a
        score-conditioned model) rescaled to sum to ``total``. -> [1, L]."""
        net = self.net
        h = net.encode_text(ids)
        p = net.encode_prompt(z_prompt)
        notes = {} if note_pitch is None else {"note_pitch": note_pitch, "note_start": note_start}
        log_dur = net.predict_durations(h, None, p, None, **notes)
        weights = torch.expm1(log_dur[0].float()).clamp(min=0)
        return fit_durations(weights, total).to(self.device)[None]

    def __repr__(self) -> str:
        return (f"NS2Synthesizer(name={self.name!r}, sampler={self.sampler!r}, language={self.language!r}, "
                f"sample_rate={self.sample_rate}, device={str(self.device)!r}, checkpoint={self.checkpoint!r})")
