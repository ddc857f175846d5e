"""YourTTS's training (VITS's GAN recipe + YourTTS's zero-shot conditioning) as a thin LightningModule.

:class:`YourTTSLit` receives the network's constructor arguments (``net``), a discriminator
(:class:`~ns2.models.yourtts.discriminator.VITSDiscriminator` kwargs or a module) and a frozen speaker
encoder (``wav [B, S] -> emb [B, D]``), and owns the losses (:mod:`ns2.losses.yourtts`), their weights
(one dict), the two optimisers and schedules, logging and the checkpoint record
(:mod:`ns2.inference.yourtts`). It reads the same prepared corpora as NaturalSpeech 2 (fields
``phonemes, audio``): waveforms and phonemes; the alignment is found by monotonic alignment search
inside the network, so corpus durations are not used (they only keep crops on whole phonemes).

One training step (manual optimisation, VITS's ``train_and_evaluate``):

1. the speaker embedding of every item from the frozen speaker encoder on the item's audio
   (``speaker_from: utterance``, as YourTTS trains; ``prompt``: on the batch's prompt span only);
2. the linear spectrogram of the audio (the posterior encoder's input) on the data's frame grid;
3. ``out = net(...)``: MAS alignment, KL terms, duration NLL, and the decoder's waveform for a random
   segment of ``segment_frames`` frames;
4. discriminator step on the real and the (detached) generated segment, LSGAN;
5. generator step: ``Σ_k loss_weights[k] · L_k`` over ``mel``, ``kl``, ``duration``, ``adv_gen``,
   ``feat`` and, with ``speaker_consistency``, ``speaker`` (YourTTS's SCL on the segment).

Lightning counts every optimiser step, so ``trainer.global_step`` (and ``max_steps``) advance by two per
batch. Both optimisers are AdamW (VITS: lr 2e-4, betas (0.8, 0.99), eps 1e-9, weight decay 0.01) with an
exponential decay of 0.999875 per epoch. ``grad_clip`` clips both networks' gradient norms (VITS: none,
only logged). Under DDP use ``ddp_find_unused_parameters_true`` (each backward reaches one network).

Logged: ``train/{loss_g,loss_d,mel,kl,duration,adv_gen,feat,speaker,grad_norm_g,grad_norm_d,lr}``;
``val/{mel,kl,duration,loss}``, ``val/length_ratio`` (synthesised / true frames of the first items,
synthesised from their own audio's speaker embedding), audio for loggers that take it.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from ns2.data.aligner.mas import maximum_path
from ns2.inference.checkpoint import plain
from ns2.inference.yourtts import DEFAULT_SAMPLING, KIND, YourTTSSynthesizer, make_yourtts_record
from ns2.lit.ns2 import _symbol_table
from ns2.lit.optim import clip_gradients
from ns2.losses.yourtts import (
    DEFAULT_LOSS_WEIGHTS,
    duration_loss,
    feature_matching_loss,
    kl_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    speaker_consistency_loss,
)
from ns2.models.yourtts import YourTTS
from ns2.modules.mel import MelSpectrogram

__all__ = ["YourTTSLit", "yourtts_kwargs"]

log = logging.getLogger(__name__)

BATCH_KEYS = ("phonemes", "phoneme_lengths", "audio", "frame_lengths")
NET_TARGETS = ("ns2.models.yourtts.YourTTS", "ns2.models.yourtts.model.YourTTS")
SPEAKER_FROM = ("utterance", "prompt")


def _instantiate(spec: Any, who: str) -> nn.Module:
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, Mapping) and "_target_" in spec:
        from hydra.utils import instantiate

        return instantiate(dict(plain(spec)), _convert_="all")
    raise TypeError(f"YourTTSLit: {who} must be a module or a mapping with _target_, got {type(spec).__name__}")


def yourtts_kwargs(net: Any, *, vocab_min: int, spec_channels: int, speaker_dim: int, num_languages: int) -> dict[str, Any]:
    """YourTTS's constructor kwargs from a mapping (``_target_`` allowed); ``spec_channels``, ``speaker_dim``
    and ``num_languages`` null or absent take the data's, the speaker encoder's and the language list's."""
    kw = plain(net)
    if not isinstance(kw, dict):
        raise TypeError(f"YourTTSLit: net must be a mapping of YourTTS kwargs, got {type(net).__name__}")
    target = kw.pop("_target_", None)
    if target is not None and target not in NET_TARGETS:
        raise ValueError(f"YourTTSLit: net._target_ must be one of {list(NET_TARGETS)}, got {target!r}")
    for key in ("_convert_", "_recursive_", "_partial_"):
        kw.pop(key, None)
    for key, value in (("spec_channels", spec_channels), ("speaker_dim", speaker_dim), ("num_languages", num_languages)):
        if kw.get(key) is None:
            kw[key] = int(value)
        elif int(kw[key]) != int(value):
            raise ValueError(f"YourTTSLit: net.{key}={kw[key]} differs from the required {value}; set it to null")
    if int(kw.get("vocab_size", 0)) < vocab_min:
        raise ValueError(f"YourTTSLit: net.vocab_size={kw.get('vocab_size')} does not cover the symbol table "
                         f"({vocab_min} symbols)")
    return kw


