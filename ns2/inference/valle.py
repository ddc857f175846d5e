"""VALL-E synthesis: text + a speech prompt -> codec codes (AR then NAR) -> waveform.

The checkpoint contract: :class:`~ns2.lit.valle.VALLELit` writes one record under ``checkpoint["valle"]``
(plain containers and tensors, ``torch.load(weights_only=True)``)::

    {"kind": "valle", "version": 1, "net": {...VALLE kwargs...}, "weights": {...state_dict...},
     "symbols": SymbolTable.to_dict(), "language": "en-us", "sampling": {...},
     "codec": {"class": "RVQCodec", "kwargs": {...}, "state_dict": {...}}, "config": {...}}

``weights`` are the EMA network's when training kept one, else the trained network's.

Two modes (VALL-E §5.1): ``cross_sentence`` (the default): the prompt is another utterance, its
transcript ``prompt_text`` is read first, ``[prompt phonemes + text phonemes | prompt codes]`` is
continued; ``continuation``: the prompt is the first seconds of the target utterance itself and
``text`` is the whole utterance's transcript. The output is the new frames only.

Codebook 1 is sampled token by token (temperature, top-k, top-p; seeded with a generator) with a
key/value cache, until EOS or a length guard (``max_seconds_per_phoneme`` × the new phonemes, at most
``max_seconds``); an item that reaches the guard has **no EOS**: :meth:`VALLESynthesizer.synthesize`
raises :class:`~ns2.inference.synthesizer.SynthesisError` saying so (the harness records the item as a
failure with that reason), :meth:`VALLESynthesizer.generate` returns it with ``eos=False``. Codebooks
2..n_q are the NAR's greedy choices, one stage at a time. Batches are padded on the left of the audio
prefix, so every item appends at the same column; each item draws from its own seeded generator, so
its tokens do not depend on the other items of the batch.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ns2.inference.checkpoint import NS2CheckpointError, _one_line, codec_from_record, plain, read_record
from ns2.inference.synthesizer import SynthesisError, Synthesizer, TextFrontend, prepare_prompt

__all__ = ["KIND", "MODES", "VALLECheckpoint", "VALLEItem", "VALLEResult", "VALLESynthesizer", "load_valle_checkpoint",
           "make_valle_record", "sample_tokens"]

KIND = "valle"
VERSION = 1
EXPECTED = "a VALL-E training checkpoint (a .ckpt written by `ns2 train experiment=valle/...`, with a 'valle' entry)"
RECORD_KEYS = ("net", "weights", "symbols", "language", "codec")
MODES = ("cross_sentence", "continuation")
DEFAULT_SAMPLING = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}


# --- the checkpoint record ------------------------------------------------------------------------
def make_valle_record(*, net: Mapping[str, Any], weights: Mapping[str, torch.Tensor], symbols: Any, language: str,
                      codec: Any, sampling: Mapping[str, Any] | None = None,
                      config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``checkpoint["valle"]`` record (module docstring)."""
    kwargs = getattr(codec, "kwargs", None)
    if not isinstance(kwargs, Mapping):
        raise NS2CheckpointError(f"cannot record codec {type(codec).__name__}: it has no constructor kwargs")
    return {"kind": KIND, "version": VERSION, "net": plain(net), "weights": dict(weights),
            "symbols": symbols.to_dict(), "language": str(language), "sampling": plain(dict(sampling or {})),
            "codec": {"class": type(codec).__name__, "kwargs": plain(kwargs), "state_dict": codec.state_dict()},
            "config": plain(config or {})}


@dataclass
class VALLECheckpoint:
    """A loaded VALL-E checkpoint: ``net`` (:class:`~ns2.models.valle.VALLE`, eval, no gradients),
    ``codec`` (frozen), ``symbols``, ``language``, ``sampling`` defaults, ``config``, ``step``, ``path``."""

    net: Any
    codec: Any
    symbols: Any
    language: str
    sampling: dict[str, Any]
    config: dict[str, Any]
    path: Path
    step: int = 0


