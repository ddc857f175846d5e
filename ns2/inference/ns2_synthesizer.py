"""NaturalSpeech 2 behind the :class:`~ns2.inference.synthesizer.Synthesizer` interface.

Zero-shot TTS (:meth:`NS2Synthesizer.synthesize`)::

    prompt wav ──prepare_prompt──► mono at the codec rate ──codec.encode──► codes ──codes_to_latent──► z_prompt [1, D, Tp]
    text ──Tokenizer(language)──► phoneme ids [1, L]
    (phonemes, z_prompt) ──infer_condition──► durations [1, L], log-F0 [1, T], condition [1, H, T]
    prior noise z_1 [1, D, T] (seeded) ──sampler(denoiser)──► ẑ_0 ──codec.decode──► wav [T · hop]

A singing ``score`` replaces the predicted durations and/or pitch (see :meth:`NS2Synthesizer.generate`).

Source-aware diffusion (NaturalSpeech 2's zero-shot voice conversion and speech enhancement,
:meth:`NS2Synthesizer.convert`, :meth:`NS2Synthesizer.enhance`): the source audio's latent z_src
[1, D, T] is integrated *forwards* along the probability-flow ODE to z_1 under a **source condition**
(its content, with the source itself as the speech prompt), then integrated back to t = 0 under a
**target condition** (the same content, with the target prompt). Both conditions share one frame-level
content: the phonemes of the source's transcript, expanded with durations that are the duration
predictor's (source-prompted) durations rescaled to sum to exactly T (or durations given by the
caller, e.g. from an aligner), so the output keeps the source's length and timing. Each pass adds the
pitch the pitch predictor gives for that content under its own prompt, so the target pass takes the
target speaker's pitch range. For enhancement the target prompt is a clean recording of the speaker
(default: the noisy input itself, which relies on the model's prior over clean training speech to
drop what it cannot explain).
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

from ns2.inference.samplers import NS2_TAU, SAMPLERS, Sampler, get_sampler, source_aware
from ns2.inference.synthesizer import SynthesisError, Synthesizer, prepare_prompt

__all__ = ["NS2Result", "NS2Synthesizer", "fit_durations"]

SCORE_KEYS = ("phonemes", "durations", "log_f0", "f0")


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


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _sampler_kwargs(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a sampler class takes (e.g. ``order`` only for DPM-Solver++)."""
    accepted = set(inspect.signature(SAMPLERS[name].__init__).parameters) - {"self", "steps", "tau"}
    return {k: v for k, v in options.items() if k in accepted}


