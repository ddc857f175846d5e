"""VALL-E's training as a thin LightningModule.

:class:`VALLELit` receives the network's constructor arguments (``net``) and a frozen codec, and owns the
losses (:mod:`ns2.losses.valle`), the optimiser and its schedule, gradient clipping, an optional EMA,
logging and the checkpoint record (:mod:`ns2.inference.valle`). It reads the same prepared corpora as
NaturalSpeech 2 (fields ``phonemes, durations, codes``: durations only keep crops on whole phonemes).

One training step, on a batch of the :class:`~ns2.data.datamodule.TTSDataModule`:

* AR (codebook 1 + EOS): ``[phonemes | BOS, c_1..c_T]`` predicts ``[c_1..c_T, EOS]``; cross-entropy over
  each item's ``T + 1`` targets (``prompt_in_ar_loss: false`` leaves the prompt prefix out);
* NAR: one stage ``j ~ U{1..n_q-1}`` per step (VALL-E §4.2.2; the same ``j`` for the whole batch), the
  prompt is the item's prefix ``[0, prompt_end)`` (``data.datamodule.prompt.at_start: true``) given with
  all its codebooks; cross-entropy of codebook ``j`` over the frames after it;
* ``total = ar_weight · L_ar + nar_weight · L_nar``. Either decoder may be absent (``model.net.ar=false``
  or ``nar=false``): training then covers the other alone, and a later run can train the missing one.

Optimisation (VALL-E §5.1): AdamW, lr 5e-4, 32K warmup steps then linear decay to 0 at the trainer's
``max_steps`` (``schedule: linear``; ``inverse_sqrt`` as for NaturalSpeech 2, for open-ended runs).
Clipping and the non-finite-gradient skip are :mod:`ns2.lit.optim`'s. ``ema_decay: null`` keeps no EMA.

Validation: the losses and top-1 accuracies with fixed NAR stages (every stage in turn over the batches,
so the value is comparable between validations), and on the first batch ``num_val_synth`` items are
continued from their own prompt prefix by :class:`~ns2.inference.valle.VALLESynthesizer` (the synthesis
path): ``val/eos_rate`` (items that ended by themselves), ``val/length_ratio`` (generated / true
frames), and for TensorBoard / W&B the audio and a figure with the AR's last-layer attention.

Logged: ``train/{total,ar,nar,ar_acc,nar_acc,grad_norm,lr}``, ``val/{total,ar,nar,ar_acc,nar_acc}``
(``val/loss`` = ``val/total``), ``val/eos_rate``, ``val/length_ratio``.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch

from ns2.codec.base import Codec
from ns2.inference.checkpoint import plain
from ns2.inference.valle import DEFAULT_SAMPLING, VALLEItem, VALLESynthesizer, make_valle_record
from ns2.lit.ns2 import _symbol_table, frozen_codec
from ns2.lit.optim import InverseSqrtSchedule, WarmupLinearSchedule, clip_gradients, ema_decay_at, update_ema
from ns2.losses.valle import ar_sequences, masked_cross_entropy
from ns2.models.valle import VALLE

__all__ = ["VALLELit", "valle_kwargs"]

log = logging.getLogger(__name__)

BATCH_KEYS = ("phonemes", "phoneme_mask", "codes", "frame_mask", "prompt_start", "prompt_end")
NET_TARGETS = ("ns2.models.valle.VALLE", "ns2.models.valle.model.VALLE")
NS2_ONLY_KEYS = {"hidden", "phoneme_encoder", "diffusion", "duration_predictor", "pitch_predictor", "latent_dim"}
SCHEDULES = ("linear", "inverse_sqrt")


def valle_kwargs(net: Any, codec: Codec) -> dict[str, Any]:
    """VALLE's constructor kwargs from a mapping (``_target_`` allowed); ``n_q`` and ``codebook_size``
    null or absent take the codec's."""
    kw = plain(net)
    if not isinstance(kw, dict):
        raise TypeError(f"VALLELit: net must be a mapping of VALLE kwargs, got {type(net).__name__}")
    target = kw.pop("_target_", None)
    if target is not None and target not in NET_TARGETS:
        raise ValueError(f"VALLELit: net._target_ must be one of {list(NET_TARGETS)}, got {target!r}")
    for key in ("_convert_", "_recursive_", "_partial_"):
        kw.pop(key, None)
    stray = sorted(NS2_ONLY_KEYS & set(kw))
    if stray:
        raise ValueError(f"VALLELit: net has NaturalSpeech 2 sizes {stray}; VALL-E's are model/scale=valle_tiny|"
                         "valle_small|valle_paper")
    for key, value in (("n_q", codec.n_q), ("codebook_size", codec.codebook_size)):
        if kw.get(key) is None:
            kw[key] = int(value)
        elif int(kw[key]) != int(value):
            raise ValueError(f"VALLELit: net.{key}={kw[key]} differs from the codec's {value}; set it to null")
    if "vocab_size" not in kw:
        raise ValueError("VALLELit: net needs vocab_size (at least the symbol table's size)")
    return kw


