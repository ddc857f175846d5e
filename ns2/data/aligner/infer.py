"""Hard phoneme durations from a trained aligner, and the aligner's checkpoint format.

:class:`Aligner` bundles what inference needs: the :class:`~ns2.data.aligner.model.AlignerModel`,
the :class:`~ns2.modules.mel.MelSpectrogram` it was trained with, the symbol table (when known) and
the ids that get 0 frames (word boundaries, punctuation, stress marks...; see
:mod:`ns2.data.aligner.tokens`).

Checkpoints: :func:`save_aligner` writes ``{"aligner": {...}, "state_dict": {...}}`` (model config,
mel config, symbol table, skip ids, model weights). :func:`load_aligner` reads that file or a
Lightning checkpoint of :class:`~ns2.data.aligner.lit.AlignerLit` (which stores the same ``"aligner"``
entry), always with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ns2.data.aligner.model import AlignerModel, AlignerOutput
from ns2.data.aligner.tokens import align_mask_for, unaligned_ids
from ns2.modules.mel import MelSpectrogram

__all__ = ["Aligner", "AlignmentResult", "load_aligner", "save_aligner", "resolve_symbols", "hard_durations"]


def resolve_symbols(symbols: Any = "default") -> Any:
    """A symbol table from a table, a ``to_dict()`` dict, a version string, ``"default"`` or ``None``.

    ``"default"`` is ``ns2.text.DEFAULT_SYMBOLS`` (``None`` when ``ns2.text`` is unavailable).
    """
    if symbols is None:
        return None
    if isinstance(symbols, str):
        try:
            from ns2.text import DEFAULT_SYMBOLS, get_symbol_table
        except ImportError:
            try:
                from ns2.text.symbols import DEFAULT_SYMBOLS, get_symbol_table
            except ImportError:
                if symbols == "default":
                    return None
                raise
        return DEFAULT_SYMBOLS if symbols == "default" else get_symbol_table(symbols)
    if isinstance(symbols, dict):
        from ns2.text.symbols import SymbolTable

        return SymbolTable.from_dict(symbols)
    return symbols


@dataclass
class AlignmentResult:
    """Per-item results of :meth:`Aligner.align_batch` (lists of length B, cropped to valid lengths)."""

    durations: list[list[int]]  # frames per token (0 for unaligned symbols), summing to the frame count
    confidence: list[float]  # mean soft-attention probability on the hard path (1 = soft agrees with hard)
    output: AlignerOutput | None = None  # the model's output (for plotting)


@dataclass
class Aligner:
    """A trained aligner ready for inference (the model runs in eval mode inside :meth:`align_batch`)."""

    model: AlignerModel
    mel: MelSpectrogram = field(default_factory=MelSpectrogram)
    symbols: Any = None
    skip_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.mel.n_mels != self.model.n_mels:
            raise ValueError(f"Aligner: the mel front end has {self.mel.n_mels} bins but the model expects {self.model.n_mels}")
        self.skip_ids = tuple(int(i) for i in self.skip_ids)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> "Aligner":
        self.model.to(device)
        self.mel.to(device)
        return self

    def encode(self, phonemes: Sequence[str]) -> list[int]:
        """Phoneme symbols -> ids with the aligner's symbol table."""
        if self.symbols is None:
            raise ValueError("Aligner.encode: this aligner has no symbol table; pass phoneme ids instead")
        return list(self.symbols.encode(phonemes))

    @torch.no_grad()
    def align_batch(self, phonemes: torch.Tensor, phoneme_mask: torch.Tensor, audio: torch.Tensor,
                    audio_lengths: torch.Tensor, return_output: bool = False) -> AlignmentResult:
        """Hard durations for a padded batch.

        phonemes: [B, L] long, phoneme_mask: [B, L] bool, audio: [B, S] float at ``mel.sample_rate``,
        audio_lengths: [B]. Frames per item are ``ceil(audio_length / hop_length)``. Raises
        ``ValueError`` for an item with fewer frames than aligned tokens (or with none at all).
        """
        dev = self.device
        phonemes, phoneme_mask = phonemes.to(dev), phoneme_mask.to(dev).bool()
        audio, audio_lengths = audio.to(dev).float(), audio_lengths.to(dev).long()
        B, S = audio.shape
        samples = torch.arange(S, device=dev)[None, :] < audio_lengths[:, None]
        mel = self.mel(audio * samples)  # [B, n_mels, T]
        frames = (audio_lengths + self.mel.hop_length - 1) // self.mel.hop_length
        frame_mask = torch.arange(mel.shape[-1], device=dev)[None, :] < frames[:, None]
        align_mask = align_mask_for(phonemes, phoneme_mask, self.skip_ids)
        tokens = align_mask.sum(-1)
        for b in range(B):
            if int(tokens[b]) == 0:
                raise ValueError(f"item {b}: no tokens to align (all {int(phoneme_mask[b].sum())} are unaligned symbols or padding)")
            if int(frames[b]) < int(tokens[b]):
                raise ValueError(f"item {b}: {int(frames[b])} frames for {int(tokens[b])} aligned tokens; "
                                 f"the audio is too short for its phonemes (MAS needs frames >= tokens)")
        was_training = self.model.training
        self.model.eval()
        try:
            out = self.model(phonemes, phoneme_mask, mel, frame_mask, align_mask=align_mask, hard=True)
        finally:
            self.model.train(was_training)
        durations = out.durations  # [B, L]
        on_path = (out.attn_soft * out.attn_hard).sum(dim=(1, 3))  # [B, T]
        confidence = (on_path.sum(-1) / frames.clamp(min=1)).tolist()
        lengths = phoneme_mask.sum(-1).tolist()
        result = [durations[b, : lengths[b]].tolist() for b in range(B)]
        for b in range(B):
            if sum(result[b]) != int(frames[b]):  # MAS guarantees it; a guard against silent corruption
                raise RuntimeError(f"item {b}: durations sum to {sum(result[b])}, expected {int(frames[b])} frames")
        return AlignmentResult(durations=result, confidence=[float(c) for c in confidence],
                               output=out if return_output else None)

    def durations(self, phonemes: Sequence[int] | Sequence[str] | torch.Tensor,
                  audio: torch.Tensor | np.ndarray) -> list[int]:
        """Hard durations of one utterance: phonemes [L] (ids, or symbols when the aligner has a table),
        audio [S] at ``mel.sample_rate`` -> frames per phoneme summing to ``ceil(S / hop_length)``."""
        if len(phonemes) and isinstance(phonemes[0], str):
            phonemes = self.encode(phonemes)  # type: ignore[arg-type]
        ids = torch.as_tensor(list(phonemes) if not torch.is_tensor(phonemes) else phonemes, dtype=torch.long).reshape(1, -1)
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio).float().reshape(1, -1)
        res = self.align_batch(ids, torch.ones_like(ids, dtype=torch.bool), wav, torch.tensor([wav.shape[1]]))
        return res.durations[0]

    def state(self) -> dict[str, Any]:
        """The ``"aligner"`` checkpoint entry (configs, symbol table, skip ids)."""
        return {
            "model": dict(self.model.config),
            "mel": dict(self.mel.config),
            "symbols": self.symbols.to_dict() if self.symbols is not None and hasattr(self.symbols, "to_dict") else None,
            "skip_ids": list(self.skip_ids),
        }