def load_valle_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> VALLECheckpoint:
    """Rebuild the network and codec of a VALL-E checkpoint; one-line NS2CheckpointError otherwise."""
    from ns2.models.valle import VALLE
    from ns2.text.symbols import SymbolTable

    path = Path(path).expanduser()
    obj = read_record(path, map_location, kind=KIND, version=VERSION, keys=RECORD_KEYS, expected=EXPECTED)
    rec = obj[KIND]
    where = f"{path}: VALL-E checkpoint"
    try:
        symbols = SymbolTable.from_dict(rec["symbols"])
        net = VALLE(**rec["net"])
        net.load_state_dict(rec["weights"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise NS2CheckpointError(f"{where}: its network does not rebuild ({_one_line(e)})") from None
    codec = codec_from_record(rec["codec"], where)
    if (int(codec.n_q), int(codec.codebook_size)) != (net.n_q, net.codebook_size):
        raise NS2CheckpointError(f"{where}: network of {net.n_q} x {net.codebook_size} codes, codec of "
                                 f"{codec.n_q} x {codec.codebook_size}")
    net.eval().requires_grad_(False)
    return VALLECheckpoint(net=net, codec=codec, symbols=symbols, language=str(rec["language"]),
                           sampling=dict(rec.get("sampling") or {}), config=dict(rec.get("config") or {}),
                           path=path, step=int(obj.get("global_step", 0) or 0))


# --- sampling -------------------------------------------------------------------------------------
def sample_tokens(logits: torch.Tensor, generators: Sequence[torch.Generator], temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """One token per row of logits [B, V]: temperature, then top-k (0: all), then nucleus top-p (1: all);
    ``temperature <= 0`` is greedy. Row b draws from ``generators[b]`` (on the CPU). -> [B] long."""
    if temperature <= 0:
        return logits.argmax(-1)
    x = logits.float().cpu() / float(temperature)
    if 0 < int(top_k) < x.shape[-1]:
        kth = x.topk(int(top_k), dim=-1).values[:, -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if float(top_p) < 1.0:
        sorted_x, order = x.sort(dim=-1, descending=True)
        probs = sorted_x.softmax(-1)
        drop = probs.cumsum(-1) - probs > float(top_p)  # keep the smallest set reaching top_p (>= 1 token)
        x = x.scatter(-1, order, sorted_x.masked_fill(drop, float("-inf")))
    probs = x.softmax(-1)
    out = [torch.multinomial(probs[b], 1, generator=generators[b]) for b in range(x.shape[0])]
    return torch.cat(out).to(logits.device)


@dataclass
class VALLEItem:
    """One request: phoneme ids of everything to read ``ids`` [L], the prompt's codes ``prompt`` [n_q, Tp],
    and ``new_phonemes`` (those after the prompt's: the length guard's unit)."""

    ids: torch.Tensor
    prompt: torch.Tensor
    new_phonemes: int
    seed: int = 0


@dataclass
class VALLEResult:
    """``codes`` [n_q, T] of the new frames; ``eos``: the AR ended by itself; ``limit``: its guard (frames)."""

    codes: torch.Tensor
    eos: bool
    limit: int
    info: dict[str, Any] = field(default_factory=dict)


# --- the synthesizer ------------------------------------------------------------------------------
class VALLESynthesizer(Synthesizer):
    """Text + speech prompt -> waveform with a VALL-E network and its codec (module docstring).

    Args:
        net: :class:`~ns2.models.valle.VALLE` with both decoders.  codec: the codec its codes are of.
        symbols, language: the phoneme table and text front end of training.
        mode: ``cross_sentence`` or ``continuation``.
        temperature, top_k, top_p: the AR's sampling (VALL-E samples codebook 1; the NAR is greedy).
        max_seconds_per_phoneme, max_seconds: the length guard of the AR (no EOS beyond it).
        max_prompt_seconds: longer prompts are cut to their first seconds (VALL-E: 3 s prompts).
        device: ``cpu``, ``cuda``... or ``auto``.  name: the label in reports.
    """

    name = "valle"

    def __init__(self, net: torch.nn.Module, codec: Any, symbols: Any, language: str = "en-us",
                 mode: str = "cross_sentence", temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 max_seconds_per_phoneme: float = 0.4, max_seconds: float = 30.0,
                 max_prompt_seconds: float | None = None, device: str | torch.device = "cpu", name: str = "valle",
                 checkpoint: str | os.PathLike | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"VALL-E mode {mode!r}: expected one of {list(MODES)}")
        if net.ar is None or (net.nar is None and net.n_q > 1):
            raise ValueError("VALLESynthesizer needs both the AR and the NAR decoder")
        if (int(codec.n_q), int(codec.codebook_size)) != (net.n_q, net.codebook_size):
            raise ValueError(f"network of {net.n_q} x {net.codebook_size} codes, codec of {codec.n_q} x {codec.codebook_size}")
        if not float(top_p) > 0 or int(top_k) < 0:
            raise ValueError(f"top_p must be > 0 and top_k >= 0, got {top_p}, {top_k}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.net = net.eval().to(self.device)
        self.codec = codec.eval().to(self.device)
        self.symbols, self.language, self.mode = symbols, str(language), mode
        self.sampling = {"temperature": float(temperature), "top_k": int(top_k), "top_p": float(top_p)}
        self.max_seconds_per_phoneme, self.max_seconds = float(max_seconds_per_phoneme), float(max_seconds)
        self.max_prompt_seconds = None if max_prompt_seconds is None else float(max_prompt_seconds)
        self.name = name
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.last_info: dict[str, Any] | None = None
        self._frontend: TextFrontend | None = None

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **overrides: Any) -> VALLESynthesizer:
        """A synthesizer from a VALL-E training checkpoint; ``overrides``: any constructor argument (None: the
        checkpoint's sampling setting or the default). Raises ValueError (one line) for a wrong file."""
        ckpt = load_valle_checkpoint(path)
        kwargs = {**DEFAULT_SAMPLING, **ckpt.sampling, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(ckpt.net, ckpt.codec, ckpt.symbols, ckpt.language, checkpoint=ckpt.path, **kwargs)

    @property
    def sample_rate(self) -> int:
        return int(self.codec.sample_rate)

    @property
    def frame_rate(self) -> float:
        return self.codec.sample_rate / self.codec.hop_length

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "checkpoint": self.checkpoint, "mode": self.mode, **self.sampling,
                "max_seconds_per_phoneme": self.max_seconds_per_phoneme, "max_seconds": self.max_seconds,
                "language": self.language, "symbols": f"{self.symbols.version}:{self.symbols.checksum}",
                "parameters": sum(p.numel() for p in self.net.parameters()), "device": str(self.device)}

    # --- inputs -------------------------------------------------------------------------------
    def phonemes(self, text: str, what: str = "text") -> list[int]:
        """Text -> phoneme ids; SynthesisError naming the text when it cannot be read."""
        if self._frontend is None:
            self._frontend = TextFrontend(self.language, self.symbols)
        return self._frontend.ids(text, what)

    def encode_prompt(self, wav: np.ndarray, sr: int) -> torch.Tensor:
        """The prompt's codes [n_q, Tp]."""
        x = prepare_prompt(wav, sr, self.sample_rate, min_seconds=1.0, name="prompt")
        if self.max_prompt_seconds is not None:
            x = x[: int(round(self.max_prompt_seconds * self.sample_rate))]
        audio = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)[None, None]
        with torch.inference_mode():
            return self.codec.encode(audio)[0].long()

    def item(self, text: str, prompt_codes: torch.Tensor, prompt_text: str | None = None, seed: int = 0) -> VALLEItem:
        """A request in this synthesizer's mode (cross-sentence needs ``prompt_text``)."""
        new = self.phonemes(text)
        if self.mode == "cross_sentence":
            if not prompt_text:
                raise SynthesisError("prompt_text: missing; VALL-E's cross-sentence mode reads the prompt's transcript "
                                     "before the text (or prompt with the utterance's own start in continuation mode)")
            ids = self.phonemes(prompt_text, "prompt_text") + new
        else:
            ids = new
        return VALLEItem(torch.tensor(ids, dtype=torch.long), prompt_codes.long().cpu(), len(new), int(seed))

    def limit(self, item: VALLEItem) -> int:
        """The AR's length guard for an item, in frames."""
        seconds = min(self.max_seconds, self.max_seconds_per_phoneme * max(item.new_phonemes, 1))
        return max(1, int(math.ceil(seconds * self.frame_rate)))

    # --- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate_ar(self, items: Sequence[VALLEItem]) -> list[tuple[torch.Tensor, bool]]:
        """Codebook 1 of the new frames for each item -> [(codes [T], eos)], batched with a KV cache."""
        from ns2.models.valle import KVCache

        ar, dev, b = self.net.ar, self.device, len(items)
        n_text = max(len(it.ids) for it in items)
        n_audio = max(it.prompt.shape[-1] for it in items) + 1  # BOS + prompt codebook 1, padded on the left
        phonemes = torch.zeros(b, n_text, dtype=torch.long, device=dev)
        tokens = torch.zeros(b, n_audio, dtype=torch.long, device=dev)
        audio_mask = torch.zeros(b, n_audio, dtype=torch.bool, device=dev)
        for i, it in enumerate(items):
            phonemes[i, : len(it.ids)] = it.ids.to(dev)
            seq = torch.cat([torch.tensor([ar.bos]), it.prompt[0]]).to(dev)
            tokens[i, n_audio - len(seq):] = seq
            audio_mask[i, n_audio - len(seq):] = True
        gens = [torch.Generator().manual_seed(int(it.seed)) for it in items]
        limits = [self.limit(it) for it in items]
        cache = KVCache()
        logits = ar(phonemes, phonemes > 0, tokens, audio_mask, cache=cache)[:, -1]
        out: list[list[int]] = [[] for _ in items]
        done = [False] * b
        eos = [False] * b
        for _ in range(max(limits)):
            nxt = sample_tokens(logits, gens, **self.sampling)
            for i in range(b):
                if done[i]:
                    continue
                tok = int(nxt[i])
                if tok == ar.eos:
                    done[i] = eos[i] = True
                elif len(out[i]) >= limits[i]:
                    done[i] = True
                else:
                    out[i].append(tok)
            if all(done):
                break
            logits = ar.step(nxt.clamp(max=ar.eos), cache)
        return [(torch.tensor(o, dtype=torch.long), e) for o, e in zip(out, eos)]

    @torch.no_grad()
    def generate_nar(self, items: Sequence[VALLEItem], first: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Codebooks 2..n_q of the new frames, greedily, given codebook 1 ``first[i]`` [T_i] -> [n_q, T_i] each."""
        nar, dev, b, n_q = self.net.nar, self.device, len(items), self.net.n_q
        n_text = max(len(it.ids) for it in items)
        total = [it.prompt.shape[-1] + len(c) for it, c in zip(items, first)]
        t = max(total)
        phonemes = torch.zeros(b, n_text, dtype=torch.long, device=dev)
        codes = torch.zeros(b, n_q, t, dtype=torch.long, device=dev)
        frame_mask = torch.arange(t, device=dev)[None, :] < torch.tensor(total, device=dev)[:, None]
        prompt_len = torch.tensor([it.prompt.shape[-1] for it in items], device=dev)
        for i, (it, c) in enumerate(zip(items, first)):
            phonemes[i, : len(it.ids)] = it.ids.to(dev)
            tp = it.prompt.shape[-1]
            codes[i, :, :tp] = it.prompt.to(dev)
            codes[i, 0, tp: tp + len(c)] = c.to(dev)
        for stage in range(1, n_q):
            pred = nar(phonemes, phonemes > 0, codes, frame_mask, prompt_len, stage).argmax(-1)
            new = torch.arange(t, device=dev)[None, :] >= prompt_len[:, None]
            codes[:, stage] = torch.where(new, pred, codes[:, stage])
        return [codes[i, :, it.prompt.shape[-1]: total[i]] for i, it in enumerate(items)]

    def generate(self, items: Sequence[VALLEItem]) -> list[VALLEResult]:
        """AR then NAR for a batch of requests -> one :class:`VALLEResult` each (no-EOS items included)."""
        if not items:
            return []
        first = self.generate_ar(items)
        codes = self.generate_nar(items, [c for c, _ in first]) if self.net.n_q > 1 else [c[None] for c, _ in first]
        return [VALLEResult(c, e, self.limit(it), {"frames": int(c.shape[-1]), "eos": e, "mode": self.mode})
                for it, c, (_, e) in zip(items, codes, first)]

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """codes [n_q, T] -> wav [T · hop] float32."""
        if codes.shape[-1] == 0:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            z = self.codec.codes_to_latent(codes[None].to(self.device))
            wav = self.codec.decode(z, length=z.shape[-1] * self.codec.hop_length)
        return wav[0, 0].float().cpu().numpy().astype(np.float32)

    def synthesize(self, text: str, prompt_wav: np.ndarray, prompt_sr: int, *, prompt_text: str | None = None,
                   score: Any = None, seed: int = 0, utt_id: str | None = None) -> tuple[np.ndarray, int]:
        """Zero-shot TTS in the prompt's voice -> (wav [S] float32, codec rate). An item whose AR reaches its
        length guard raises SynthesisError ("no EOS"); :attr:`last_info` holds the call's metadata."""
        if score is not None:
            raise SynthesisError("score: VALL-E takes no score (timing and melody come from its language model)")
        item = self.item(text, self.encode_prompt(prompt_wav, prompt_sr), prompt_text, seed)
        result = self.generate([item])[0]
        self.last_info = {**result.info, "id": utt_id, "limit_frames": result.limit}
        if not result.eos:
            raise SynthesisError(f"no EOS: the AR did not end within its guard of {result.limit} frames "
                                 f"({result.limit / self.frame_rate:.1f} s for {item.new_phonemes} phonemes)")
        if result.codes.shape[-1] == 0:
            raise SynthesisError("the AR emitted EOS at once: no frames")
        return self.decode(result.codes), self.sample_rate

    def __repr__(self) -> str:
        return f"VALLESynthesizer(name={self.name!r}, mode={self.mode!r}, sampling={self.sampling}, checkpoint={self.checkpoint!r})"
