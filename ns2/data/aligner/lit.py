"""LightningModule for the aligner: mel on the fly, forward-sum loss, binarization loss, plots.

Batch (from :func:`ns2.data.dataset.collate` with fields ``("phonemes", "audio")``): ``phonemes
[B, L]``, ``phoneme_mask [B, L]``, ``audio [B, S]`` (16 kHz), ``audio_lengths [B]``, ``frame_mask
[B, T]`` and ``frame_lengths [B]`` (or ``num_frames [B]``). Items must be whole utterances (no
``max_frames_per_item`` cropping: the text has to match the audio).

Losses: ``forward_sum`` from the first step; ``binarization`` from ``binarization_start_step`` on,
its weight ramped linearly from 0 to ``binarization_weight`` over ``binarization_warmup_steps``.
Optimiser: AdamW with a linear warm-up over ``warmup`` steps, then a constant learning rate.

Symbols without acoustics (``skip_ids``; by default every symbol of the table except its phones and
``<sil>``: word boundaries, punctuation, stress marks...) get no frames: the text encoder reads
them, the attention does not (see :mod:`ns2.data.aligner.tokens`).

Every ``plot_every_n_val_batches`` validation batches, the first item's alignment is drawn
(:func:`ns2.data.aligner.plot.plot_alignment`) and sent to every logger that takes images:
TensorBoard (``add_figure``), Weights & Biases and others with ``log_image``, MLflow (``log_figure``);
loggers without image support (CSV) are skipped. ``plot_dir`` additionally writes the PNGs there.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch

from ns2.data.aligner.infer import Aligner, resolve_symbols
from ns2.data.aligner.loss import binarization_loss, forward_sum_loss
from ns2.data.aligner.model import AlignerModel, AlignerOutput
from ns2.data.aligner.plot import figure_to_array, plot_alignment
from ns2.data.aligner.tokens import align_mask_for, unaligned_ids
from ns2.modules.mel import MelSpectrogram

__all__ = ["AlignerLit", "log_figure"]

log = logging.getLogger(__name__)


def log_figure(loggers: Sequence[Any], tag: str, fig: Any, step: int) -> int:
    """Send a matplotlib figure to every logger that supports images; return how many took it."""
    sent = 0
    image = None
    for lg in loggers:
        try:
            if hasattr(lg, "log_image"):  # WandbLogger and loggers with the same API
                image = figure_to_array(fig) if image is None else image
                lg.log_image(key=tag, images=[image], step=step)
            elif hasattr(getattr(lg, "experiment", None), "add_figure"):  # TensorBoardLogger
                lg.experiment.add_figure(tag, fig, global_step=step, close=False)
            elif hasattr(getattr(lg, "experiment", None), "log_figure") and hasattr(lg, "run_id"):  # MLFlowLogger
                lg.experiment.log_figure(lg.run_id, fig, f"{tag.replace('/', '_')}_{step:08d}.png")
            else:
                continue
            sent += 1
        except Exception as e:  # noqa: BLE001 - a logger failing to draw never stops training
            log.warning("could not log figure %s to %s: %s", tag, type(lg).__name__, e)
    return sent


class AlignerLit(L.LightningModule):
    """Trains an :class:`~ns2.data.aligner.model.AlignerModel`.

    Args:
        model: the aligner (injected, e.g. by Hydra ``_target_``).
        lr, warmup, weight_decay, betas: AdamW settings and linear warm-up steps.
        binarization_start_step: global step from which the binarization loss is on.
        binarization_weight: its final weight; ``binarization_warmup_steps`` ramps it in linearly.
        blank_logprob: the blank's log-probability in the forward-sum (CTC) loss.
        mel: the mel front end (default: :class:`~ns2.modules.mel.MelSpectrogram` with the model's n_mels).
        symbols: symbol table (object, version string, ``"default"`` or ``None``): names tokens in plots,
            gives the ids of ``skip_tokens`` and is saved in checkpoints.
        skip_tokens: symbols that get 0 frames (default: all but phones and ``<sil>``); ``skip_ids``
            overrides with explicit ids.
        plot_every_n_val_batches: plot the first item of every N-th validation batch (0: never).
        plot_dir: also write the plots as PNG files into this folder.
    """

    def __init__(self, model: AlignerModel, lr: float = 1e-3, warmup: int = 1000, weight_decay: float = 1e-6,
                 betas: tuple[float, float] = (0.9, 0.98), binarization_start_step: int = 5000,
                 binarization_weight: float = 1.0, binarization_warmup_steps: int = 0, blank_logprob: float = -1.0,
                 mel: MelSpectrogram | None = None, symbols: Any = "default",
                 skip_tokens: Sequence[str] | None = None, skip_ids: Sequence[int] | None = None,
                 plot_every_n_val_batches: int = 50, plot_dir: str | os.PathLike | None = None):
        super().__init__()
        # plain Python values only, so checkpoints load with torch.load(weights_only=True)
        betas = tuple(float(b) for b in betas)
        skip_tokens = [str(t) for t in skip_tokens] if skip_tokens is not None else None
        skip_ids = [int(i) for i in skip_ids] if skip_ids is not None else None
        plot_dir = str(plot_dir) if plot_dir else None
        self.save_hyperparameters(ignore=["model", "mel", "symbols"])
        self.model = model
        self.mel = mel if mel is not None else MelSpectrogram(n_mels=model.n_mels)
        if self.mel.n_mels != model.n_mels:
            raise ValueError(f"AlignerLit: the mel front end has {self.mel.n_mels} bins but the model expects {model.n_mels}")
        self.symbols = resolve_symbols(symbols)
        if self.symbols is not None and len(self.symbols) > model.vocab_size:
            raise ValueError(f"AlignerLit: the symbol table has {len(self.symbols)} symbols but the model's "
                             f"vocab_size is {model.vocab_size}")
        self.skip_ids = tuple(int(i) for i in skip_ids) if skip_ids is not None else tuple(unaligned_ids(self.symbols, skip_tokens))
        self.lr, self.warmup, self.weight_decay, self.betas = lr, int(warmup), weight_decay, tuple(betas)
        self.binarization_start_step = int(binarization_start_step)
        self.binarization_weight = float(binarization_weight)
        self.binarization_warmup_steps = int(binarization_warmup_steps)
        self.blank_logprob = float(blank_logprob)
        self.plot_every_n_val_batches = int(plot_every_n_val_batches)
        self.plot_dir = Path(plot_dir) if plot_dir else None

    # ------------------------------------------------------------------ helpers
    def aligner(self) -> Aligner:
        """The trained aligner for inference (shares this module's model and mel)."""
        return Aligner(self.model, self.mel, self.symbols, self.skip_ids)

    def bin_weight(self, step: int | None = None) -> float:
        """Weight of the binarization loss at ``step`` (default: the current global step)."""
        step = self.global_step if step is None else step
        if step < self.binarization_start_step:
            return 0.0
        if self.binarization_warmup_steps <= 0:
            return self.binarization_weight
        return self.binarization_weight * min(1.0, (step - self.binarization_start_step + 1) / self.binarization_warmup_steps)

    def prepare(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Mel, masks and the tokens to align from a collated batch."""
        for key in ("phonemes", "phoneme_mask", "audio", "frame_mask"):
            if key not in batch:
                raise KeyError(f"AlignerLit: the batch lacks {key!r} (has {sorted(batch)}); "
                               f"the datamodule must load the fields ('phonemes', 'audio')")
        offset = batch.get("frame_offset")
        if torch.is_tensor(offset) and bool((offset > 0).any()):
            raise ValueError("AlignerLit: the batch holds cropped utterances (frame_offset > 0), whose audio no longer "
                             "matches their phonemes; train the aligner with max_frames_per_item=null")
        audio = batch["audio"].float()
        if "audio_lengths" in batch:
            keep = torch.arange(audio.shape[-1], device=audio.device)[None, :] < batch["audio_lengths"][:, None]
            audio = audio * keep
        frame_mask = batch["frame_mask"].bool()
        T = frame_mask.shape[1]
        mel = self.mel(audio)  # [B, n_mels, ceil(S / hop)]
        if mel.shape[-1] < T:
            mel = torch.nn.functional.pad(mel, (0, T - mel.shape[-1]), value=float(torch.log(torch.tensor(self.mel.clamp_min))))
        mel = mel[..., :T]
        phonemes, phoneme_mask = batch["phonemes"], batch["phoneme_mask"].bool()
        align_mask = align_mask_for(phonemes, phoneme_mask, self.skip_ids)
        return {"mel": mel, "frame_mask": frame_mask, "phonemes": phonemes, "phoneme_mask": phoneme_mask,
                "align_mask": align_mask}

    def forward(self, x: dict[str, torch.Tensor], hard: bool = True) -> AlignerOutput:
        """Run the model on :meth:`prepare`'s output."""
        return self.model(x["phonemes"], x["phoneme_mask"], x["mel"], x["frame_mask"], align_mask=x["align_mask"], hard=hard)

    def losses(self, x: dict[str, torch.Tensor], out: AlignerOutput, bin_weight: float) -> dict[str, torch.Tensor]:
        fs = forward_sum_loss(out.attn_logprob, out.token_lengths, x["frame_mask"].sum(-1), self.blank_logprob)
        losses = {"forward_sum": fs}
        loss = fs
        if out.attn_hard is not None:
            losses["binarization"] = binarization_loss(out.attn_hard, out.attn_soft)
            if bin_weight > 0:
                loss = loss + bin_weight * losses["binarization"]
        losses["loss"] = loss
        return losses

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        x = self.prepare(batch)
        w = self.bin_weight()
        out = self(x, hard=w > 0)
        losses = self.losses(x, out, w)
        bs = x["phonemes"].shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=bs, prog_bar=name == "loss")
        self.log("train/bin_weight", w, batch_size=bs)
        return losses["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        x = self.prepare(batch)
        w = self.bin_weight()
        out = self(x, hard=True)
        losses = self.losses(x, out, w)
        bs = x["phonemes"].shape[0]
        for name, value in losses.items():
            self.log(f"val/{name}", value, batch_size=bs, sync_dist=True, prog_bar=name == "loss")
        frames = x["frame_mask"].sum().clamp(min=1)
        confidence = (out.attn_soft * out.attn_hard).sum() / frames  # soft probability on the hard path
        sharpness = out.attn_soft.amax(dim=-1).sum() / frames  # mean peak of the soft attention
        self.log("val/path_confidence", confidence, batch_size=bs, sync_dist=True)
        self.log("val/attn_sharpness", sharpness, batch_size=bs, sync_dist=True)
        n = self.plot_every_n_val_batches
        if n > 0 and batch_idx % n == 0 and self.global_rank == 0:
            self.plot(batch, x, out, tag=f"val/alignment_{batch_idx}")

    def plot(self, batch: dict[str, Any], x: dict[str, torch.Tensor], out: AlignerOutput, tag: str, index: int = 0) -> Any:
        """Draw item ``index`` of a batch and send it to the loggers (and ``plot_dir``)."""
        t = int(x["frame_mask"][index].sum())
        n = int(out.token_mask[index].sum())
        ids = x["phonemes"][index][out.align_mask[index]].tolist()
        tokens = None
        if self.symbols is not None:
            try:
                tokens = list(self.symbols.decode(ids))
            except Exception:  # noqa: BLE001 - labels are a nicety
                tokens = None
        name = batch.get("ids", [None])[index] if isinstance(batch.get("ids"), list) else None
        title = f"{name or 'item'} step {self.global_step}"
        path = self.plot_dir / f"{tag.replace('/', '_')}_{self.global_step:08d}.png" if self.plot_dir else None
        fig = plot_alignment(out.attn_soft[index, 0, :t, :n], out.attn_hard[index, 0, :t, :n] if out.attn_hard is not None else None,
                             x["mel"][index, :, :t], tokens, title=title, path=path)
        if self.trainer is not None and self.trainer.loggers:
            log_figure(self.trainer.loggers, tag, fig, self.global_step)
        return fig

    # ------------------------------------------------------------------ optimiser, checkpoints
    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)
        warmup = max(self.warmup, 0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["aligner"] = self.aligner().state()
