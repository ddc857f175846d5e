"""NaturalSpeech 2's training losses, masked: every mean runs over valid elements only.

Shapes: ``B`` batch, ``D`` latent dim, ``T`` frames, ``N`` phonemes, ``n`` quantisers. Masks are bool,
true on valid positions (``[B, T]`` or ``[B, 1, T]``; 0/1 floats are accepted). Values at invalid
positions never reach a loss (they are selected away with ``torch.where``, so even inf/NaN there is
harmless in the forward pass), and padding a batch leaves every loss unchanged.

Diffusion loss (NaturalSpeech 2 §3.2), for z_t = ρ(z0, t) + σ_t ε, ρ(z0, t) = α_t z0, Σ_t = σ_t²::

    L_diff = ‖ẑ0 − z0‖² + ‖Σ_t⁻¹(ρ(ẑ0, t) − z_t) − ∇log p_t(z_t | z0)‖² + λ_ce-rvq · L_ce-rvq

* :func:`data_loss`: ‖ẑ0 − z0‖², the mean over valid elements (frames × D).
* :func:`score_loss`: the second term. ``Σ_t⁻¹(ρ(ẑ0, t) − z_t)`` is the score the prediction implies and
  ∇log p_t(z_t | z0) = −(z_t − ρ(z0, t))/Σ_t = Σ_t⁻¹(ρ(z0, t) − z_t) = −ε/σ_t the true conditional score
  (same sign convention: ∇ of the log-density, pointing from z_t towards the mean). Their difference is
  exactly Σ_t⁻¹ α_t (ẑ0 − z0), which is how it is computed (no cancellation of two O(1/Σ_t) terms), so
  the term equals α_t²/Σ_t² · ‖ẑ0 − z0‖²: a data loss weighted by SNR_t/Σ_t, which grows like
  1/(β_min t)² as t → 0. ``weighting="noise"`` multiplies it by Σ_t, giving ‖σ_t(ŝ − s)‖² = ‖ε̂ − ε‖²
  (the ε-prediction loss of Grad-TTS and of public NS2 code).
* :func:`ce_rvq_loss`: for quantiser j, r_j = ẑ0 − Σ_{i<j} e_i (ground-truth embeddings), logits =
  ``codec.codebook_logits(r_j, j, metric) / τ`` (negative squared distances in the latent space to the
  codes' embeddings, the paper's; or as the quantiser measures them; over a temperature τ),
  cross-entropy with the ground-truth code, a mean over valid frames per quantiser;
  the quantisers' terms are **summed** (the paper: L_ce-rvq = Σ_j CE_j), or averaged with
  ``reduction="mean"``. λ_ce-rvq = 0.1 multiplies that sum. Chance level (uniform logits) is
  n·ln K for the sum, ln K for the mean.
  With DAC's factorised, L2-normalised codebooks the quantiser's distances lie in [0, 4] and
  ``in_proj`` does not invert ``out_proj``: measured that way, even ẑ0 = z0 leaves the loss near
  chance and the true code is rarely the arg-max (:func:`ce_rvq_range` measures it), so the default
  ``metric="latent"`` measures in the latent space, as the paper's codebooks (256-dim, in the latent
  space; ``codec=ns2_paper``) do. :class:`NS2Loss` can also learn τ (``ce_rvq_learn_temperature``).

``NS2Loss(..., items=...)`` restricts every term to some items of the batch (a [B] bool mask, e.g. the
singing ones): since every term is a mean over valid elements, this is exactly the loss of those items
batched alone (what per-kind logging reports).

The prompt span is excluded from every loss: the three diffusion terms and the pitch loss use
``frame_mask & ~prompt_mask``, the duration loss skips the phonemes with a frame in the prompt
(:func:`phonemes_outside`), as the predictors read the prompt through attention.

Duration: the predictor outputs log(1 + d), d in frames (so zero-length phonemes are finite);
:func:`duration_loss` is L1 on that scale (:func:`~ns2.models.ns2.length_regulator.log_duration_target`;
:func:`~ns2.models.ns2.length_regulator.durations_from_log` inverts it). Pitch: :func:`pitch_loss` is
L1 on log-F0 over valid frames (voiced ones with ``voiced``).
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ns2.models.ns2.length_regulator import durations_from_log, log_duration_target
from ns2.models.ns2.sde import VPSDE, expand_like

__all__ = [
    "DEFAULT_WEIGHTS",
    "SCORE_WEIGHTINGS",
    "CE_RVQ_REDUCTIONS",
    "NS2Loss",
    "as_mask",
    "masked_mean",
    "data_loss",
    "score_loss",
    "ce_rvq_loss",
    "ce_rvq_range",
    "phonemes_outside",
    "duration_loss",
    "pitch_loss",
    "log_duration_target",
    "durations_from_log",
]

DEFAULT_WEIGHTS: dict[str, float] = {"data": 1.0, "score": 1.0, "ce_rvq": 0.1, "duration": 1.0, "pitch": 1.0}
SCORE_WEIGHTINGS = ("paper", "noise")
CE_RVQ_REDUCTIONS = ("sum", "mean")


# --- masks ------------------------------------------------------------------------------------
def as_mask(mask: torch.Tensor | None, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """A bool mask [B, L] for ``like`` [B, ..., L]; None means all valid. Accepts [B, L] or [B, 1, L]."""
    b, length = like.shape[0], like.shape[-1]
    if mask is None:
        return torch.ones(b, length, dtype=torch.bool, device=like.device)
    if mask.dim() == 3 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.dim() != 2 or mask.shape[0] != b or mask.shape[1] != length:
        raise ValueError(f"{name} must have shape [B, L] = [{b}, {length}] (or [B, 1, L]), got {tuple(mask.shape)}")
    return mask.to(device=like.device).bool()


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x [B, ..., L] over the positions where mask [B, L] is true (all middle dims count);
    0 (still attached to the graph) when nothing is valid."""
    m = mask.reshape(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[-1])
    total = torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum()
    count = mask.sum() * (x[0, ..., 0].numel() if x.dim() > 2 else 1)
    return total / count.clamp(min=1).to(x.dtype)