class YourTTSLit(L.LightningModule):
    """YourTTS training (module docstring).

    Args:
        net: YourTTS kwargs (``spec_channels``/``speaker_dim``/``num_languages`` null: derived).
        discriminator: a module or a Hydra node (``VITSDiscriminator``).
        speaker_encoder: a module or a Hydra node; frozen (``sample_rate``, ``dim``, ``forward(wav, lengths)``).
        loss_weights: weights of ``mel, kl, duration, adv_gen, feat, speaker`` (VITS / YourTTS by default).
        speaker_consistency: add YourTTS's speaker consistency loss (``speaker`` weight, α = 9).
        speaker_from: ``utterance`` (the item's whole audio) or ``prompt`` (its prompt span).
        lr, betas, eps, weight_decay, lr_gamma: AdamW of both networks and the decay per epoch.
        grad_clip: max gradient norm of both networks (None: no clipping, as VITS).
        segment_frames: the decoder's training segment in frames (VITS: 32).
        n_fft, win_length: the linear spectrogram (posterior input); hop = the network's.
        n_mels, f_max: the mel loss's log-mel.  sampling: the record's synthesis defaults.
        languages: the language table (``data.language`` is index 0 when the batch has no languages).
        num_val_synth: items synthesised on the first validation batch (0: none).
        symbols, language: the phoneme table and text front end.  sample_rate: the audio's rate.
    """

    def __init__(self, net: Mapping[str, Any], discriminator: Mapping[str, Any] | nn.Module,
                 speaker_encoder: Mapping[str, Any] | nn.Module, loss_weights: Mapping[str, float] | None = None,
                 speaker_consistency: bool = False, speaker_from: str = "utterance", lr: float = 2e-4,
                 betas: Sequence[float] = (0.8, 0.99), eps: float = 1e-9, weight_decay: float = 0.01,
                 lr_gamma: float = 0.999875, grad_clip: float | None = None, segment_frames: int = 32,
                 n_fft: int = 1024, win_length: int = 1024, n_mels: int = 80, f_max: float | None = None,
                 sample_rate: int = 16000, sampling: Mapping[str, Any] | None = None,
                 languages: Sequence[str] | None = None, num_val_synth: int = 2, symbols: Any = "ipa-v1",
                 language: str = "en-us") -> None:
        super().__init__()
        self.automatic_optimization = False
        if speaker_from not in SPEAKER_FROM:
            raise ValueError(f"YourTTSLit: speaker_from={speaker_from!r}; expected one of {list(SPEAKER_FROM)}")
        unknown = sorted(set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS))
        if unknown:
            raise ValueError(f"YourTTSLit: unknown loss_weights {unknown}; expected keys among {sorted(DEFAULT_LOSS_WEIGHTS)}")
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **{k: float(v) for k, v in (loss_weights or {}).items()}}
        bad = {k: v for k, v in self.loss_weights.items() if not math.isfinite(v) or v < 0}
        if bad:
            raise ValueError(f"YourTTSLit: loss_weights must be finite and >= 0, got {bad}")
        if int(segment_frames) < 1:
            raise ValueError(f"YourTTSLit: segment_frames must be >= 1, got {segment_frames}")
        self.symbols = _symbol_table(symbols)
        self.language = str(language)
        self.languages = [str(x) for x in (languages or [self.language])]
        if self.language not in self.languages:
            raise ValueError(f"YourTTSLit: language {self.language!r} is not in languages {self.languages}")
        self.speaker_encoder = _instantiate(speaker_encoder, "speaker_encoder").eval().requires_grad_(False)
        self.sample_rate = int(sample_rate)
        if int(self.speaker_encoder.sample_rate) != self.sample_rate:
            raise ValueError(f"YourTTSLit: the speaker encoder reads {self.speaker_encoder.sample_rate} Hz audio, the "
                             f"data is at {self.sample_rate} Hz")
        self.net_kwargs = yourtts_kwargs(net, vocab_min=len(self.symbols), spec_channels=int(n_fft) // 2 + 1,
                                         speaker_dim=int(self.speaker_encoder.dim), num_languages=len(self.languages))
        self.net = YourTTS(**self.net_kwargs, maximum_path=maximum_path)  # MAS lives with the aligner (ns2.data)
        self.discriminator = _instantiate(discriminator, "discriminator")
        hop = int(self.net.hop_length)
        self.spec = MelSpectrogram(self.sample_rate, int(n_fft), hop, int(win_length), int(n_mels), 0.0, f_max)
        self.speaker_consistency, self.speaker_from = bool(speaker_consistency), str(speaker_from)
        self.lr, self.betas, self.eps = float(lr), tuple(float(b) for b in betas), float(eps)
        self.weight_decay, self.lr_gamma = float(weight_decay), float(lr_gamma)
        self.grad_clip = float(grad_clip) if grad_clip else None
        self.segment_frames = int(segment_frames)
        self.sampling = {**DEFAULT_SAMPLING, **plain(dict(sampling or {}))}
        self.num_val_synth = int(num_val_synth)
        self._grad_norms: dict[str, torch.Tensor] = {}
        self._spk_cache: dict[tuple[str, int, int], torch.Tensor] = {}
        self.save_hyperparameters(self.config())

    def config(self) -> dict[str, Any]:
        """The hyperparameters as plain containers (Lightning's ``hyper_parameters``, the record's ``config``)."""
        return plain({"net": self.net_kwargs, "speaker_encoder": type(self.speaker_encoder).__name__,
                      "loss_weights": self.loss_weights, "speaker_consistency": self.speaker_consistency,
                      "speaker_from": self.speaker_from, "lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                      "weight_decay": self.weight_decay, "lr_gamma": self.lr_gamma, "grad_clip": self.grad_clip,
                      "segment_frames": self.segment_frames, "spec": self.spec.config, "sampling": self.sampling,
                      "languages": self.languages, "num_val_synth": self.num_val_synth,
                      "symbols": self.symbols.version, "language": self.language})

    def train(self, mode: bool = True) -> YourTTSLit:
        super().train(mode)
        self.speaker_encoder.eval()
        return self

    def setup(self, stage: str) -> None:
        dm = getattr(getattr(self, "_trainer", None), "datamodule", None)
        if dm is None:
            return
        missing = sorted({"phonemes", "audio"} - set(getattr(dm, "fields", None) or {"phonemes", "audio"}))
        if missing:
            raise ValueError(f"YourTTSLit: the datamodule lacks fields {missing}; set data.datamodule.fields=[phonemes,durations,audio]")
        if hasattr(dm, "symbols") and _symbol_table(dm.symbols) != self.symbols:
            raise ValueError(f"YourTTSLit: the datamodule's symbol table differs from the model's {self.symbols.version!r}")

    # --- inputs -------------------------------------------------------------------------------------
    def inputs(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The network's inputs from a batch: tokens, spectrogram [B, F, T], speaker embeddings, languages."""
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise KeyError(f"YourTTSLit: the batch lacks {missing} (keys: {sorted(batch)}); "
                           "set data.datamodule.fields=[phonemes,durations,audio]")
        audio, frames = batch["audio"].float(), batch["frame_lengths"].long()
        hop = int(self.net.hop_length)
        if audio.shape[-1] != batch["frame_mask"].shape[-1] * hop:
            raise ValueError(f"YourTTSLit: {audio.shape[-1]} audio samples for {batch['frame_mask'].shape[-1]} frames; "
                             f"the network's hop is {hop} (data.hop_length must equal the product of upsample_rates)")
        spec = self.spec.magnitude(audio) * batch["frame_mask"][:, None].to(audio.dtype)  # [B, F, T]
        return {"tokens": batch["phonemes"].long(), "token_lengths": batch["phoneme_lengths"].long(), "spec": spec,
                "spec_lengths": frames, "spk": self.speaker_embedding(batch), "lang": self.language_ids(batch)}

    @torch.no_grad()
    def speaker_embedding(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """[B, D] from the frozen speaker encoder on each item's audio (or prompt span)."""
        audio, hop = batch["audio"].float(), int(self.net.hop_length)
        if self.speaker_from == "utterance":
            return self._cached_embeddings(batch, audio, hop)
        start, end = batch["prompt_start"].long(), batch["prompt_end"].long()
        if bool(((end - start) * hop < self.sample_rate // 4).any()):
            raise ValueError("YourTTSLit: speaker_from=prompt needs prompt spans of at least 0.25 s "
                             "(data.datamodule.prompt.min_frames)")
        n = int((end - start).max()) * hop
        idx = (start * hop)[:, None] + torch.arange(n, device=audio.device)[None]
        clips = audio.gather(1, idx.clamp(max=audio.shape[-1] - 1))
        return self.speaker_encoder(clips, (end - start) * hop)

    def _cached_embeddings(self, batch: Mapping[str, Any], audio: torch.Tensor, hop: int) -> torch.Tensor:
        """The frozen encoder's embedding of each item's audio, remembered per (id, crop): an utterance seen
        again with the same crop (every epoch, for items shorter than the crop length) is not embedded twice,
        as YourTTS precomputes its d-vectors."""
        lengths = batch["frame_lengths"].long()
        keys = [(i, int(o), int(n)) for i, o, n in zip(batch.get("ids") or [None] * len(lengths),
                                                     batch["frame_offset"].tolist(), lengths.tolist())]
        todo = [b for b, k in enumerate(keys) if k[0] is None or k not in self._spk_cache]
        if todo:
            idx = torch.tensor(todo, device=audio.device)
            new = self.speaker_encoder(audio[idx], lengths[idx] * hop)
            for j, b in enumerate(todo):
                if keys[b][0] is not None:
                    self._spk_cache[keys[b]] = new[j].detach().cpu()
        out = [new[todo.index(b)] if b in todo else self._spk_cache[k].to(audio.device) for b, k in enumerate(keys)]
        return torch.stack(out)

    def language_ids(self, batch: Mapping[str, Any]) -> torch.Tensor | None:
        if getattr(self.net, "emb_l", None) is None:
            return None
        names = batch.get("languages") or [self.language] * int(batch["phonemes"].shape[0])
        unknown = sorted(set(names) - set(self.languages))
        if unknown:
            raise ValueError(f"YourTTSLit: batch languages {unknown} are not in the model's {self.languages}")
        return torch.tensor([self.languages.index(x) for x in names], dtype=torch.long, device=batch["phonemes"].device)

    def real_segments(self, batch: Mapping[str, Any], starts: torch.Tensor) -> torch.Tensor:
        """The ground-truth audio of the decoder's segments: starts [B] frames -> [B, 1, segment · hop]."""
        audio, hop = batch["audio"].float(), int(self.net.hop_length)
        n = self.segment_frames * hop
        audio = nn.functional.pad(audio, (0, n))  # a short item's segment runs into zeros, as the decoder's input
        idx = (starts.long() * hop)[:, None] + torch.arange(n, device=audio.device)[None]
        return audio.gather(1, idx)[:, None]

    # --- losses -------------------------------------------------------------------------------------
    def generator_losses(self, batch: Mapping[str, Any], out: Mapping[str, torch.Tensor], real: torch.Tensor,
                         adversarial: bool) -> dict[str, torch.Tensor]:
        """The generator's loss terms (unweighted)."""
        fake = out["y_hat"]
        losses = {"mel": nn.functional.l1_loss(self.spec(fake), self.spec(real)),
                  "kl": kl_loss(out["z_p"], out["logs_q"], out["m_p"], out["logs_p"], out["spec_mask"]),
                  "duration": duration_loss(out["duration_nll"], batch["phoneme_lengths"])}
        if adversarial:
            fake_logits, fake_features = self.discriminator(fake)
            with torch.no_grad():
                _, real_features = self.discriminator(real)
            losses["adv_gen"] = lsgan_generator_loss(fake_logits)
            losses["feat"] = feature_matching_loss(real_features, fake_features)
        if self.speaker_consistency:
            n = real.shape[-1]
            with torch.no_grad():
                e_real = self.speaker_encoder(real[:, 0], torch.full((real.shape[0],), n, device=real.device))
            e_fake = self.speaker_encoder(fake[:, 0], torch.full((fake.shape[0],), n, device=fake.device))
            losses["speaker"] = speaker_consistency_loss(e_real, e_fake)
        return losses

    def weighted(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.loss_weights[k] * v for k, v in losses.items() if self.loss_weights[k] > 0)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        out = self.net(**self.inputs(batch), segment_frames=self.segment_frames)
        real = self.real_segments(batch, out["wav_slice_start"])
        bs = int(real.shape[0])

        self.toggle_optimizer(opt_d)
        logits, _ = self.discriminator(torch.cat([real, out["y_hat"].detach()], dim=0))
        loss_d = lsgan_discriminator_loss([lg[:bs] for lg in logits], [lg[bs:] for lg in logits])
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        losses = self.generator_losses(batch, out, real, adversarial=True)
        loss_g = self.weighted(losses)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        logs = {**{k: v.detach() for k, v in losses.items()}, "loss_g": loss_g.detach(), "loss_d": loss_d.detach(),
                **self._grad_norms}
        self._grad_norms = {}
        self.log_dict({f"train/{k}": v.float() for k, v in logs.items()}, batch_size=bs)
        self.log("train/lr", float(opt_g.param_groups[0]["lr"]), batch_size=bs)
        self.log("train/mel_loss", logs["mel"].float(), prog_bar=True, logger=False, batch_size=bs)

    def on_train_epoch_end(self) -> None:
        for sch in self.lr_schedulers():
            sch.step()

    # --- optimisation -------------------------------------------------------------------------------
    def configure_optimizers(self):
        def adamw(params):
            return torch.optim.AdamW(params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)

        opt_g, opt_d = adamw(self.net.parameters()), adamw(self.discriminator.parameters())
        return [opt_g, opt_d], [torch.optim.lr_scheduler.ExponentialLR(o, gamma=self.lr_gamma) for o in (opt_g, opt_d)]

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip (after AMP unscaling) and remember the gradient norm of the network being stepped."""
        which = "g" if optimizer is self.trainer.optimizers[0] else "d"
        norm = clip_gradients((p for group in optimizer.param_groups for p in group["params"]), self.grad_clip,
                              zero_if_not_finite=True)
        if norm is not None:
            self._grad_norms[f"grad_norm_{which}"] = norm.detach()

    # --- validation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        gen = torch.Generator(device="cpu").manual_seed(batch_idx)
        out = self.net(**self.inputs(batch), segment_frames=self.segment_frames, generator=gen)
        real = self.real_segments(batch, out["wav_slice_start"])
        losses = self.generator_losses(batch, out, real, adversarial=False)
        bs = int(real.shape[0])
        losses["loss"] = self.weighted(losses)
        self.log_dict({f"val/{k}": v.float() for k, v in losses.items()}, batch_size=bs, sync_dist=True)
        trainer = self._trainer
        if (batch_idx == 0 and self.num_val_synth > 0 and trainer is not None and trainer.is_global_zero
                and not trainer.sanity_checking):
            self.log_synthesis(batch)

    def synthesizer(self, **overrides: Any) -> YourTTSSynthesizer:
        """A :class:`YourTTSSynthesizer` around the network being trained: the synthesis path."""
        languages = self.languages if getattr(self.net, "emb_l", None) is not None else None
        return YourTTSSynthesizer(self.net, self.speaker_encoder, self.symbols, self.language, self.sample_rate,
                                  languages, device=self.device, **{**self.sampling, **overrides})

    @torch.no_grad()
    def log_synthesis(self, batch: Mapping[str, Any]) -> None:
        """Synthesise the first items from their own phonemes and speaker embedding; log the length ratio."""
        was_training = self.net.training
        synth = self.synthesizer()
        spk = self.speaker_embedding(batch)
        n = min(self.num_val_synth, int(batch["phonemes"].shape[0]))
        ratios, wavs = [], []
        for i in range(n):
            ids = batch["phonemes"][i, : int(batch["phoneme_lengths"][i])].tolist()
            wav = synth.generate(ids, spk[i : i + 1], seed=i)
            wavs.append(wav)
            ratios.append(synth.last_info["frames"] / max(int(batch["frame_lengths"][i]), 1))
        self.net.train(was_training)
        self.log("val/length_ratio", float(sum(ratios) / max(len(ratios), 1)), rank_zero_only=True, batch_size=n)
        from ns2.lit.media import log_media, media_loggers

        media = media_loggers(self.loggers)
        hop = int(self.net.hop_length)
        for i, wav in enumerate(wavs if media else []):
            ref = batch["audio"][i, : int(batch["frame_lengths"][i]) * hop].float().cpu().numpy()
            log_media(media, f"val/synth_{i}", {"reference": ref, "synthesis": wav}, self.sample_rate,
                      int(self.global_step), {})

    # --- checkpoints --------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Write the ``yourtts`` record (:mod:`ns2.inference.yourtts`)."""
        checkpoint[KIND] = make_yourtts_record(net=self.net_kwargs, weights=self.net.state_dict(), symbols=self.symbols,
                                               language=self.language, languages=self.languages,
                                               sample_rate=self.sample_rate, speaker_encoder=self.speaker_encoder,
                                               sampling=self.sampling, config=self.config())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming: the checkpoint must be a YourTTS one of the same network."""
        rec = checkpoint.get(KIND)
        if not isinstance(rec, Mapping) or rec.get("kind") != KIND:
            raise ValueError("YourTTSLit: resuming from a checkpoint without a YourTTS record; expected one written by YourTTSLit")
        if plain(rec.get("net")) != plain(self.net_kwargs):
            raise ValueError(f"YourTTSLit: the checkpoint's network {rec.get('net')} differs from model.net {self.net_kwargs}")