class NS2Synthesizer(Synthesizer):
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
            raise ValueError(f"{path}: no such checkpoint file; expected a NaturalSpeech 2 training checkpoint (.ckpt)")
        try:
            from ns2.inference.checkpoint import load_ns2_checkpoint
        except ImportError as e:
            raise ValueError(f"{path}: cannot read NaturalSpeech 2 checkpoints in this installation ({e})") from None
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
                "frame_rate": self.sample_rate / self.codec.hop_length}

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

    def _score(self, score: Any, text: str) -> tuple[list[str], torch.Tensor | None, torch.Tensor | None]:
        """score -> (phonemes [L], durations [1, L] long | None, log_f0 [1, T] | None); the phonemes are the
        score's own or those of ``text``."""
        if isinstance(score, Mapping):
            found = {str(k): score[k] for k in score}
            unknown = sorted(set(found) - set(SCORE_KEYS))
            if unknown:
                raise SynthesisError(f"score: unknown keys {unknown}; expected some of {list(SCORE_KEYS)}")
        else:
            found = {k: getattr(score, k, None) for k in SCORE_KEYS}
        found = {k: v for k, v in found.items() if v is not None}
        if "log_f0" in found and "f0" in found:
            raise SynthesisError("score: give log_f0 or f0 (Hz), not both")
        if not ({"durations", "log_f0", "f0"} & set(found)):
            raise SynthesisError(f"score: expected durations (frames per phoneme) and/or log_f0 / f0 (per frame), got keys {sorted(found)}")
        if "phonemes" in found:
            phonemes = found["phonemes"]
            if isinstance(phonemes, str) or not all(isinstance(p, str) for p in phonemes):
                raise SynthesisError("score: phonemes must be a list of symbols of the symbol table")
            phonemes = list(phonemes)
        else:
            phonemes = self.phonemize(text)
        n_phonemes = len(phonemes)
        durations = None
        if "durations" in found:
            d = np.asarray(found["durations"], dtype=np.float64)
            if d.ndim != 1 or len(d) != n_phonemes:
                raise SynthesisError(f"score: durations of shape {tuple(d.shape)}; expected [{n_phonemes}], one per phoneme")
            if not np.all(np.isfinite(d)) or np.any(d < 0) or np.any(np.abs(d - np.round(d)) > 1e-6):
                raise SynthesisError("score: durations must be whole numbers of frames >= 0")
            if d.sum() < 1:
                raise SynthesisError("score: durations sum to 0 frames; expected at least 1")
            durations = torch.as_tensor(np.round(d), dtype=torch.long, device=self.device)[None]
        log_f0 = None
        if "log_f0" in found or "f0" in found:
            key = "log_f0" if "log_f0" in found else "f0"
            v = np.asarray(found[key], dtype=np.float64)
            if v.ndim != 1 or v.size == 0:
                raise SynthesisError(f"score: {key} of shape {tuple(v.shape)}; expected [T], one value per codec frame")
            if key == "f0":
                if np.any(~np.isfinite(v)) or np.any(v < 0):
                    raise SynthesisError("score: f0 must be finite Hz >= 0 (0 = unvoiced)")
                with np.errstate(divide="ignore"):
                    v = np.where(v > 0, np.log(np.maximum(v, 1e-12)), -np.inf)
            elif np.any(np.isnan(v)):
                raise SynthesisError("score: log_f0 contains NaN")
            if durations is not None and v.size != int(durations.sum()):
                raise SynthesisError(
                    f"score: {key} has {v.size} frames but the durations sum to {int(durations.sum())}; expected equal"
                )
            log_f0 = torch.as_tensor(v, dtype=torch.float32, device=self.device)[None]
        return phonemes, durations, log_f0

    # --- the pieces ---------------------------------------------------------------------------
    def _sample(self, denoise_fn, shape: tuple[int, int, int], mask: torch.Tensor, seed: int) -> torch.Tensor:
        return self.sampler(denoise_fn, self.sde, shape, mask=mask, seed=int(seed), device=self.device)

    def _decode(self, z: torch.Tensor) -> np.ndarray:
        """z [1, D, T] -> wav [T · hop] float32."""
        wav = self.codec.decode(z, length=z.shape[-1] * self.codec.hop_length)
        return wav[0, 0].float().cpu().numpy().astype(np.float32)

    # --- text to speech -----------------------------------------------------------------------
    def generate(self, text: str, prompt_wav: np.ndarray, prompt_sr: int, *, score: Any = None, seed: int = 0) -> NS2Result:
        """Synthesize and return the waveform with its phonemes, durations and pitch (:class:`NS2Result`).

        ``score`` (singing, or any fixed timing / melody): a mapping (or object) with some of
        ``durations`` — frames per phoneme [L], replacing the predicted durations;
        ``log_f0`` — natural log of F0 in Hz per codec frame [T], or ``f0`` in Hz (0 = unvoiced),
        replacing the predicted pitch; ``phonemes`` — the symbols the durations refer to (otherwise
        ``text`` is phonemized and L is its phoneme count). With only a pitch contour, the predicted
        durations are rescaled to sum to its T frames.
        """
        if score is None:
            phonemes, durations, log_f0 = self.phonemize(text), None, None
        else:
            phonemes, durations, log_f0 = self._score(score, text)
        ids = self._ids(phonemes, "text" if score is None else "score")
        z_prompt = self._prompt(prompt_wav, prompt_sr)
        net = self.net
        with torch.inference_mode():
            if durations is None and log_f0 is not None:
                durations = self._fitted_durations(ids, z_prompt, log_f0.shape[-1])
            cond = net.infer_condition(ids, None, z_prompt, None, self.duration_scale, durations, log_f0)
            frames = int(cond.frame_mask.sum())
            denoise_fn = net.denoiser(cond.cond, cond.frame_mask, cond.prompt_hidden, cond.prompt_mask)
            z0 = self._sample(denoise_fn, (1, int(net.latent_dim), cond.cond.shape[-1]), cond.frame_mask, seed)
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
                   "score": score is not None},
            latent=z0[0, :, :frames].float().cpu().numpy(),
        )

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
        """Zero-shot TTS: ``text`` in the prompt's voice -> (wav [S] float32, codec rate). The prompt's
        transcript is not needed (NaturalSpeech 2 prompts with the latent alone). Metadata of the call
        (durations, log-F0, frames...) is left in :attr:`last_info`."""
        result = self.generate(text, prompt_wav, prompt_sr, score=score, seed=seed)
        self.last_info = {**result.info(), "id": utt_id}
        return result.wav, result.sample_rate

    def _fitted_durations(self, ids: torch.Tensor, z_prompt: torch.Tensor, total: int) -> torch.Tensor:
        """The duration predictor's durations (prompted by ``z_prompt``) rescaled to sum to ``total``. -> [1, L]."""
        net = self.net
        h = net.encode_text(ids)
        p = net.encode_prompt(z_prompt)
        weights = torch.expm1(net.predict_durations(h, None, p, None)[0].float()).clamp(min=0)
        return fit_durations(weights, total).to(self.device)[None]

    # --- source-aware diffusion ---------------------------------------------------------------
    def _source_aware(self, z_src: torch.Tensor, ids: torch.Tensor, z_tgt: torch.Tensor,
                      durations: Any, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        """ODE-encode z_src [1, D, T] under the source condition, decode under the target's (module doc)."""
        net, total = self.net, int(z_src.shape[-1])
        with torch.inference_mode():
            if durations is None:
                d = self._fitted_durations(ids, z_src, total)
            else:
                d = np.asarray(durations, dtype=np.float64)
                if d.shape != (ids.shape[-1],) or np.any(d < 0) or int(round(d.sum())) != total:
                    raise SynthesisError(
                        f"durations: shape {d.shape}, sum {d.sum():g}; expected [{ids.shape[-1]}] frames >= 0 summing to "
                        f"the source's {total} frames"
                    )
                d = torch.as_tensor(np.round(d), dtype=torch.long, device=self.device)[None]
            h = net.encode_text(ids)
            c, mask = net.regulate(h, d, None, total)
            conds = []
            for z_p in (z_src, z_tgt):
                p = net.encode_prompt(z_p)
                log_f0 = net.predict_pitch(c, mask, p, None)
                conds.append((net.denoiser(net.condition(c, log_f0, mask), mask, p, None), log_f0))
            (src_fn, _), (tgt_fn, tgt_f0) = conds
            method = "dpm_solver_pp" if self.sampler.name == "dpm_solver_pp" else "euler"
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # a seed fixes stochastic samplers too
                torch.manual_seed(int(seed))
                z0 = source_aware(z_src, src_fn, tgt_fn, self.sde, steps=self.sampler.steps, sampler=self.sampler,
                                  mask=mask, method=method)
            wav = self._decode(z0)
        info = {"frames": total, "durations": [int(x) for x in d[0].tolist()],
                "log_f0": [float(x) for x in tgt_f0[0].tolist()], "sampler": self.sampler.name,
                "steps": self.sampler.steps, "ode_encode": method, "seed": int(seed)}
        return wav, info

    def convert(
        self,
        source_wav: np.ndarray,
        source_sr: int,
        prompt_wav: np.ndarray,
        prompt_sr: int,
        *,
        source_text: str | None = None,
        durations: Any = None,
        seed: int = 0,
    ) -> tuple[np.ndarray, int]:
        """Zero-shot voice conversion: the source's words and timing in the prompt speaker's voice.

        Source-aware diffusion (module doc): ODE-encode the source latent under the source condition
        (content + the source as its own prompt), decode under the target condition (same content + the
        target prompt). The content comes from ``source_text`` (required: the model's content input is
        phonemes), expanded by the source-prompted predicted durations rescaled to the source's T
        frames, or by ``durations`` [L] (frames, summing to T). Returns (wav [T · hop] float32, codec
        rate); metadata in :attr:`last_info`.
        """
        if source_text is None or not str(source_text).strip():
            raise SynthesisError("convert: source_text is required (the transcript of the source audio builds the content condition)")
        ids = self._ids(self.phonemize(source_text, "source_text"), "source_text")
        z_src = self.encode_audio(source_wav, source_sr, name="source", min_seconds=0.1)
        z_tgt = self._prompt(prompt_wav, prompt_sr)
        wav, info = self._source_aware(z_src, ids, z_tgt, durations, seed)
        self.last_info = {"mode": "vc", "prompt_frames": int(z_tgt.shape[-1]), "sample_rate": self.sample_rate, **info}
        return wav, self.sample_rate

    def enhance(
        self,
        noisy_wav: np.ndarray,
        sr: int,
        *,
        text: str,
        clean_prompt_wav: np.ndarray | None = None,
        clean_prompt_sr: int | None = None,
        durations: Any = None,
        seed: int = 0,
    ) -> tuple[np.ndarray, int]:
        """Zero-shot speech enhancement by source-aware diffusion (module doc).

        The noisy recording is ODE-encoded under its own condition (content of ``text`` + the noisy
        audio as prompt) and decoded under the condition prompted by ``clean_prompt_wav`` (a clean
        recording of the same speaker; default the noisy input itself, leaving the cleaning to the
        model's prior over clean speech). ``clean_prompt_sr`` defaults to ``sr``. Returns
        (wav [T · hop] float32, codec rate) with T the noisy input's frames.
        """
        ids = self._ids(self.phonemize(text, "text"), "text")
        z_src = self.encode_audio(noisy_wav, sr, name="noisy", min_seconds=0.1)
        if clean_prompt_wav is None:
            z_tgt = z_src if self.max_prompt_seconds is None else self._prompt(noisy_wav, sr, "noisy")
        else:
            z_tgt = self._prompt(clean_prompt_wav, sr if clean_prompt_sr is None else clean_prompt_sr, "clean_prompt")
        wav, info = self._source_aware(z_src, ids, z_tgt, durations, seed)
        self.last_info = {"mode": "se", "prompt_frames": int(z_tgt.shape[-1]), "sample_rate": self.sample_rate,
                          "clean_prompt": clean_prompt_wav is not None, **info}
        return wav, self.sample_rate

    def __repr__(self) -> str:
        return (f"NS2Synthesizer(name={self.name!r}, sampler={self.sampler!r}, language={self.language!r}, "
                f"sample_rate={self.sample_rate}, device={str(self.device)!r}, checkpoint={self.checkpoint!r})")