def hard_durations(aligner: "Aligner | AlignerModel", phonemes: Sequence[int] | torch.Tensor,
                   audio: torch.Tensor | np.ndarray, skip_ids: Sequence[int] = ()) -> list[int]:
    """Hard durations for one utterance (see :meth:`Aligner.durations`). A bare model gets the default
    mel front end and ``skip_ids`` (the ids that get 0 frames)."""
    if isinstance(aligner, AlignerModel):
        aligner = Aligner(aligner, MelSpectrogram(n_mels=aligner.n_mels).to(next(aligner.parameters()).device),
                          skip_ids=tuple(skip_ids))
    return aligner.durations(phonemes, audio)


def save_aligner(path: str | os.PathLike, aligner: Aligner) -> None:
    """Write an aligner checkpoint atomically (weights on CPU)."""
    from ns2.utils.io import torch_save_atomic

    state = {k: v.detach().cpu() for k, v in aligner.model.state_dict().items()}
    torch_save_atomic({"aligner": aligner.state(), "state_dict": state}, path)


def _from_state(entry: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> Aligner:
    model = AlignerModel(**entry["model"])
    model.load_state_dict(state_dict)
    mel = MelSpectrogram(**entry["mel"]) if entry.get("mel") else MelSpectrogram(n_mels=model.n_mels)
    symbols = resolve_symbols(entry["symbols"]) if entry.get("symbols") else None
    return Aligner(model, mel, symbols, tuple(entry.get("skip_ids") or ()))


def load_aligner(source: "str | os.PathLike | Aligner | nn.Module", device: str | torch.device = "cpu",
                 symbols: Any = "default", skip_tokens: Sequence[str] | None = None) -> Aligner:
    """An :class:`Aligner` from a checkpoint path, an :class:`Aligner`, an ``AlignerModel`` or an
    ``AlignerLit``. ``symbols`` and ``skip_tokens`` (symbols that get 0 frames; default: all but the
    phones and ``<sil>``, see :func:`~ns2.data.aligner.tokens.unaligned_ids`) apply when the source
    does not carry them (a bare model)."""
    if isinstance(source, Aligner):
        return source.to(device)
    if isinstance(source, nn.Module):
        if hasattr(source, "aligner") and callable(source.aligner):  # AlignerLit
            return source.aligner().to(device)
        if not isinstance(source, AlignerModel):
            raise TypeError(f"load_aligner: expected an AlignerModel, AlignerLit, Aligner or checkpoint path, got {type(source).__name__}")
        table = resolve_symbols(symbols)
        return Aligner(source, MelSpectrogram(n_mels=source.n_mels), table,
                       tuple(unaligned_ids(table, skip_tokens))).to(device)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"aligner checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    entry = ckpt.get("aligner") if isinstance(ckpt, dict) else None
    if not isinstance(entry, dict) or "model" not in entry:
        raise ValueError(f"{path}: not an aligner checkpoint (no 'aligner' entry with the model config)")
    state = ckpt["state_dict"]
    if any(k.startswith("model.") for k in state):  # a Lightning checkpoint of AlignerLit
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    return _from_state(entry, state).to(device)