class VALLELit(L.LightningModule):
    """VALL-E training (module docstring).

    Args:
        net: VALLE kwargs (``n_q``/``codebook_size`` null: the codec's).  codec: a Codec with ``kwargs``
            or a Hydra node building one; frozen here.
        ar_weight, nar_weight: loss weights.  prompt_in_ar_loss: the AR loss covers the prompt prefix too
            (VALL-E: plain language modelling of the whole utterance).
        lr, betas, weight_decay, warmup_steps, schedule, grad_clip: optimisation (VALL-E: AdamW 5e-4, 32K
            warmup, linear decay).  total_steps: the linear schedule's end (null: ``trainer.max_steps``).
        ema_decay: None (no EMA) or a decay; ``ema_warmup`` as NS2Lit's.
        sampling: the default sampling recorded for synthesis (temperature, top_k, top_p).
        num_val_synth: items continued on the first validation batch (0: none).
        symbols, language: the phoneme table (``net.vocab_size`` must cover it) and text front end.
    """

    def __init__(self, net: Mapping[str, Any], codec: Codec | Mapping[str, Any] | None, ar_weight: float = 1.0,
                 nar_weight: float = 1.0, prompt_in_ar_loss: bool = True, lr: float = 5e-4,
                 betas: Sequence[float] = (0.9, 0.999), weight_decay: float = 0.01, warmup_steps: int = 32000,
                 schedule: str = "linear", total_steps: int | None = None, grad_clip: float | None = 1.0,
                 ema_decay: float | None = None, ema_warmup: bool = True, sampling: Mapping[str, Any] | None = None,
                 num_val_synth: int = 2, symbols: Any = "ipa-v1", language: str = "en-us") -> None:
        super().__init__()
        self.codec = frozen_codec(codec, "VALLELit")
        kw = valle_kwargs(net, self.codec)
        self.symbols = _symbol_table(symbols)
        if int(kw["vocab_size"]) < len(self.symbols):
            raise ValueError(f"VALLELit: net.vocab_size={kw['vocab_size']} does not cover symbol table "
                             f"{self.symbols.version!r} ({len(self.symbols)} symbols)")
        if schedule not in SCHEDULES:
            raise ValueError(f"VALLELit: schedule {schedule!r}; expected one of {list(SCHEDULES)}")
        if ema_decay is not None and not 0.0 <= float(ema_decay) < 1.0:
            raise ValueError(f"VALLELit: ema_decay must be null or in [0, 1), got {ema_decay}")
        if float(lr) <= 0:
            raise ValueError(f"VALLELit: lr must be > 0, got {lr}")
        self.net_kwargs = kw
        self.net = VALLE(**kw)
        self.ema = None
        if ema_decay is not None:
            self.ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.ar_weight, self.nar_weight = float(ar_weight), float(nar_weight)
        self.prompt_in_ar_loss = bool(prompt_in_ar_loss)
        self.lr, self.betas, self.weight_decay = float(lr), tuple(float(b) for b in betas), float(weight_decay)
        self.warmup_steps, self.schedule = int(warmup_steps), str(schedule)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.grad_clip = float(grad_clip) if grad_clip else None
        self.ema_decay, self.ema_warmup = (None if ema_decay is None else float(ema_decay)), bool(ema_warmup)
        self.sampling = {**DEFAULT_SAMPLING, **plain(dict(sampling or {}))}
        self.num_val_synth = int(num_val_synth)
        self.language = str(language)
        self.save_hyperparameters(self.config())

    def config(self) -> dict[str, Any]:
        """The hyperparameters as plain containers (Lightning's ``hyper_parameters``, the record's ``config``)."""
        return plain({"net": self.net_kwargs, "codec": {"class": type(self.codec).__name__, "kwargs": self.codec.kwargs},
                      "ar_weight": self.ar_weight, "nar_weight": self.nar_weight,
                      "prompt_in_ar_loss": self.prompt_in_ar_loss, "lr": self.lr, "betas": list(self.betas),
                      "weight_decay": self.weight_decay, "warmup_steps": self.warmup_steps, "schedule": self.schedule,
                      "total_steps": self.total_steps, "grad_clip": self.grad_clip, "ema_decay": self.ema_decay,
                      "ema_warmup": self.ema_warmup, "sampling": self.sampling, "num_val_synth": self.num_val_synth,
                      "symbols": self.symbols.version, "language": self.language})

    def train(self, mode: bool = True) -> VALLELit:
        super().train(mode)
        self.codec.eval()
        if self.ema is not None:
            self.ema.eval()
        return self

    def setup(self, stage: str) -> None:
        dm = getattr(getattr(self, "_trainer", None), "datamodule", None)
        if dm is None:
            return
        missing = sorted({"phonemes", "codes"} - set(getattr(dm, "fields", None) or {"phonemes", "codes"}))
        if missing:
            raise ValueError(f"VALLELit: the datamodule lacks fields {missing}; set data.datamodule.fields=[phonemes,durations,codes]")
        if hasattr(dm, "symbols") and _symbol_table(dm.symbols) != self.symbols:
            raise ValueError(f"VALLELit: the datamodule's symbol table differs from the model's {self.symbols.version!r}")

    # --- losses -------------------------------------------------------------------------------------
    @staticmethod
    def _check_batch(batch: Mapping[str, Any]) -> None:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise KeyError(f"VALLELit: the batch lacks {missing} (keys: {sorted(batch)}); "
                           "set data.datamodule.fields=[phonemes,durations,codes]")

    @staticmethod
    def prompt_lengths(batch: Mapping[str, Any]) -> torch.Tensor:
        """The prompt prefix of each item [B] frames: ``prompt_end`` (the prompt must start at frame 0)."""
        start, end = batch["prompt_start"], batch["prompt_end"]
        if bool((start != 0).any()):
            raise ValueError("VALLELit: prompt spans must start at frame 0 (VALL-E prompts with a prefix); "
                             "set data.datamodule.prompt.at_start=true")
        return end.long()

    def compute_losses(self, batch: Mapping[str, Any], net: VALLE | None = None, stage: int | None = None,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Every loss term, the accuracies and ``total`` for one batch. ``stage``: the NAR's codebook (default
        drawn from ``generator`` or the global RNG)."""
        self._check_batch(batch)
        net = self.net if net is None else net
        codes, frame_mask = batch["codes"].long(), batch["frame_mask"].bool()
        phonemes, text_mask = batch["phonemes"].long(), batch["phoneme_mask"].bool()
        out: dict[str, torch.Tensor] = {}
        total = codes.new_zeros((), dtype=torch.float32)
        prompt_len = self.prompt_lengths(batch)
        if net.ar is not None:
            inputs, targets, mask = ar_sequences(codes[:, 0], frame_mask, net.ar.bos, net.ar.eos)
            logits = net.ar(phonemes, text_mask, inputs, mask)
            if not self.prompt_in_ar_loss:
                mask = mask & (torch.arange(mask.shape[1], device=mask.device)[None, :] >= prompt_len[:, None])
            out["ar"], out["ar_acc"] = masked_cross_entropy(logits, targets, mask)
            total = total + self.ar_weight * out["ar"]
        if net.nar is not None:
            if stage is None:
                stage = int(torch.randint(1, net.n_q, (1,), generator=generator))
            logits = net.nar(phonemes, text_mask, codes, frame_mask, prompt_len, stage)
            target_frames = frame_mask & (torch.arange(codes.shape[-1], device=codes.device)[None, :] >= prompt_len[:, None])
            out["nar"], out["nar_acc"] = masked_cross_entropy(logits, codes[:, stage], target_frames)
            total = total + self.nar_weight * out["nar"]
        out["total"] = total
        return out

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        bs = int(batch["codes"].shape[0])
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=bs)
        self.log("train/loss", losses["total"].detach(), prog_bar=True, logger=False, batch_size=bs)
        if self._trainer is not None:
            self.log("train/lr", float(self.optimizers(use_pl_optimizer=False).param_groups[0]["lr"]), batch_size=bs)
        return losses["total"]

    # --- optimisation -------------------------------------------------------------------------------
    def _schedule(self):
        if self.schedule == "inverse_sqrt":
            return InverseSqrtSchedule(self.warmup_steps)
        total = self.total_steps
        trainer = getattr(self, "_trainer", None)
        if total is None and trainer is not None and int(trainer.max_steps or -1) > 0:
            total = int(trainer.max_steps)
        if total is None:
            raise ValueError("VALLELit: schedule=linear needs total_steps or trainer.max_steps > 0 "
                             "(or use schedule=inverse_sqrt)")
        return WarmupLinearSchedule(min(self.warmup_steps, total - 1), total)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)
        sch = torch.optim.lr_scheduler.LambdaLR(opt, self._schedule())
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sch, "interval": "step", "frequency": 1}}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        norm = clip_gradients(self.net.parameters(), self.grad_clip, zero_if_not_finite=True)
        if norm is None:
            return
        if not torch.isfinite(norm):
            log.warning("step %d: gradient norm %s; the step's gradients are zeroed", self.global_step, float(norm))
        self.log("train/grad_norm", norm.detach().float())

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            update_ema(self.ema, self.net, ema_decay_at(self.global_step, self.ema_decay, self.ema_warmup))

    @property
    def inference_net(self) -> VALLE:
        """The network synthesis uses: the EMA one when kept."""
        return self.ema if self.ema is not None else self.net

    # --- validation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        net = self.inference_net
        stage = 1 + batch_idx % (net.n_q - 1) if net.nar is not None else None
        losses = self.compute_losses(batch, net, stage=stage)
        bs = int(batch["codes"].shape[0])
        self.log_dict({f"val/{k}": v.float() for k, v in losses.items()}, batch_size=bs, sync_dist=True)
        self.log("val/loss", losses["total"].float(), batch_size=bs, sync_dist=True, logger=False, prog_bar=True)
        trainer = self._trainer
        if (batch_idx == 0 and self.num_val_synth > 0 and net.ar is not None and net.nar is not None
                and trainer is not None and trainer.is_global_zero and not trainer.sanity_checking):
            self.log_synthesis(batch)

    def synthesizer(self, **overrides: Any) -> VALLESynthesizer:
        """A :class:`VALLESynthesizer` (continuation mode) around the inference network: the synthesis path."""
        return VALLESynthesizer(self.inference_net, self.codec, self.symbols, self.language, mode="continuation",
                                device=self.device, **{**self.sampling, **overrides})

    @torch.no_grad()
    def log_synthesis(self, batch: Mapping[str, Any]) -> None:
        """Continue the first items of a batch from their prompt prefix; log EOS rate, length ratio, media."""
        synth = self.synthesizer()
        n = min(self.num_val_synth, int(batch["codes"].shape[0]))
        prompt_len = self.prompt_lengths(batch)
        items, true_frames = [], []
        for i in range(n):
            n_ph, n_fr, tp = int(batch["phoneme_mask"][i].sum()), int(batch["frame_mask"][i].sum()), int(prompt_len[i])
            items.append(VALLEItem(batch["phonemes"][i, :n_ph].cpu(), batch["codes"][i, :, :tp].cpu(), n_ph, seed=i))
            true_frames.append(n_fr - tp)
        results = synth.generate(items)
        self.log("val/eos_rate", float(np.mean([r.eos for r in results])), rank_zero_only=True, batch_size=n)
        self.log("val/length_ratio", float(np.mean([r.codes.shape[-1] / max(t, 1) for r, t in zip(results, true_frames)])),
                 rank_zero_only=True, batch_size=n)
        from ns2.lit.media import log_media, media_loggers

        media = media_loggers(self.loggers)
        if not media:
            return
        from ns2.lit.figures import attention_image

        for i, (item, result) in enumerate(zip(items, results)):
            tp = item.prompt.shape[-1]
            ref = synth.decode(batch["codes"][i, :, : tp + true_frames[i]].long())
            syn = synth.decode(torch.cat([item.prompt, result.codes.cpu()], dim=-1))
            tokens = torch.cat([torch.tensor([self.net.ar.bos]), item.prompt[0], result.codes[0].cpu()])[None].to(self.device)
            attn = self.inference_net.ar.attention(item.ids[None].to(self.device), torch.ones_like(item.ids[None], dtype=torch.bool,
                                                   device=self.device), tokens, torch.ones_like(tokens, dtype=torch.bool))
            image = attention_image(attn[0].float().cpu().numpy(), len(item.ids), tp + 1)
            log_media(media, f"val/synth_{i}", {"reference (codec)": ref, "continuation": syn},
                      int(self.codec.sample_rate), int(self.global_step), {"attention": image})

    # --- checkpoints --------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Write the ``valle`` record (:mod:`ns2.inference.valle`)."""
        checkpoint["valle"] = make_valle_record(net=self.net_kwargs, weights=self.inference_net.state_dict(),
                                                symbols=self.symbols, language=self.language, codec=self.codec,
                                                sampling=self.sampling, config=self.config())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming: the checkpoint must be a VALL-E one of the same network."""
        rec = checkpoint.get("valle")
        if not isinstance(rec, Mapping) or rec.get("kind") != "valle":
            raise ValueError("VALLELit: resuming from a checkpoint without a VALL-E record; expected one written by VALLELit")
        if plain(rec.get("net")) != plain(self.net_kwargs):
            raise ValueError(f"VALLELit: the checkpoint's network {rec.get('net')} differs from model.net {self.net_kwargs}")