def _clean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x [B, ..., L] with invalid positions set to 0."""
    m = mask.reshape(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[-1])
    return torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device))


def _f32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision inputs are upcast: the score term's weights reach 1e12 (fp16 overflows at 65504)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _same_shape(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{na} {tuple(a.shape)} and {nb} {tuple(b.shape)} must have the same shape")


# --- diffusion losses -------------------------------------------------------------------------
def data_loss(z0_hat: torch.Tensor, z0: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """‖ẑ0 − z0‖², mean over valid elements. z0_hat, z0: [B, D, T]; mask: [B, T]."""
    _same_shape(z0_hat, z0, "z0_hat", "z0")
    m = as_mask(mask, z0)
    return masked_mean((_clean(_f32(z0_hat), m) - _clean(_f32(z0), m)).pow(2), m)


def score_loss(
    z0_hat: torch.Tensor,
    z0: torch.Tensor,
    z_t: torch.Tensor,
    t: torch.Tensor,
    sde: VPSDE,
    mask: torch.Tensor | None = None,
    weighting: str = "paper",
) -> torch.Tensor:
    """‖Σ_t⁻¹(ρ(ẑ0, t) − z_t) − ∇log p_t(z_t | z0)‖², mean over valid elements.

    z0_hat, z0, z_t: [B, D, T]; t: [B] (> 0); mask: [B, T]. ``weighting="paper"`` is the formula as
    written (= α_t²/Σ_t² ‖ẑ0 − z0‖²); ``"noise"`` scales it by Σ_t (= ‖ε̂ − ε‖²). z_t cancels from
    the difference of the two scores; it is checked for shape only.
    """
    if weighting not in SCORE_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {SCORE_WEIGHTINGS}, got {weighting!r}")
    _same_shape(z0_hat, z0, "z0_hat", "z0")
    _same_shape(z_t, z0, "z_t", "z0")
    m = as_mask(mask, z0)
    z0_hat, z0 = _f32(z0_hat), _f32(z0)
    tt = expand_like(t, z0)
    var = sde.variance(tt)
    # Σ⁻¹(α ẑ0 − z_t) − Σ⁻¹(α z0 − z_t) = Σ⁻¹ α (ẑ0 − z0)
    diff = sde.alpha(tt) * (_clean(z0_hat, m) - _clean(z0, m)) / var
    sq = diff.pow(2)
    if weighting == "noise":
        sq = sq * var
    return masked_mean(sq, m)


def ce_rvq_loss(
    z0_hat: torch.Tensor,
    codes: torch.Tensor,
    codec,
    mask: torch.Tensor | None = None,
    *,
    temperature: torch.Tensor | float = 1.0,
    reduction: str = "sum",
    metric: str = "latent",
    use_checkpoint: bool = False,
) -> torch.Tensor:
    """NaturalSpeech 2's CE-RVQ loss.

    z0_hat: [B, D, T]; codes: [B, n, T] ground-truth codes of the first n ≤ n_q quantisers; ``codec``
    provides ``codebook_logits(residual, j, metric) -> [B, K, T]`` and ``layer_latent(codes_j, j) ->
    [B, D, T]`` (see :class:`ns2.codec.Codec`; ``metric`` ``"latent"``: distances to the codes'
    latent-space embeddings, the paper's; ``"quantizer"``: the quantiser's own); mask: [B, T]. The
    logits are divided by ``temperature`` τ (a float or a scalar tensor, e.g. a learned one). Each quantiser's cross-entropy is a mean over valid frames;
    ``reduction`` ``"sum"`` (the paper) adds the n quantisers' terms, ``"mean"`` averages them.
    Quantisers are scored one at a time (peak memory of one [B, K, T] logit tensor in the forward
    pass; with ``use_checkpoint`` also in the backward pass, at the cost of recomputing each layer's
    logits).
    """
    if reduction not in CE_RVQ_REDUCTIONS:
        raise ValueError(f"reduction must be one of {CE_RVQ_REDUCTIONS}, got {reduction!r}")
    if codes.dim() != 3 or codes.shape[0] != z0_hat.shape[0] or codes.shape[2] != z0_hat.shape[2]:
        raise ValueError(
            f"codes must have shape [B, n, T] = [{z0_hat.shape[0]}, n, {z0_hat.shape[2]}], got {tuple(codes.shape)}"
        )
    m = as_mask(mask, z0_hat)
    codes = codes.long().masked_fill(~m[:, None, :], 0)
    residual = _clean(_f32(z0_hat), m)

    def layer_ce(r: torch.Tensor, target: torch.Tensor, j: int, tau: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(codec.codebook_logits(r, j, metric) / tau, target, reduction="none")  # [B, T]

    tau = torch.as_tensor(temperature, dtype=residual.dtype, device=residual.device)
    total = z0_hat.new_zeros(())
    n = codes.shape[1]
    for j in range(n):
        if use_checkpoint and torch.is_grad_enabled():
            ce = checkpoint(layer_ce, residual, codes[:, j], j, tau, use_reentrant=False)
        else:
            ce = layer_ce(residual, codes[:, j], j, tau)
        total = total + masked_mean(ce, m)
        if j + 1 < n:
            residual = residual - codec.layer_latent(codes[:, j], j)
    return total / max(n, 1) if reduction == "mean" else total


@torch.no_grad()
def ce_rvq_range(
    z0: torch.Tensor,
    codes: torch.Tensor,
    codec,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    noise_levels: tuple[float, ...] = (0.1, 0.3, 1.0),
    metric: str = "latent",
) -> dict[str, float]:
    """How much signal the CE-RVQ term can carry with this codec and temperature.

    z0: [B, D, T] a latent of ``codes`` [B, n, T] (the diffusion target Σ_j e_j, or the encoder's
    continuous output the codes were quantised from); mask [B, T]. Returns per-quantiser means
    (``reduction="mean"``; multiply by n for the paper's sum): ``chance`` = ln K (uniform logits),
    ``oracle`` = the loss at ẑ0 = z0 (what a perfect prediction scores), ``noisy_<s>`` =
    the loss at ẑ0 = z0 + s·std(z0)·ε (seeded), and ``logit_span`` = the mean over valid frames and
    quantisers of max − min of the logits (with the temperature), ``oracle_top1`` = how often the
    true code is the arg-max at ẑ0 = z0, ``n``, ``codebook_size``.
    """
    m = as_mask(mask, z0)
    n = codes.shape[1]
    k = int(codec.codebook_size)
    out = {"n": float(n), "codebook_size": float(k), "temperature": float(temperature), "chance": math.log(k),
           "oracle": float(ce_rvq_loss(z0, codes, codec, m, temperature=temperature, reduction="mean", metric=metric))}
    std = float(masked_mean((z0 - masked_mean(z0, m)).pow(2), m).sqrt())
    g = torch.Generator(device="cpu").manual_seed(0)
    eps = torch.randn(z0.shape, generator=g).to(z0)
    for s in noise_levels:
        out[f"noisy_{s:g}"] = float(ce_rvq_loss(z0 + s * std * eps, codes, codec, m, temperature=temperature,
                                                reduction="mean", metric=metric))
    spans, top1, residual = [], [], z0.float()
    for j in range(n):
        logits = codec.codebook_logits(residual, j, metric) / temperature  # [B, K, T]
        spans.append(masked_mean((logits.amax(1) - logits.amin(1)), m))
        top1.append(masked_mean((logits.argmax(1) == codes[:, j]).float(), m))
        residual = residual - codec.layer_latent(codes[:, j].long(), j)
    out["logit_span"] = float(torch.stack(spans).mean())
    out["oracle_top1"] = float(torch.stack(top1).mean())
    return out


# --- prosody losses ---------------------------------------------------------------------------
def phonemes_outside(durations: torch.Tensor, frame_span: torch.Tensor) -> torch.Tensor:
    """Phonemes none of whose frames lies in a frame span (e.g. the prompt).

    durations: [B, N] frames per phoneme; frame_span: [B, T] bool, true inside the span (T ≥ every
    item's total). A zero-length phoneme counts as inside when the frame it sits at is. -> [B, N] bool.
    """
    d = durations.long().clamp(min=0)
    span = frame_span.bool()
    b, t = span.shape
    prefix = torch.cat([span.new_zeros(b, 1, dtype=torch.long), span.long().cumsum(-1)], dim=-1)  # [B, T + 1]
    ends = d.cumsum(-1).clamp(max=t)
    starts = (ends - d).clamp(max=t)
    inside = prefix.gather(1, ends) - prefix.gather(1, starts) > 0
    at = span.gather(1, starts.clamp(max=max(t - 1, 0))) & (starts < t) if t else torch.zeros_like(inside)
    return ~torch.where(d > 0, inside, at)


def duration_loss(
    log_dur_hat: torch.Tensor, durations: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """L1 between predicted log(1 + d) and log(1 + d) of the true durations (frames).
    log_dur_hat, durations: [B, N]; mask: [B, N] valid phonemes."""
    _same_shape(log_dur_hat, durations, "log_dur_hat", "durations")
    m = as_mask(mask, durations, "phone_mask")
    log_dur_hat = _f32(log_dur_hat)
    target = log_duration_target(durations).to(log_dur_hat.dtype)
    return masked_mean((_clean(log_dur_hat, m) - _clean(target, m)).abs(), m)


def pitch_loss(log_f0_hat: torch.Tensor, log_f0: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L1 on log-F0. log_f0_hat, log_f0: [B, T]; mask: [B, T], voiced & valid frames."""
    _same_shape(log_f0_hat, log_f0, "log_f0_hat", "log_f0")
    m = as_mask(mask, log_f0, "pitch mask")
    return masked_mean((_clean(_f32(log_f0_hat), m) - _clean(_f32(log_f0), m)).abs(), m)


# --- the sum ----------------------------------------------------------------------------------
class NS2Loss(nn.Module):
    """All of NaturalSpeech 2's losses, weighted: total = Σ_k w_k L_k.

    Args:
        weights: overrides of :data:`DEFAULT_WEIGHTS` (``data`` 1, ``score`` 1, ``ce_rvq`` 0.1 = λ_ce-rvq,
            ``duration`` 1, ``pitch`` 1). A term with weight 0 is not computed (``score: 0`` drops the
            score term, as some reimplementations do; ``ce_rvq: 0`` is the paper's "w/o CE loss" ablation).
        sde: the SDE the training latents z_t were drawn from (default ``VPSDE()``).
        score_weighting: ``"paper"`` or ``"noise"`` (see :func:`score_loss`).
        ce_rvq_checkpoint: recompute CE-RVQ logits in the backward pass (saves n_q·B·K·T floats).
        ce_rvq_reduction: ``"sum"`` over quantisers (the paper; λ = 0.1 multiplies the sum) or ``"mean"``.
        ce_rvq_temperature: τ dividing the CE-RVQ logits (1: the paper's raw negative distances); with
            ``ce_rvq_learn_temperature`` the initial value of a learned τ (a parameter of this module,
            ``log_temperature``; train it with the network).
        ce_rvq_metric: ``"latent"`` (the paper: distances in the latent space ẑ0 lives in, to the codes'
            latent-space embeddings) or ``"quantizer"`` (the quantiser's search distance; for DAC's
            factorised codebooks the true code is then rarely the nearest even at ẑ0 = z0).
        prompt_in_prosody_losses: score the duration and pitch predictions on the prompt span too
            (the behaviour before the paper's exclusion; default False: the prompt is excluded).
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        sde: VPSDE | None = None,
        score_weighting: str = "paper",
        ce_rvq_checkpoint: bool = False,
        ce_rvq_reduction: str = "sum",
        ce_rvq_temperature: float = 1.0,
        ce_rvq_learn_temperature: bool = False,
        ce_rvq_metric: str = "latent",
        prompt_in_prosody_losses: bool = False,
    ):
        super().__init__()
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown loss weights {sorted(unknown)}; expected keys of {sorted(DEFAULT_WEIGHTS)}")
        if score_weighting not in SCORE_WEIGHTINGS:
            raise ValueError(f"score_weighting must be one of {SCORE_WEIGHTINGS}, got {score_weighting!r}")
        self.weights = {**DEFAULT_WEIGHTS, **{k: float(v) for k, v in (weights or {}).items()}}
        self.sde = VPSDE() if sde is None else sde
        self.score_weighting = score_weighting
        self.ce_rvq_checkpoint = bool(ce_rvq_checkpoint)
        if ce_rvq_reduction not in CE_RVQ_REDUCTIONS:
            raise ValueError(f"ce_rvq_reduction must be one of {CE_RVQ_REDUCTIONS}, got {ce_rvq_reduction!r}")
        if not float(ce_rvq_temperature) > 0:
            raise ValueError(f"ce_rvq_temperature must be > 0, got {ce_rvq_temperature}")
        self.ce_rvq_reduction = ce_rvq_reduction
        if ce_rvq_metric not in ("latent", "quantizer"):
            raise ValueError(f"ce_rvq_metric must be 'latent' or 'quantizer', got {ce_rvq_metric!r}")
        self.ce_rvq_metric = ce_rvq_metric
        self.ce_rvq_learn_temperature = bool(ce_rvq_learn_temperature)
        log_tau = torch.tensor(math.log(float(ce_rvq_temperature)))
        if self.ce_rvq_learn_temperature:
            self.log_temperature = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_temperature", log_tau, persistent=False)
        self.prompt_in_prosody_losses = bool(prompt_in_prosody_losses)

    @property
    def ce_rvq_temperature(self) -> torch.Tensor:
        """τ of the CE-RVQ logits (a scalar tensor; differentiable when learned)."""
        return self.log_temperature.float().exp()

    def extra_repr(self) -> str:
        return (f"weights={self.weights}, sde={self.sde}, score_weighting={self.score_weighting!r}, "
                f"ce_rvq_reduction={self.ce_rvq_reduction!r}, ce_rvq_metric={self.ce_rvq_metric!r}, ce_rvq_temperature={float(self.ce_rvq_temperature):.4g}"
                f"{' (learned)' if self.ce_rvq_learn_temperature else ''}, "
                f"prompt_in_prosody_losses={self.prompt_in_prosody_losses}")

    def forward(
        self,
        *,
        z0_hat: torch.Tensor,
        z0: torch.Tensor,
        z_t: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        codes: torch.Tensor | None = None,
        codec=None,
        log_dur_hat: torch.Tensor | None = None,
        durations: torch.Tensor | None = None,
        phone_mask: torch.Tensor | None = None,
        log_f0_hat: torch.Tensor | None = None,
        log_f0: torch.Tensor | None = None,
        voiced: torch.Tensor | None = None,
        items: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Every computed term (unweighted) and ``total`` (weighted sum).

        z0_hat, z0, z_t: [B, D, T]; t: [B]; frame_mask, prompt_mask (true on prompt frames), voiced:
        [B, T]; codes: [B, n, T]; log_dur_hat, durations, phone_mask: [B, N]; log_f0_hat, log_f0: [B, T];
        items: [B] bool, the items the terms are over (None: all; none valid: every term 0).
        """
        w = self.weights
        keep = None
        if items is not None:
            keep = items.to(device=z0.device, dtype=torch.bool).reshape(-1)
            if keep.shape[0] != z0.shape[0]:
                raise ValueError(f"items must have shape [B] = [{z0.shape[0]}], got {tuple(items.shape)}")
            frame_mask = as_mask(frame_mask, z0, "frame_mask") & keep[:, None]
            if durations is not None:
                phone_mask = as_mask(phone_mask, durations, "phone_mask") & keep[:, None].to(durations.device)
        fm = as_mask(frame_mask, z0, "frame_mask")
        pm = None if prompt_mask is None else as_mask(prompt_mask, z0, "prompt_mask")
        diff_mask = fm if pm is None else fm & ~pm
        prosody_on_prompt = pm is None or self.prompt_in_prosody_losses
        out: dict[str, torch.Tensor] = {}
        if w["data"]:
            out["data"] = data_loss(z0_hat, z0, diff_mask)
        if w["score"]:
            if z_t is None or t is None:
                raise ValueError("the score loss needs z_t and t (or set weights.score=0)")
            out["score"] = score_loss(z0_hat, z0, z_t, t, self.sde, diff_mask, self.score_weighting)
        if w["ce_rvq"]:
            if codes is None or codec is None:
                raise ValueError("the CE-RVQ loss needs codes and codec (or set weights.ce_rvq=0)")
            out["ce_rvq"] = ce_rvq_loss(z0_hat, codes, codec, diff_mask, temperature=self.ce_rvq_temperature,
                                        reduction=self.ce_rvq_reduction, metric=self.ce_rvq_metric,
                                        use_checkpoint=self.ce_rvq_checkpoint)
        if w["duration"]:
            if log_dur_hat is None or durations is None:
                raise ValueError("the duration loss needs log_dur_hat and durations (or set weights.duration=0)")
            ph = as_mask(phone_mask, durations, "phone_mask")
            if not prosody_on_prompt:
                ph = ph & phonemes_outside(durations * ph.long(), pm)
            out["duration"] = duration_loss(log_dur_hat, durations, ph)
        if w["pitch"]:
            if log_f0_hat is None or log_f0 is None:
                raise ValueError("the pitch loss needs log_f0_hat and log_f0 (or set weights.pitch=0)")
            fm_p = as_mask(frame_mask, log_f0, "frame_mask")
            if not prosody_on_prompt:
                fm_p = fm_p & ~pm
            if voiced is not None:
                fm_p = fm_p & as_mask(voiced, log_f0, "voiced")
            out["pitch"] = pitch_loss(log_f0_hat, log_f0, fm_p)
        total = z0_hat.new_zeros(())
        for k, v in out.items():
            total = total + w[k] * v
        out["total"] = total
        return out
