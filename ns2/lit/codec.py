"""The codec's GAN training (DAC's recipe) as a thin LightningModule.

:class:`CodecLit` receives a codec (any :class:`~ns2.codec.base.Codec` whose ``forward(wav)`` returns
``.wav``, ``.commitment_loss`` and ``.codebook_loss``, as :class:`~ns2.codec.rvq.RVQCodec` does) and a
discriminator (``disc(wav) -> (logits, features)``, e.g. :class:`~ns2.codec.discriminators.Discriminator`).
It owns the losses, their weights, the two optimisers and schedules, clipping and logging.

One training step (manual optimisation, as DAC's ``train_loop``):

1. crop ``segment_frames`` codec frames from every item at a random offset (never into padding);
2. ``out = codec(x)`` in training mode (quantiser dropout active);
3. discriminator step: ``L_D = adversarial_d(D(x), D(x̂.detach()))``, clip to
   ``grad_clip_discriminator``, step, scheduler step;
4. generator step: ``L_G = Σ_k loss_weights[k] · L_k`` over ``mel`` (multi-scale log-mel L1),
   ``adv_gen``, ``feat`` (feature matching), ``commitment``, ``codebook`` (and ``f0``, ``voicing`` for a
   decoder that predicts F0, against the batch's F0 over the same frame-aligned crop); clip to
   ``grad_clip_generator``, step, scheduler step.

Lightning counts every optimiser step, so ``trainer.global_step`` (and ``max_steps``,
``every_n_train_steps``) advance by two per batch with a discriminator: :attr:`CodecLit.generator_step`
is the number of batches trained. Optimisers: AdamW (``weight_decay=0`` is exactly Adam), each with
an exponential learning-rate decay per step; their states and the schedulers' live in every
checkpoint, so ``ckpt_path=...`` resumes exactly. Gradient clipping happens in
:meth:`CodecLit.on_before_optimizer_step`, i.e. after AMP unscaling; leave ``trainer.gradient_clip_val``
unset. Under DDP the strategy is ``ddp_find_unused_parameters_true`` (each backward touches one network):
the codec experiments set ``ddp_strategy``, which ``trainer=ddp`` reads.

Logged: ``train/{loss_g,loss_d,mel,adv_gen,feat,commitment,codebook,grad_norm_g,grad_norm_d,lr}``;
``val/{mel,si_sdr,waveform_l1,commitment,codebook}``; on the first validation batch, audio examples
(reference and reconstruction) and log-mel plots for loggers that take them (TensorBoard, W&B).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from ns2.codec.base import Codec
from ns2.inference.checkpoint import plain
from ns2.lit.figures import log_mel, mel_image
from ns2.lit.optim import clip_gradients
from ns2.losses.codec import (
    ADVERSARIAL_LOSSES,
    DAC_MEL_N_MELS,
    DAC_MEL_WINDOWS,
    MultiScaleMelLoss,
    feature_matching_loss,
    si_sdr,
)

__all__ = ["CodecLit", "CONTROL_LOSS_WEIGHTS", "DEFAULT_LOSS_WEIGHTS", "crop_segments"]

log = logging.getLogger(__name__)

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"mel": 15.0, "adv_gen": 1.0, "feat": 2.0, "commitment": 0.25, "codebook": 1.0}
"""DAC's ``lambdas`` (``mel/loss``, ``adv/gen_loss``, ``adv/feat_loss``, ``vq/commitment_loss``, ``vq/codebook_loss``)."""

CONTROL_LOSS_WEIGHTS: dict[str, float] = {"f0": 10.0, "voicing": 1.0}
"""The supervised terms of a decoder that predicts F0 (:mod:`ns2.codec.harmonic`): L1 of log-F0 (natural
log) on frames with a pitch value (Praat's, interpolated through unvoiced frames) and BCE of voicing.
They apply only when the codec returns ``controls``; the batch must then carry the ``f0`` field."""


