"""NaturalSpeech 2's training as a thin LightningModule.

:class:`NS2Lit` receives the network's constructor arguments (``net``) and a frozen codec, and owns the
diffusion process (:class:`~ns2.models.ns2.sde.VPSDE`), the losses (:class:`~ns2.losses.ns2.NS2Loss`),
the optimiser and its schedule, gradient clipping, the EMA of the network's weights, logging, and the
checkpoint record (:mod:`ns2.inference.checkpoint`).

One training step, on a batch of the :class:`~ns2.data.datamodule.TTSDataModule` with fields
``phonemes, durations, f0, codes``:

1. ``z0 = codec.codes_to_latent(codes)`` [B, D, T] (rebuilt every step, never stored; zero at padding);
2. the prompt is the dataset's random span ``[prompt_start, prompt_end)`` of each item's own latent:
   ``z_prompt`` [B, D, Tp] (left-aligned, masked), and ``batch["prompt_mask"]`` [B, T] marks the same
   frames in the target, which the diffusion losses exclude (NaturalSpeech 2 §4.1);
3. ``t ~ U(t_eps, 1)``, ``z_t = α_t z0 + σ_t ε`` (zero at padding);
4. ``net(phonemes, durations, log_f0, z_t, t, z_prompt)`` with ground-truth durations and (interpolated)
   log-F0 building the condition; under ``torch.autocast(bfloat16)`` when ``autocast_bf16``;
5. ``NS2Loss`` in float32: data + score + λ·CE-RVQ (through the codec's codebooks, λ = 0.1) over
   target frames, duration L1 over phonemes, pitch L1 over frames.

Optimisation: AdamW over the network's parameters only, a linear warmup to ``lr`` over
``warmup_steps`` then inverse-square-root decay (``LambdaLR``, stepped per optimiser step), gradient
clipping at ``grad_clip`` in :meth:`NS2Lit.on_before_optimizer_step` (after AMP unscaling; leave
``trainer.gradient_clip_val`` unset); a step whose gradient norm is not finite is skipped (its
gradients are zeroed). After every optimiser step the EMA network is updated:
``ema ← d·ema + (1 − d)·net`` with ``d = min(ema_decay, (1 + n) / (10 + n))`` at step n
(``ema_warmup``; a constant ``ema_decay`` without it).

Validation: the same losses with the EMA network (``val_with_ema``), with t and ε drawn from a
generator seeded by the batch index, so successive validations are comparable. On the first
validation batch, ``num_val_synth`` items are synthesised from text + their prompt span with the EMA
network (predicted durations and pitch, ``val_sampler``: DPM-Solver++ 10 steps by default) and
decoded by the codec; audio and a figure (mel of the codec resynthesis of the ground truth and of the
synthesis, log-F0 contours, per-phoneme durations) go to TensorBoard / W&B loggers; other loggers get
the scalars only.

The codec is a frozen submodule (``requires_grad=False``, eval mode whatever the trainer does), outside
the optimiser. At fit start the codec's signature (:func:`ns2.data.codes.codec_signature`) is compared
with the ``codes/meta.json`` the codes were extracted with, and the datamodule's symbol table with
``symbols``.

``net`` is a mapping of :class:`~ns2.models.ns2.NaturalSpeech2` keyword arguments (a Hydra node with
``_target_`` is accepted; the model config passes it un-instantiated with ``_recursive_: false``) or a
``functools.partial`` of the class: the module builds the network itself, so that the same arguments
go into every checkpoint. ``latent_dim: null`` (or absent) takes the codec's latent dimension.

Logged: ``train/{total,data,score,ce_rvq,duration,pitch,grad_norm,lr,ema_decay}``,
``val/{total,data,score,ce_rvq,duration,pitch}`` (and ``val/loss`` = ``val/total``),
``val/synth_frames_ratio`` (predicted / true frames), ``val/synth_latent_rms_ratio``. With
``log_by_kind`` (default) every loss term also per kind of item, ``train/<kind>/<term>`` and
``val/<kind>/<term>`` (kind ``speech`` or ``singing``, from the batch's ``kinds``), when the batch holds
that kind: the loss over that kind's items alone (``NS2Loss(items=...)``, no gradient; the optimised
total is unchanged). Training logs them per step (weighted by the kind's item count); validation
averages them over the epoch weighted by item count and reduced over ranks (a kind may be missing
from some ranks' batches), logged at the epoch's end.

Score conditioning (``net.score_conditioning``, beyond the paper): the batch must also carry the
``notes`` field (``note_pitch``, ``note_start`` per phoneme, :mod:`ns2.data.dataset`), which the
duration and pitch predictors read; validation synthesis passes each item's notes too.

The schedule, gradient clipping and EMA update are :mod:`ns2.lit.optim`'s (shared with
:class:`~ns2.lit.codec.CodecLit`), the figures :mod:`ns2.lit.figures`', validation synthesis
:class:`~ns2.inference.ns2.NS2Synthesizer`'s, the codes' codec check :func:`ns2.data.codes.check_codes_codec`.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from ns2.codec.base import Codec
from ns2.data.codes import check_codes_codec
from ns2.data.manifest import KINDS
from ns2.inference import NS2Synthesizer
from ns2.inference.checkpoint import make_record, plain
from ns2.inference.samplers import NS2_TAU, get_sampler
from ns2.lit.figures import log_mel, synthesis_image
from ns2.lit.finetune import check_base, freeze_except, load_base, same_codec
from ns2.lit.media import log_media, media_loggers
from ns2.lit.optim import InverseSqrtSchedule, clip_gradients, ema_decay_at, update_ema
from ns2.losses.ns2 import DEFAULT_WEIGHTS, NS2Loss
from ns2.models.ns2.model import NaturalSpeech2
from ns2.models.ns2.sde import VPSDE

__all__ = [
    "NS2Lit",
    "BATCH_KEYS",
    "net_kwargs",
    "prompt_latents",
    "frozen_codec",
    "KindMeans",
    "same_network",
]

log = logging.getLogger(__name__)

BATCH_KEYS = ("phonemes", "phoneme_mask", "durations", "log_f0", "codes", "frame_mask", "prompt_start", "prompt_end")
NET_TARGETS = ("ns2.models.ns2.NaturalSpeech2", "ns2.models.ns2.model.NaturalSpeech2")
DEFAULT_SAMPLER = {"name": "dpm_solver_pp", "steps": 10, "tau": NS2_TAU}  # configs/model/ns2.yaml: why
DEFAULT_VAL_SAMPLER = {"name": "dpm_solver_pp", "steps": 10, "tau": NS2_TAU}
FIELDS = {"phonemes", "durations", "f0", "codes"}
NOTE_FIELD = "notes"  # the dataset field of a score-conditioned network (note_pitch, note_start)
# NS2Loss's settings and their defaults (the paper's: CE-RVQ summed over quantisers in the latent space, no
# temperature, the prompt span left out of the duration and pitch losses), read from its signature so they
# are written once; this module trains with the noise-weighted score loss.
LOSS_DEFAULTS = {**{k: p.default for k, p in inspect.signature(NS2Loss).parameters.items() if k not in ("weights", "sde")},
                 "score_weighting": "noise"}


# --- pieces usable on their own ----------------------------------------------------------------------
def net_kwargs(net: Any) -> dict[str, Any]:
    """NaturalSpeech2's constructor kwargs from a mapping (``_target_`` allowed) or a functools.partial."""
    if isinstance(net, functools.partial):
        if not (isinstance(net.func, type) and issubclass(net.func, NaturalSpeech2)) or net.args:
            raise TypeError(f"NS2Lit: net must be a partial of NaturalSpeech2 with keyword arguments only, got {net!r}")
        kw = plain(dict(net.keywords))
    elif isinstance(net, nn.Module):
        raise TypeError(
            "NS2Lit: net must be NaturalSpeech2's constructor arguments (a mapping or a functools.partial), not a "
            "built module: the checkpoint records them to rebuild the network"
        )
    else:
        kw = plain(net)
        if not isinstance(kw, dict):
            raise TypeError(f"NS2Lit: net must be a mapping of NaturalSpeech2 kwargs, got {type(net).__name__}")
        target = kw.pop("_target_", None)
        if target is not None and target not in NET_TARGETS:
            raise ValueError(f"NS2Lit: net._target_ must be one of {list(NET_TARGETS)}, got {target!r}")
        for key in ("_convert_", "_recursive_", "_partial_"):
            kw.pop(key, None)
    kw.pop("codec", None)  # the module passes its own codec's latent dimension
    if "vocab_size" not in kw:
        raise ValueError("NS2Lit: net needs vocab_size (at least the symbol table's size)")
    return kw