def crop_segments(
    audio: torch.Tensor,
    lengths: torch.Tensor | None,
    hop_length: int,
    frames: int | None,
    random: bool,
    generator: torch.Generator | None = None,
    aligned: bool = False,
    return_starts: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """One segment per item, all of the same length, never reaching into padding.

    audio: [B, S]; lengths: [B] valid samples (None: all S). The segment has
    ``min(frames * hop, shortest length)`` samples, rounded down to whole frames (``frames=None``: the
    shortest length). Starts are uniform over each item's valid range (``random``) or 0; with ``aligned``
    they fall on frame boundaries (multiples of ``hop_length``), so frame features crop alike.
    Returns [B, 1, L], and the starts [B] in samples with ``return_starts``.
    """
    if audio.dim() != 2:
        raise ValueError(f"crop_segments: audio must be shaped [B, S], got {tuple(audio.shape)}")
    b, s = audio.shape
    if lengths is None:
        lengths = torch.full((b,), s, device=audio.device, dtype=torch.long)
    lengths = lengths.to(audio.device).long().clamp(max=s)
    shortest = int(lengths.min())
    seg = shortest if frames is None else min(int(frames) * hop_length, shortest)
    seg = (seg // hop_length) * hop_length
    if seg < hop_length:
        raise ValueError(
            f"crop_segments: the shortest item has {shortest} samples, less than one codec frame ({hop_length})"
        )
    if random:
        unit = hop_length if aligned else 1
        span = ((lengths - seg) // unit + 1).clamp(min=1).cpu()
        starts = (torch.rand(b, generator=generator) * span).long().clamp(max=span - 1).to(audio.device) * unit
    else:
        starts = torch.zeros(b, dtype=torch.long, device=audio.device)
    idx = starts[:, None] + torch.arange(seg, device=audio.device)[None, :]
    out = audio.gather(1, idx)[:, None]
    return (out, starts) if return_starts else out


def _check_weights(loss_weights: Mapping[str, float] | None) -> dict[str, float]:
    weights = {**DEFAULT_LOSS_WEIGHTS, **CONTROL_LOSS_WEIGHTS}
    if loss_weights is not None:
        unknown = sorted(set(loss_weights) - set(weights))
        if unknown:
            raise ValueError(f"CodecLit: unknown loss_weights {unknown}; expected keys among {sorted(weights)}")
        weights.update({k: float(v) for k, v in loss_weights.items()})
    bad = {k: v for k, v in weights.items() if not math.isfinite(v) or v < 0}
    if bad:
        raise ValueError(f"CodecLit: loss_weights must be finite and >= 0, got {bad}")
    return weights


class CodecLit(L.LightningModule):
    """GAN training of a codec (DAC / Improved RVQGAN recipe).

    Args:
        codec: the generator; trained in place (quantiser dropout follows its training mode).
        discriminator: ``disc(wav [B, 1, S]) -> (logits, features)``; ``None`` trains without GAN
            (mel + VQ losses only, one optimiser).
        loss_weights: weights of ``mel``, ``adv_gen``, ``feat``, ``commitment``, ``codebook``; missing keys
            take DAC's values (15, 1, 2, 0.25, 1). ``f0`` and ``voicing`` (10, 1) weigh the supervised
            control terms of a decoder that predicts F0 (:data:`CONTROL_LOSS_WEIGHTS`).
        lr, betas, weight_decay: AdamW of both networks (DAC: 1e-4, (0.8, 0.99), 0.01); ``weight_decay=0``
            is Adam. ``discriminator_lr`` overrides ``lr`` for the discriminator.
        lr_gamma: exponential decay of the learning rate per step (DAC: 0.999996).
        grad_clip_generator, grad_clip_discriminator: max gradient norms (DAC: 1000, 10); None: no clip.
        adversarial: ``lsgan`` (DAC) or ``hinge``.
        adversarial_start_step: batches trained without the ``adv_gen``/``feat`` terms (the discriminator
            still learns meanwhile); 0 as in DAC.
        segment_frames: training crop in codec frames (e.g. 32 = 0.4 s at 80 frames/s).
        val_segment_frames: validation crop from each item's start (None: the shortest item of the batch).
        mel_n_mels, mel_window_lengths, mel_clamp_eps: the multi-scale mel loss (DAC's by default).
        num_audio_examples: reconstructions logged per validation (0: none).
    """

    def __init__(
        self,
        codec: Codec,
        discriminator: nn.Module | None = None,
        loss_weights: Mapping[str, float] | None = None,
        lr: float = 1e-4,
        betas: Sequence[float] = (0.8, 0.99),
        weight_decay: float = 0.01,
        lr_gamma: float = 0.999996,
        discriminator_lr: float | None = None,
        grad_clip_generator: float | None = 1000.0,
        grad_clip_discriminator: float | None = 10.0,
        adversarial: str = "lsgan",
        adversarial_start_step: int = 0,
        segment_frames: int = 32,
        val_segment_frames: int | None = None,
        mel_n_mels: Sequence[int] = DAC_MEL_N_MELS,
        mel_window_lengths: Sequence[int] = DAC_MEL_WINDOWS,
        mel_clamp_eps: float = 1e-5,
        num_audio_examples: int = 2,
    ):
        super().__init__()
        if codec is None:
            raise ValueError("CodecLit: no codec given; select one with codec=<name> (configs/codec/)")
        if adversarial not in ADVERSARIAL_LOSSES:
            raise ValueError(f"CodecLit: adversarial must be one of {sorted(ADVERSARIAL_LOSSES)}, got {adversarial!r}")
        if int(segment_frames) < 1:
            raise ValueError(f"CodecLit: segment_frames must be >= 1, got {segment_frames}")
        self.automatic_optimization = False
        self.codec = codec
        self.discriminator = discriminator
        self.loss_weights = _check_weights(loss_weights)
        self.save_hyperparameters(ignore=["codec", "discriminator"])
        self.lr = float(lr)
        self.betas = tuple(float(b) for b in betas)
        self.weight_decay = float(weight_decay)
        self.lr_gamma = float(lr_gamma)
        self.discriminator_lr = float(discriminator_lr) if discriminator_lr is not None else self.lr
        self.grad_clip = (grad_clip_generator, grad_clip_discriminator)
        self.adversarial = adversarial
        self.d_loss_fn, self.g_loss_fn = ADVERSARIAL_LOSSES[adversarial]
        self.adversarial_start_step = int(adversarial_start_step)
        self.segment_frames = int(segment_frames)
        self.val_segment_frames = int(val_segment_frames) if val_segment_frames else None
        self.num_audio_examples = int(num_audio_examples)
        self.mel_loss = MultiScaleMelLoss(codec.sample_rate, mel_n_mels, mel_window_lengths, mel_clamp_eps)
        self._grad_norms: dict[str, torch.Tensor] = {}

    # --- bookkeeping --------------------------------------------------------------------------
    @property
    def has_discriminator(self) -> bool:
        return self.discriminator is not None

    @property
    def generator_step(self) -> int:
        """Batches trained so far (``global_step`` counts one step per optimiser)."""
        return self.global_step // (2 if self.has_discriminator else 1)

    def _audio(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if "audio" not in batch:
            raise KeyError(
                f"CodecLit: the batch has no 'audio' (keys: {sorted(batch)}); add 'audio' to data.datamodule.fields"
            )
        audio = batch["audio"]
        if audio.dim() == 3 and audio.shape[1] == 1:
            audio = audio[:, 0]
        return audio, batch.get("audio_lengths")

    def _crop(self, batch: Mapping[str, Any], frames: int | None, random: bool) -> tuple[torch.Tensor, dict]:
        """x: [B, 1, L] cropped from the batch's audio, and the frame targets of the same span (``log_f0``,
        ``voiced``: [B, L / hop]) when the batch has them (then the crop is frame-aligned)."""
        audio, lengths = self._audio(batch)
        hop = self.codec.hop_length
        aligned = "log_f0" in batch and "voiced" in batch
        x, starts = crop_segments(audio, lengths, hop, frames, random=random, aligned=aligned, return_starts=True)
        if not aligned:
            return x, {}
        n = x.shape[-1] // hop
        idx = (starts // hop)[:, None] + torch.arange(n, device=x.device)[None, :]
        return x, {k: batch[k].gather(1, idx.clamp(max=batch[k].shape[1] - 1)) for k in ("log_f0", "voiced")}

    # --- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self):
        def adamw(params, lr):
            return torch.optim.AdamW(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)

        opt_g = adamw(self.codec.parameters(), self.lr)
        sch_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, gamma=self.lr_gamma)
        if not self.has_discriminator:
            return [opt_g], [sch_g]
        opt_d = adamw(self.discriminator.parameters(), self.discriminator_lr)
        sch_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, gamma=self.lr_gamma)
        return [opt_g, opt_d], [sch_g, sch_d]  # stepped once per batch in training_step

    def _optimizers(self):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        schs = self.lr_schedulers()
        schs = schs if isinstance(schs, list) else [schs]
        return opts, schs

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip (after AMP unscaling) and remember the gradient norm of the network being stepped."""
        which = 0
        for i, opt in enumerate(self.trainer.optimizers):
            if opt is optimizer:
                which = i
        max_norm = self.grad_clip[which]
        norm = clip_gradients((p for group in optimizer.param_groups for p in group["params"]), max_norm)
        if norm is None:
            return
        self._grad_norms["grad_norm_g" if which == 0 else "grad_norm_d"] = norm.detach()

    # --- steps --------------------------------------------------------------------------------
    def control_losses(self, out: Any, targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``f0`` (L1 of natural-log F0 on frames with a pitch value) and ``voicing`` (BCE) of a decoder that
        predicts them; {} for one that does not. targets: ``log_f0``, ``voiced`` [B, T]."""
        controls = getattr(out, "controls", None)
        if not controls or not (self.loss_weights["f0"] > 0 or self.loss_weights["voicing"] > 0):
            return {}
        if not targets:
            raise KeyError("CodecLit: this codec's decoder predicts F0 and needs F0 targets; "
                           "add 'f0' to data.datamodule.fields")
        target, voiced = targets["log_f0"].float(), targets["voiced"].float()
        has_pitch = (target > 0).float()
        err = (controls["log_f0"].float() - target).abs() * has_pitch
        return {
            "f0": err.sum() / has_pitch.sum().clamp(min=1.0),
            "voicing": nn.functional.binary_cross_entropy_with_logits(controls["voicing_logit"].float(), voiced),
        }

    def generator_losses(self, x: torch.Tensor, out: Any, adversarial: bool,
                         targets: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The generator's loss terms (unweighted). x, out.wav: [B, 1, S]; targets: see :meth:`control_losses`."""
        w = self.loss_weights
        losses = {
            "mel": self.mel_loss(out.wav, x),
            "commitment": out.commitment_loss,
            "codebook": out.codebook_loss,
            **self.control_losses(out, targets or {}),
        }
        if adversarial and (w["adv_gen"] > 0 or w["feat"] > 0):
            fake_logits, fake_features = self.discriminator(out.wav)
            with torch.no_grad():
                _, real_features = self.discriminator(x)
            losses["adv_gen"] = self.g_loss_fn(fake_logits)
            losses["feat"] = feature_matching_loss(real_features, fake_features)
        return losses

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        (opt_g, *opt_d), (sch_g, *sch_d) = self._optimizers()
        x, targets = self._crop(batch, self.segment_frames, random=True)
        out = self.codec(x)
        logs: dict[str, torch.Tensor] = {}

        if self.has_discriminator:
            self.toggle_optimizer(opt_d[0])
            logits, _ = self.discriminator(torch.cat([x, out.wav.detach()], dim=0))
            b = x.shape[0]
            loss_d = self.d_loss_fn([lg[:b] for lg in logits], [lg[b:] for lg in logits])
            opt_d[0].zero_grad(set_to_none=True)
            self.manual_backward(loss_d)
            opt_d[0].step()
            sch_d[0].step()
            self.untoggle_optimizer(opt_d[0])
            logs["loss_d"] = loss_d.detach()

        self.toggle_optimizer(opt_g)
        adversarial = self.has_discriminator and self.generator_step >= self.adversarial_start_step
        losses = self.generator_losses(x, out, adversarial, targets)
        loss_g = sum(self.loss_weights[k] * v for k, v in losses.items() if self.loss_weights[k] > 0)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        sch_g.step()
        self.untoggle_optimizer(opt_g)

        logs.update({k: v.detach() for k, v in losses.items()})
        logs["loss_g"] = loss_g.detach()
        logs.update(self._grad_norms)
        self._grad_norms = {}
        self.log_dict({f"train/{k}": v.float() for k, v in logs.items()}, batch_size=x.shape[0])
        self.log("train/lr", float(opt_g.param_groups[0]["lr"]), batch_size=x.shape[0])
        self.log("train/mel_loss", logs["mel"].float(), prog_bar=True, logger=False, batch_size=x.shape[0])

    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        audio, lengths = self._audio(batch)
        x, targets = self._crop(batch, self.val_segment_frames, random=False)
        out = self.codec(x)
        metrics = {
            "mel": self.mel_loss(out.wav, x),
            "si_sdr": si_sdr(out.wav, x).mean(),
            "waveform_l1": (out.wav - x).abs().mean(),
            "commitment": out.commitment_loss,
            "codebook": out.codebook_loss,
            **self.control_losses(out, targets),
        }
        self.log_dict({f"val/{k}": v.float() for k, v in metrics.items()}, batch_size=x.shape[0], sync_dist=True)
        self.log("val/loss", metrics["mel"].float(), batch_size=x.shape[0], sync_dist=True, logger=False)
        if batch_idx == 0 and self.num_audio_examples > 0 and self.trainer.is_global_zero:
            self.log_examples(audio, lengths)

    # --- examples -----------------------------------------------------------------------------
    @torch.no_grad()
    def log_examples(self, audio: torch.Tensor, lengths: torch.Tensor | None) -> None:
        """Reconstruct the first items whole; send audio and log-mel plots to loggers that take them."""
        from ns2.lit.media import log_media, media_loggers

        loggers = media_loggers(self.loggers)
        if not loggers:
            return
        sr, step = int(self.codec.sample_rate), int(self.global_step)
        for i in range(min(self.num_audio_examples, audio.shape[0])):
            n = int(lengths[i]) if lengths is not None else audio.shape[-1]
            x = audio[i : i + 1, :n][:, None]
            x_hat = self.codec(x).wav
            ref = x[0, 0].float().cpu().numpy()
            rec = x_hat[0, 0].float().clamp(-1, 1).cpu().numpy()
            mel = self.mel_loss.mels[-1 if len(self.mel_loss.mels) < 3 else -3]
            image = mel_image(((log_mel(ref, mel), "reference"), (log_mel(rec, mel), "reconstruction")))
            log_media(loggers, f"val/example_{i}", {"reference": ref, "reconstruction": rec}, sr, step, {"mel": image})

    # --- export -------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the codec's constructor arguments, so :func:`ns2.codec.load.codec_from_checkpoint` can rebuild it."""
        kwargs = getattr(self.codec, "kwargs", None)
        if isinstance(kwargs, Mapping):
            checkpoint["codec"] = {"class": type(self.codec).__name__, "kwargs": plain(kwargs)}

    def save_codec(self, path) -> Any:
        """Write the trained codec in the official DAC format (read back by :func:`ns2.codec.load_codec`)."""
        from ns2.codec.load import save_codec

        return save_codec(self.codec, path)