def same_network(kw: Mapping[str, Any]) -> dict[str, Any]:
    """NaturalSpeech2 kwargs with the constructor's defaults filled in, for comparing two networks: a
    checkpoint written before a switch existed (e.g. ``score_conditioning``) is the default network."""
    defaults = {k: p.default for k, p in inspect.signature(NaturalSpeech2).parameters.items()
                if p.default is not inspect.Parameter.empty and k != "codec"}
    return plain({**defaults, **dict(kw)})


def prompt_latents(z0: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each item's span ``z0[b, :, start_b:end_b]``, left-aligned and zero-padded.

    z0: [B, D, T]; start, end: [B] frames. -> (z_prompt [B, D, Tp], mask [B, Tp]) with Tp the longest span.
    """
    start = start.to(z0.device).long()
    lengths = (end.to(z0.device).long() - start).clamp(min=0)
    tp = max(int(lengths.max()) if lengths.numel() else 0, 1)
    pos = torch.arange(tp, device=z0.device)
    mask = pos[None, :] < lengths[:, None]
    idx = (start[:, None] + pos[None, :]).clamp(max=z0.shape[-1] - 1)
    z = z0.gather(2, idx[:, None, :].expand(-1, z0.shape[1], -1))
    return z * mask[:, None, :].to(z.dtype), mask


def _symbol_table(symbols: Any):
    from ns2.text.symbols import DEFAULT_SYMBOLS, SymbolTable, get_symbol_table

    if symbols is None:
        return DEFAULT_SYMBOLS
    if isinstance(symbols, SymbolTable):
        return symbols
    if isinstance(symbols, str):
        return get_symbol_table(symbols)
    if isinstance(symbols, Mapping):
        return SymbolTable.from_dict(symbols)
    raise TypeError(f"NS2Lit: symbols must be a table version (e.g. 'ipa-v1') or a SymbolTable, got {type(symbols).__name__}")


def _sampler_settings(spec: Mapping[str, Any] | None, default: Mapping[str, Any], what: str) -> dict[str, Any]:
    settings = {**default, **plain(dict(spec or {}))}
    if "name" not in settings:
        raise ValueError(f"NS2Lit: {what} needs a name (euler_ode, reverse_sde, heun_ode, dpm_solver_pp)")
    kw = {k: v for k, v in settings.items() if k != "name"}
    get_sampler(settings["name"], **kw)  # fails here on bad settings
    return settings


def compile_boxes(net: nn.Module, settings: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Opt-in ``torch.compile`` of the training network's boxes, in place (``nn.Module.compile``: the
    parameters and state-dict keys stay as they are, so checkpoints do not change). ``settings``:
    ``{modules: [diffusion, ...], **torch.compile arguments}`` (e.g. ``mode``, ``backend``, ``dynamic``);
    None or ``{}`` compiles nothing. Returns the settings as applied."""
    if not settings:
        return None
    opts = plain(dict(settings))
    modules = [str(m) for m in opts.pop("modules", ["diffusion"])]
    children = dict(net.named_children())
    unknown = sorted(set(modules) - set(children))
    if unknown or not modules:
        raise ValueError(f"NS2Lit: compile.modules {modules}: expected a non-empty subset of {sorted(children)}")
    for name in modules:
        children[name].compile(**opts)
    return {"modules": modules, **opts}


def frozen_codec(codec: Any, owner: str = "NS2Lit") -> Codec:
    """The codec a LightningModule trains against, built from a Hydra node if need be, frozen; it must carry
    its constructor ``kwargs`` so checkpoints can rebuild it."""
    if codec is None:
        raise ValueError(f"{owner}: no codec given; select one with codec=from_file codec.source=<file> (configs/codec/)")
    if not isinstance(codec, nn.Module):
        spec = plain(codec)
        if not isinstance(spec, Mapping) or "_target_" not in spec:
            raise TypeError(f"{owner}: codec must be a Codec or a config with _target_, got {type(codec).__name__}")
        from hydra.utils import instantiate

        codec = instantiate(spec)
    if not isinstance(codec, Codec):
        raise TypeError(f"{owner}: codec must be an ns2.codec.Codec, got {type(codec).__name__}")
    if not isinstance(getattr(codec, "kwargs", None), Mapping):
        raise TypeError(f"{owner}: codec {type(codec).__name__} has no constructor kwargs; checkpoints cannot rebuild it")
    return codec.freeze()


class KindMeans:
    """Item-weighted means of per-kind loss terms over an epoch: ``update(kind, terms, n)`` adds the
    terms of a batch's ``n`` items of ``kind``; ``compute(reduce)`` sums over ranks with ``reduce``
    (a tensor -> its sum over ranks; the same fixed layout, every kind of :data:`KINDS` by every term, on
    every rank) and returns ``{"<kind>/<term>": mean}`` for the kinds seen anywhere."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.terms = list(terms)
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(KINDS), len(self.terms), dtype=torch.float64)
        self.counts = torch.zeros(len(KINDS), 1, dtype=torch.float64)

    def update(self, kind: str, terms: Mapping[str, torch.Tensor], n: int) -> None:
        i = KINDS.index(kind)
        for j, term in enumerate(self.terms):
            if term in terms:
                self.sums[i, j] += float(terms[term]) * n
        self.counts[i] += n

    def compute(self, reduce: Any = None, device: torch.device | str = "cpu") -> dict[str, float]:
        table = torch.cat([self.sums, self.counts], dim=1).to(device)
        if reduce is not None:
            table = reduce(table)
        table = table.cpu()
        out = {}
        for i, kind in enumerate(KINDS):
            n = float(table[i, -1])
            if n > 0:
                out.update({f"{kind}/{term}": float(table[i, j]) / n for j, term in enumerate(self.terms)})
        return out


# --- the module --------------------------------------------------------------------------------------
class NS2Lit(L.LightningModule):
    """NaturalSpeech 2 training (module docstring).

    Args:
        net: NaturalSpeech2 kwargs (mapping or partial; ``latent_dim`` null/absent: the codec's).
        codec: a :class:`~ns2.codec.base.Codec` with constructor ``kwargs`` (an RVQCodec, e.g. from
            :func:`ns2.codec.load_codec`), or a Hydra node building one. Frozen here.
        sde: VPSDE settings ``{beta_min, beta_max[, schedule]}`` (default 0.05, 20).
        t_eps: training times are drawn from U(t_eps, 1).
        loss: ``{weights: {data, score, ce_rvq, duration, pitch}, score_weighting, ce_rvq_checkpoint}``;
            defaults: weights 1, 1, 0.1, 1, 1 and ``score_weighting="noise"`` (‖ε̂ − ε‖²; ``"paper"``
            is the unweighted formula, whose weight α²/Σ² grows like 1/t² near t = 0).
        lr, betas, weight_decay: AdamW (NaturalSpeech 2: lr 5e-4).
        warmup_steps: linear warmup, then inverse-sqrt decay (NaturalSpeech 2: 32K).
        grad_clip: max gradient norm (None: no clipping; the norm is still logged).
        ema_decay, ema_warmup: the EMA of the network's weights (module docstring).
        autocast_bf16: run the network under ``torch.autocast(dtype=bfloat16)``; codec and losses
            stay float32 in any case.
        sampler: the default sampler recorded in checkpoints for synthesis (``{name, steps, tau, ...}``;
            NaturalSpeech 2: Euler ODE, 150 steps, τ = 1.2²).
        val_sampler: the sampler of validation synthesis (DPM-Solver++ 10 steps).
        num_val_synth: items synthesised on the first validation batch (0: none).
        symbols: the phoneme table's version (or a SymbolTable); ``net.vocab_size`` must cover it.
        language: the text front end's language, recorded for synthesis.
        pitch_voiced_only: pitch loss on voiced frames only (default: every frame, against the
            interpolated log-F0 the pitch embedding is trained with).
        val_with_ema: validation losses with the EMA network (default) or the raw one.
        init_from: fine-tuning: an NS2 checkpoint (``.ckpt`` or exported ``.pt``) whose EMA weights start
            the network and its EMA; ``net=None`` takes its network arguments, ``codec=None`` its codec
            (a codec given must be the same one), and its symbol table replaces ``symbols``.
        trainable: the network's submodules that train (e.g. ``[prompt_encoder, diffusion]``); the
            others are frozen and left out of the optimiser. None: all of them.
        log_by_kind: also log every loss term per kind of item (module docstring).
    """

    def __init__(
        self,
        net: Mapping[str, Any] | functools.partial | None,
        codec: Codec | Mapping[str, Any] | None,
        sde: Mapping[str, Any] | None = None,
        t_eps: float = 1e-5,
        loss: Mapping[str, Any] | None = None,
        lr: float = 5e-4,
        betas: Sequence[float] = (0.9, 0.999),
        weight_decay: float = 0.01,
        warmup_steps: int = 32000,
        grad_clip: float | None = 1.0,
        ema_decay: float = 0.9999,
        ema_warmup: bool = True,
        autocast_bf16: bool = False,
        sampler: Mapping[str, Any] | None = None,
        val_sampler: Mapping[str, Any] | None = None,
        num_val_synth: int = 1,
        symbols: Any = "ipa-v1",
        language: str = "en-us",
        pitch_voiced_only: bool = False,
        val_with_ema: bool = True,
        init_from: str | None = None,
        trainable: Sequence[str] | None = None,
        compile: Mapping[str, Any] | None = None,
        log_by_kind: bool = True,
    ):
        super().__init__()
        base, base_kw = load_base(init_from) if init_from else (None, None)
        if base is not None:
            net = dict(base_kw) if net is None else net
            if codec is None:
                codec = base.codec
            symbols = base.symbols
        codec = self._codec(codec)
        kw = net_kwargs(net)
        if kw.get("latent_dim") is None:
            kw["latent_dim"] = int(codec.latent_dim)
        elif int(kw["latent_dim"]) != int(codec.latent_dim):
            raise ValueError(
                f"NS2Lit: net.latent_dim={kw['latent_dim']} differs from the codec's latent_dim={codec.latent_dim}; "
                "set model.net.latent_dim=null to take it from the codec"
            )
        self.symbols = _symbol_table(symbols)
        if int(kw["vocab_size"]) < len(self.symbols):
            raise ValueError(
                f"NS2Lit: net.vocab_size={kw['vocab_size']} does not cover symbol table {self.symbols.version!r} "
                f"({len(self.symbols)} symbols)"
            )
        if not 0.0 <= float(ema_decay) < 1.0:
            raise ValueError(f"NS2Lit: ema_decay must be in [0, 1), got {ema_decay}")
        if not 0.0 <= float(t_eps) < 1.0:
            raise ValueError(f"NS2Lit: t_eps must be in [0, 1), got {t_eps}")
        if float(lr) <= 0:
            raise ValueError(f"NS2Lit: lr must be > 0, got {lr}")

        self.net_kwargs = kw
        self.net = NaturalSpeech2(**kw)
        if base is not None:
            check_base(base, base_kw, kw, codec, init_from)
            self.net.load_state_dict(base.net.state_dict())
        self.init_from = None if init_from is None else str(init_from)
        self.trainable = None if trainable is None else [str(t) for t in trainable]
        if self.trainable is not None:
            freeze_except(self.net, self.trainable)
        self.ema = NaturalSpeech2(**kw)
        self.ema.load_state_dict(self.net.state_dict())
        self.ema.eval().requires_grad_(False)
        self.codec = codec
        self.compile_settings = compile_boxes(self.net, compile)

        sde_settings = {"beta_min": 0.05, "beta_max": 20.0, "schedule": "linear", **plain(dict(sde or {}))}
        self.sde = VPSDE(**sde_settings)
        self.sde_settings = sde_settings
        loss_settings = {"weights": dict(DEFAULT_WEIGHTS), **LOSS_DEFAULTS}
        given = plain(dict(loss or {}))
        unknown = sorted(set(given) - set(loss_settings))
        if unknown:
            raise ValueError(f"NS2Lit: unknown loss settings {unknown}; expected some of {sorted(loss_settings)}")
        loss_settings.update(given)
        loss_settings["weights"] = {**DEFAULT_WEIGHTS, **dict(loss_settings["weights"] or {})}
        self.loss_fn = NS2Loss(sde=self.sde, **loss_settings)
        self.loss_settings = loss_settings
        self.sampler_settings = _sampler_settings(sampler, DEFAULT_SAMPLER, "sampler")
        self.val_sampler_settings = _sampler_settings(val_sampler, DEFAULT_VAL_SAMPLER, "val_sampler")

        self.t_eps = float(t_eps)
        self.lr = float(lr)
        self.betas = tuple(float(b) for b in betas)
        self.weight_decay = float(weight_decay)
        self.warmup_steps = int(warmup_steps)
        self.grad_clip = float(grad_clip) if grad_clip else None
        self.ema_decay = float(ema_decay)
        self.ema_warmup = bool(ema_warmup)
        self.autocast_bf16 = bool(autocast_bf16)
        self.num_val_synth = int(num_val_synth)
        self.language = str(language)
        self.pitch_voiced_only = bool(pitch_voiced_only)
        self.val_with_ema = bool(val_with_ema)
        self.log_by_kind = bool(log_by_kind)
        self._val_kinds = KindMeans([k for k, v in self.loss_fn.weights.items() if v] + ["total"])
        self._mel: nn.Module | None = None

        self.save_hyperparameters(self.config())

    # --- construction -------------------------------------------------------------------------------
    @staticmethod
    def _codec(codec: Any) -> Codec:
        return frozen_codec(codec)

    def config(self) -> dict[str, Any]:
        """The hyperparameters as plain containers (Lightning's ``hyper_parameters`` and ``ns2.config``)."""
        return plain({
            "net": self.net_kwargs,
            "codec": {"class": type(self.codec).__name__, "kwargs": self.codec.kwargs},
            "sde": self.sde_settings,
            "t_eps": self.t_eps,
            "loss": self.loss_settings,
            "lr": self.lr,
            "betas": list(self.betas),
            "weight_decay": self.weight_decay,
            "warmup_steps": self.warmup_steps,
            "grad_clip": self.grad_clip,
            "ema_decay": self.ema_decay,
            "ema_warmup": self.ema_warmup,
            "autocast_bf16": self.autocast_bf16,
            "sampler": self.sampler_settings,
            "val_sampler": self.val_sampler_settings,
            "num_val_synth": self.num_val_synth,
            "symbols": self.symbols.version,
            "language": self.language,
            "pitch_voiced_only": self.pitch_voiced_only,
            "val_with_ema": self.val_with_ema,
            "init_from": self.init_from,
            "trainable": self.trainable,
            "compile": self.compile_settings,
            "log_by_kind": self.log_by_kind,
        })

    # --- modes: the codec and the EMA network never train ------------------------------------------------
    def train(self, mode: bool = True) -> NS2Lit:
        super().train(mode)
        self.codec.eval()
        self.ema.eval()
        return self

    def on_train_epoch_start(self) -> None:
        self.codec.eval()
        self.ema.eval()

    # --- checks at fit start ----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        trainer = getattr(self, "_trainer", None)
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is None:
            return
        fields = getattr(dm, "fields", None)
        if fields is not None:
            missing = sorted(FIELDS - set(fields))
            if missing:
                raise ValueError(
                    f"NS2Lit: the datamodule lacks fields {missing}; set data.datamodule.fields=[phonemes,durations,f0,codes]"
                )
            if self.net.score_conditioning and NOTE_FIELD not in fields:
                raise ValueError(
                    "NS2Lit: the network is score-conditioned (model.net.score_conditioning=true) but the datamodule "
                    "lacks the notes field; set data.datamodule.fields=[phonemes,durations,f0,codes,notes]"
                )
        if hasattr(dm, "symbols"):
            table = _symbol_table(dm.symbols)
            if table != self.symbols:
                raise ValueError(
                    f"NS2Lit: the datamodule's symbol table {table.version!r} differs from the model's "
                    f"{self.symbols.version!r}: {table.diff(self.symbols)}"
                )
        manifest = getattr(dm, "manifest", None)
        if manifest is not None and not check_codes_codec(self.codec, manifest):
            log.warning("%s: no codes/meta.json beside the manifest; the codec could not be checked against the codes",
                        manifest)

    # --- the training pass --------------------------------------------------------------------------------
    def _net_context(self):
        if self.autocast_bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _fp32(self):
        return torch.autocast(device_type=self.device.type, enabled=False)

    @staticmethod
    def _check_batch(batch: Mapping[str, Any]) -> None:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise KeyError(
                f"NS2Lit: the batch lacks {missing} (keys: {sorted(batch)}); "
                "set data.datamodule.fields=[phonemes,durations,f0,codes]"
            )

    @torch.no_grad()
    def latents(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """z0 = codec.codes_to_latent(codes): [B, D, T] float32, zero at padded frames."""
        with self._fp32():
            z0 = self.codec.codes_to_latent(batch["codes"].long()).float()
        return z0 * batch["frame_mask"][:, None, :].to(z0.dtype)

    @staticmethod
    def note_inputs(batch: Mapping[str, Any], net: NaturalSpeech2) -> dict[str, torch.Tensor]:
        """``{note_pitch, note_start}`` [B, L] of the batch for a score-conditioned network, {} otherwise."""
        if not getattr(net, "score_conditioning", False):
            return {}
        if "note_pitch" not in batch:
            raise KeyError(
                "NS2Lit: the network is score-conditioned (model.net.score_conditioning=true): the batch needs "
                "note_pitch and note_start; set data.datamodule.fields=[phonemes,durations,f0,codes,notes]"
            )
        return {"note_pitch": batch["note_pitch"], "note_start": batch.get("note_start")}

    def compute_losses(
        self,
        batch: Mapping[str, Any],
        net: NaturalSpeech2 | None = None,
        *,
        z0: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        z_prompt: torch.Tensor | None = None,
        by_kind: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Every loss term (unweighted) and ``total`` for one batch.

        ``net``: the network (default: the trained one). Optional fixed inputs, for evaluation and tests:
        ``z0`` [B, D, T] (the target latent; default from the codes), ``t`` [B], ``noise`` ε [B, D, T],
        ``z_prompt`` [B, D, Tp] (default: the prompt spans of ``z0``). ``by_kind``: also
        ``"<kind>/<term>"`` for every kind in ``batch["kinds"]``, the terms over that kind's items alone
        (detached; :meth:`kind_losses`).
        """
        self._check_batch(batch)
        net = self.net if net is None else net
        frame_mask = batch["frame_mask"]
        durations = batch["durations"]
        lengths = batch.get("frame_lengths")
        if lengths is not None and not torch.equal(durations.sum(-1), lengths.to(durations.device)):
            raise ValueError(
                f"NS2Lit: durations do not sum to the frame counts (items {batch.get('ids')}); "
                "the manifest's durations and codes disagree"
            )
        if z0 is None:
            z0 = self.latents(batch)
        b = z0.shape[0]
        fm = frame_mask[:, None, :].to(z0.dtype)
        span_mask = batch.get("prompt_mask")
        uses_prompt = net.prompt_encoder is not None
        p_mask = None
        if uses_prompt:
            if z_prompt is None:
                z_prompt, p_mask = prompt_latents(z0, batch["prompt_start"], batch["prompt_end"])
            else:
                lengths_p = (batch["prompt_end"] - batch["prompt_start"]).to(z0.device)
                p_mask = torch.arange(z_prompt.shape[-1], device=z0.device)[None, :] < lengths_p[:, None]
            empty = ~p_mask.any(-1)
            if bool(empty.any()):
                ids = [batch["ids"][i] for i in torch.nonzero(empty).flatten().tolist()] if "ids" in batch else []
                raise ValueError(
                    f"NS2Lit: items {ids} have an empty prompt span; set data.datamodule.prompt with min_frames >= 1"
                )
        else:
            z_prompt = None
        if t is None:
            t = self.sde.sample_t(b, self.t_eps, device=z0.device)
        if noise is None:
            noise = torch.randn_like(z0)
        z_t = self.sde.sample_zt(z0, t.to(z0.dtype), noise) * fm
        notes = self.note_inputs(batch, net)
        with self._net_context():
            out = net(batch["phonemes"], batch["phoneme_mask"], durations, batch["log_f0"], z_t, t, z_prompt, p_mask,
                      **notes)
        inputs = dict(
            z0_hat=out.z0_hat.float(), z0=z0, z_t=z_t, t=t, frame_mask=frame_mask, prompt_mask=span_mask,
            codes=batch["codes"], codec=self.codec, log_dur_hat=out.log_duration.float(), durations=durations,
            phone_mask=batch["phoneme_mask"], log_f0_hat=out.log_f0.float(), log_f0=batch["log_f0"].float(),
            voiced=batch.get("voiced") if self.pitch_voiced_only else None,
        )
        with self._fp32():
            losses = self.loss_fn(**inputs)
            if by_kind and batch.get("kinds") is not None:
                losses.update(self.kind_losses(batch["kinds"], inputs, losses))
        return losses

    @torch.no_grad()
    def kind_losses(self, kinds: Sequence[str], inputs: Mapping[str, Any], losses: Mapping[str, torch.Tensor]
                    ) -> dict[str, torch.Tensor]:
        """``{"<kind>/<term>": value}`` for every kind among ``kinds`` [B]: the loss terms over that
        kind's items alone (``NS2Loss(items=...)`` on the detached ``inputs``; a batch of one kind
        reuses ``losses``)."""
        present = [k for k in KINDS if k in kinds] + sorted(set(kinds) - set(KINDS))
        if len(present) == 1:
            return {f"{present[0]}/{k}": v.detach() for k, v in losses.items()}
        detached = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        out: dict[str, torch.Tensor] = {}
        for kind in present:
            items = torch.tensor([k == kind for k in kinds], dtype=torch.bool, device=detached["z0"].device)
            out.update({f"{kind}/{k}": v for k, v in self.loss_fn(**detached, items=items).items()})
        return out

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch, by_kind=self.log_by_kind)
        bs = int(batch["codes"].shape[0])
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items() if "/" not in k}, batch_size=bs)
        kinds = batch.get("kinds") if self.log_by_kind else None
        for kind in dict.fromkeys(kinds or []):  # each kind weighted by its item count
            self.log_dict({f"train/{k}": v for k, v in losses.items() if k.startswith(f"{kind}/")},
                          batch_size=sum(k == kind for k in kinds))
        self.log("train/loss", losses["total"].detach(), prog_bar=True, logger=False, batch_size=bs)
        opt = self.optimizers(use_pl_optimizer=False) if self._trainer is not None else None
        if opt is not None:
            self.log("train/lr", float(opt.param_groups[0]["lr"]), batch_size=bs)
        self.log("train/ema_decay", self.ema_decay_at(self.global_step), batch_size=bs)
        if "ce_rvq" in losses:
            self.log("train/ce_rvq_temperature", float(self.loss_fn.ce_rvq_temperature), batch_size=bs)
        return losses["total"]

    # --- optimisation ---------------------------------------------------------------------------------
    def configure_optimizers(self):
        groups = [{"params": [p for p in self.net.parameters() if p.requires_grad]}]  # freeze_except: frozen left out
        loss_params = [p for p in self.loss_fn.parameters() if p.requires_grad]
        if loss_params:  # the learned CE-RVQ temperature: no weight decay
            groups.append({"params": loss_params, "weight_decay": 0.0})
        opt = torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)
        sch = torch.optim.lr_scheduler.LambdaLR(opt, InverseSqrtSchedule(self.warmup_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sch, "interval": "step", "frequency": 1}}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the network's gradient (after AMP unscaling); zero it when its norm is not finite."""
        norm = clip_gradients(self.net.parameters(), self.grad_clip, zero_if_not_finite=True)
        if norm is None:
            return
        if not torch.isfinite(norm):
            log.warning("step %d: gradient norm %s; the step's gradients are zeroed", self.global_step, float(norm))
        self.log("train/grad_norm", norm.detach().float())

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        self.update_ema()

    # --- EMA ------------------------------------------------------------------------------------------
    def ema_decay_at(self, step: int) -> float:
        """The decay used for the update after optimiser step ``step`` (0-based; :func:`~ns2.lit.optim.ema_decay_at`)."""
        return ema_decay_at(step, self.ema_decay, self.ema_warmup)

    def update_ema(self, decay: float | None = None) -> float:
        """``ema ← d·ema + (1 − d)·net`` over parameters (buffers are copied); returns d."""
        d = self.ema_decay_at(self.global_step) if decay is None else float(decay)
        update_ema(self.ema, self.net, d)
        return d

    # --- validation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._check_batch(batch)
        net = self.ema if self.val_with_ema else self.net
        z0 = self.latents(batch)
        g = torch.Generator(device="cpu").manual_seed(1000003 + int(batch_idx))
        t = (self.t_eps + (1.0 - self.t_eps) * torch.rand(z0.shape[0], generator=g)).to(z0.device)
        noise = torch.randn(z0.shape, generator=g).to(z0.device)
        losses = self.compute_losses(batch, net, z0=z0, t=t, noise=noise, by_kind=self.log_by_kind)
        bs = int(z0.shape[0])
        self.log_dict({f"val/{k}": v.float() for k, v in losses.items() if "/" not in k}, batch_size=bs, sync_dist=True)
        kinds = batch.get("kinds") if self.log_by_kind else None
        for kind in dict.fromkeys(kinds or []):  # val/<kind>/<term> at the epoch's end
            if kind in KINDS:
                terms = {k.split("/", 1)[1]: v for k, v in losses.items() if k.startswith(f"{kind}/")}
                self._val_kinds.update(kind, terms, sum(k == kind for k in kinds))
        self.log("val/loss", losses["total"].float(), batch_size=bs, sync_dist=True, logger=False, prog_bar=True)
        trainer = self._trainer
        if (batch_idx == 0 and self.num_val_synth > 0 and trainer is not None and trainer.is_global_zero
                and not trainer.sanity_checking):
            self.log_synthesis(batch, z0)

    def on_validation_epoch_start(self) -> None:
        self._val_kinds.reset()

    def on_validation_epoch_end(self) -> None:
        """``val/<kind>/<term>``: the epoch's item-weighted means, summed over ranks."""
        trainer = self._trainer
        reduce = None
        if trainer is not None and trainer.world_size > 1:
            reduce = functools.partial(trainer.strategy.reduce, reduce_op="sum")
        means = self._val_kinds.compute(reduce, self.device) if self.log_by_kind else {}
        if means:  # already the same on every rank: the sync (a mean) changes nothing
            self.log_dict({f"val/{k}": v for k, v in means.items()}, sync_dist=True)
        self._val_kinds.reset()

    def synthesizer(self, sampler: Mapping[str, Any] | None = None, net: NaturalSpeech2 | None = None):
        """An :class:`~ns2.inference.ns2.NS2Synthesizer` around the EMA network (or ``net``), the codec
        and the SDE, with ``sampler`` settings (default ``val_sampler``): the path synthesis takes."""
        settings = dict(self.val_sampler_settings if sampler is None else sampler)
        name, steps, tau = settings.pop("name"), settings.pop("steps", None), settings.pop("tau", NS2_TAU)
        return NS2Synthesizer(self.ema if net is None else net, self.codec, self.sde, self.symbols, self.language,
                              sampler=name, steps=steps, tau=tau, sampler_options=settings, device=self.device)

    @torch.no_grad()
    def synthesize_latent(
        self,
        phonemes: torch.Tensor,
        z_prompt: torch.Tensor | None,
        *,
        net: NaturalSpeech2 | None = None,
        sampler: Mapping[str, Any] | None = None,
        seed: int = 0,
        max_frames: int | None = None,
        note_pitch: torch.Tensor | None = None,
        note_start: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """Text + prompt -> a latent, with predicted durations and pitch (one item), through
        :meth:`NS2Synthesizer.sample_latent <ns2.inference.ns2.NS2Synthesizer.sample_latent>`.

        phonemes: [1, L]; z_prompt: [1, D, Tp]; note_pitch, note_start: [1, L] (a score-conditioned
        network's notes). ``max_frames`` caps the predicted length (an untrained duration predictor can
        ask for any length). Returns (z [1, D, T], NS2Condition).
        """
        synth = self.synthesizer(sampler, net)
        with self._fp32():
            return synth.sample_latent(phonemes, z_prompt, seed=seed, max_frames=max_frames, note_pitch=note_pitch,
                                       note_start=note_start)

    @torch.no_grad()
    def log_synthesis(self, batch: Mapping[str, Any], z0: torch.Tensor) -> None:
        """Synthesise the first items of a batch with the EMA network; log scalars, and audio and figures
        to the loggers that take them."""
        media = media_loggers(self.loggers)
        ratios, rms = [], []
        for i in range(min(self.num_val_synth, z0.shape[0])):
            n_ph = int(batch["phoneme_mask"][i].sum())
            n_fr = int(batch["frame_mask"][i].sum())
            s, e = int(batch["prompt_start"][i]), int(batch["prompt_end"][i])
            phonemes = batch["phonemes"][i : i + 1, :n_ph]
            z_prompt = z0[i : i + 1, :, s:e] if e > s else None
            notes = {k: v[i : i + 1, :n_ph] for k, v in self.note_inputs(batch, self.ema).items() if v is not None}
            z, cond = self.synthesize_latent(phonemes, z_prompt, seed=i, max_frames=4 * n_fr + 16, **notes)
            ratios.append(z.shape[-1] / max(n_fr, 1))
            ref_rms = z0[i, :, :n_fr].pow(2).mean().sqrt()
            rms.append(float(z.pow(2).mean().sqrt() / ref_rms.clamp(min=1e-8)))
            if media:
                self._log_media(media, i, z, z0[i : i + 1, :, :n_fr], cond, batch["log_f0"][i, :n_fr],
                                batch["durations"][i, :n_ph])
        if ratios:
            self.log("val/synth_frames_ratio", float(np.mean(ratios)), rank_zero_only=True, batch_size=len(ratios))
            self.log("val/synth_latent_rms_ratio", float(np.mean(rms)), rank_zero_only=True, batch_size=len(rms))

    def _log_media(self, loggers, i: int, z: torch.Tensor, z_ref: torch.Tensor, cond: Any, log_f0: torch.Tensor,
                   durations: torch.Tensor) -> None:
        with self._fp32():
            syn = self.codec.decode(z.float())[0, 0].clamp(-1, 1).cpu().numpy()
            ref = self.codec.decode(z_ref.float())[0, 0].clamp(-1, 1).cpu().numpy()
        image = synthesis_image(
            self._mel_spec(ref), self._mel_spec(syn), log_f0.float().cpu().numpy(), cond.log_f0[0].float().cpu().numpy(),
            durations.cpu().numpy(), cond.durations[0].cpu().numpy(),
        )
        log_media(loggers, f"val/synth_{i}", {"reference (codec)": ref, "synthesis": syn}, int(self.codec.sample_rate),
                  int(self.global_step), {"plots": image})

    def _mel_spec(self, wav: np.ndarray) -> np.ndarray:
        """Log-mel [n_mels, frames] of a waveform at the codec's rate and hop."""
        if self._mel is None:
            from ns2.modules.mel import MelSpectrogram

            sr, hop = int(self.codec.sample_rate), int(self.codec.hop_length)
            n_fft = 1024 if hop <= 256 else 2048
            self._mel = MelSpectrogram(sr, n_fft=n_fft, hop_length=hop, win_length=min(4 * hop, n_fft), n_mels=80,
                                       f_max=min(8000.0, sr / 2))
        return log_mel(wav, self._mel)

    # --- checkpoints -----------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Write the ``ns2`` record (:mod:`ns2.inference.checkpoint`)."""
        checkpoint["ns2"] = make_record(
            net=self.net_kwargs, sde=self.sde_settings, sampler=self.sampler_settings, symbols=self.symbols,
            language=self.language, codec=self.codec, ema=self.ema.state_dict(), config=self.config(),
        )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming: the checkpoint must be an NS2 one, of the same network and codec as this module."""
        rec = checkpoint.get("ns2")
        if not isinstance(rec, Mapping) or rec.get("kind") != "ns2":
            raise ValueError("NS2Lit: resuming from a checkpoint without an NS2 record; expected one written by NS2Lit")
        if same_network(rec.get("net") or {}) != same_network(self.net_kwargs):
            raise ValueError(f"NS2Lit: the checkpoint's network {rec.get('net')} differs from model.net {self.net_kwargs}")
        codec = rec.get("codec") or {}
        if not same_codec(self.codec, codec.get("kwargs"), codec.get("state_dict") or {}):
            raise ValueError("NS2Lit: the checkpoint was trained with another codec than codec.source; "
                             "resume with the codec file it was trained with")

