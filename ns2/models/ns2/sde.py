"""The variance-preserving SDE of NaturalSpeech 2's latent diffusion.

Forward process on t ∈ [0, 1] (Song et al. 2021; Grad-TTS; NaturalSpeech 2 §3.2)::

    dz = −½ β_t z dt + √β_t dw,          β_t = β_min + (β_max − β_min) t   (schedule "linear")

Closed forms, with the integral B(t) = ∫_0^t β_s ds = β_min t + ½ (β_max − β_min) t²::

    p(z_t | z_0) = N(ρ(z_0, t), Σ_t I),  ρ(z_0, t) = α_t z_0,  α_t = exp(−½ B(t)),  Σ_t = 1 − exp(−B(t))

``Σ_t`` is the *variance* (NaturalSpeech 2 writes it Σ_t = I − e^{−∫β}); ``σ_t = √Σ_t`` is the standard
deviation. Since α_t² + Σ_t = 1 the process is variance preserving.

Score convention. The score of the conditional is

    ∇_{z_t} log p(z_t | z_0) = −(z_t − ρ(z_0, t)) / Σ_t = Σ_t⁻¹ (ρ(z_0, t) − z_t) = −ε / σ_t,

for z_t = ρ(z_0, t) + σ_t ε. The network predicts ẑ0 (data prediction), and the score it implies is the
same expression with ẑ0 in place of z_0 (:meth:`VPSDE.score_from_z0`); with ẑ0 = E[z_0 | z_t] this is
the exact marginal score ∇ log p_t(z_t) (Tweedie).

Drifts for integrating *backwards* in time (dt < 0), f(z, t) = −½ β_t z and g(t) = √β_t:

* probability-flow ODE:  dz = [f − ½ g² ∇log p_t] dt = −½ β_t (z + ∇log p_t) dt   (:meth:`ode_drift`)
* reverse-time SDE:      dz = [f − g² ∇log p_t] dt + g dw̄                            (:meth:`sde_drift`)

Prior / temperature. Sampling starts from z_1 ~ N(0, τ⁻¹ I), i.e. ``z_1 = ε / √τ`` with ε ~ N(0, I)
(:meth:`prior_sample`). NaturalSpeech 2 uses τ = 1.2², a start noise of standard deviation 1/1.2 ≈ 0.833;
τ = 1 is the SDE's own prior (the true marginal at t = 1 is N(α_1 z_0, Σ_1) with α_1 ≈ 6.7e-3 for the
default schedule, so N(0, I) up to that).

All time arguments are tensors ``t: [B]`` (or scalars / any shape for the scalar functions); methods
taking a latent broadcast t over its trailing dimensions (``z: [B, D, T]``).
"""
from __future__ import annotations

import math

import torch

__all__ = ["VPSDE", "expand_like"]

_SCHEDULES = ("linear",)


def expand_like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """View a per-item value t: [B] (or a scalar) as [B, 1, ..., 1] to broadcast against x: [B, ...]."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        return t
    if t.dim() != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"t must be a scalar or have shape [B]=[{x.shape[0]}], got {tuple(t.shape)}")
    return t.reshape(-1, *([1] * (x.dim() - 1)))


class VPSDE:
    """dz = −½ β_t z dt + √β_t dw on t ∈ [0, 1] with a linear β schedule.

    Args:
        beta_min: β_0.
        beta_max: β_1.
        schedule: the β schedule; only ``"linear"`` (β_t = β_min + (β_max − β_min) t).
    """

    def __init__(self, beta_min: float = 0.05, beta_max: float = 20.0, schedule: str = "linear"):
        if schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {_SCHEDULES}, got {schedule!r}")
        if not 0.0 < float(beta_min) <= float(beta_max):
            raise ValueError(f"need 0 < beta_min <= beta_max, got beta_min={beta_min}, beta_max={beta_max}")
        self.beta_min = float(beta_min)
        self.beta_max = float(beta_max)
        self.schedule = schedule

    def __repr__(self) -> str:
        return f"VPSDE(beta_min={self.beta_min}, beta_max={self.beta_max}, schedule={self.schedule!r})"

    # --- the schedule (any tensor shape) ------------------------------------------------------
    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """β_t."""
        return self.beta_min + (self.beta_max - self.beta_min) * t

    def int_beta(self, t: torch.Tensor) -> torch.Tensor:
        """B(t) = ∫_0^t β_s ds = β_min t + ½ (β_max − β_min) t²."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t

    def inverse_int_beta(self, b: torch.Tensor) -> torch.Tensor:
        """The t with B(t) = b (b ≥ 0)."""
        d = self.beta_max - self.beta_min
        if d == 0.0:
            return b / self.beta_min
        # t = 2b / (β_min + √(β_min² + 2 d b)): the cancellation-free root of ½ d t² + β_min t − b = 0
        return 2.0 * b / (self.beta_min + torch.sqrt(self.beta_min**2 + 2.0 * d * b))

    def log_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """log α_t = −½ B(t): the log of the mean coefficient of p(z_t | z_0)."""
        return -0.5 * self.int_beta(t)

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """α_t = exp(−½ B(t))."""
        return torch.exp(self.log_alpha(t))

    def variance(self, t: torch.Tensor) -> torch.Tensor:
        """Σ_t = 1 − exp(−B(t)) (0 at t = 0)."""
        return -torch.expm1(-self.int_beta(t))

    def std(self, t: torch.Tensor) -> torch.Tensor:
        """σ_t = √Σ_t."""
        return torch.sqrt(self.variance(t))

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """λ_t = log(α_t / σ_t) = −½ log(e^{B(t)} − 1) (+∞ at t = 0)."""
        return -0.5 * torch.log(torch.expm1(self.int_beta(t)))

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`log_snr`: B(t) = log(1 + e^{−2λ}) = softplus(−2λ)."""
        return self.inverse_int_beta(torch.nn.functional.softplus(-2.0 * lam))

    def sigma_bar(self, t: torch.Tensor) -> torch.Tensor:
        """σ_t / α_t = √(e^{B(t)} − 1): the noise level of the scaled latent z_t / α_t (EDM's σ)."""
        return torch.sqrt(torch.expm1(self.int_beta(t)))

    # --- the forward process ------------------------------------------------------------------
    def marginal(self, z0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z_t | z_0) = N(mean, std²). z0: [B, ...], t: [B] -> (mean [B, ...], std [B, 1, ..., 1])."""
        tt = expand_like(t, z0)
        return z0 * self.alpha(tt), self.std(tt)

    def sample_zt(self, z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """z_t = α_t z_0 + σ_t ε. z0, noise: [B, ...], t: [B] -> [B, ...]."""
        mean, std = self.marginal(z0, t)
        return mean + std * noise

    def sample_t(
        self,
        batch: int,
        eps: float = 1e-5,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Training times t ~ U(eps, 1). -> [batch]."""
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {eps}")
        u = torch.rand(batch, generator=generator, device=device, dtype=dtype)
        return eps + (1.0 - eps) * u

    @staticmethod
    def prior_sample(
        shape: tuple[int, ...] | torch.Size,
        tau: float = 1.2**2,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Start noise z_1 ~ N(0, τ⁻¹ I): ``randn(shape) / √τ`` (τ = 1.2² in NaturalSpeech 2)."""
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype) / math.sqrt(tau)

    # --- scores and drifts (data prediction) --------------------------------------------------
    def score_from_z0(self, z_t: torch.Tensor, z0_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """∇ log p(z_t | z_0 = ẑ0) = −(z_t − α_t ẑ0) / Σ_t. [B, ...], t: [B] -> [B, ...] (t > 0)."""
        tt = expand_like(t, z_t)
        return -(z_t - self.alpha(tt) * z0_hat) / self.variance(tt)

    def drift(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward drift f(z, t) = −½ β_t z."""
        return -0.5 * self.beta(expand_like(t, z)) * z

    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        """g(t) = √β_t (same shape as t)."""
        return torch.sqrt(self.beta(t))

    def ode_drift(self, z_t: torch.Tensor, z0_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Probability-flow ODE dz/dt = −½ β_t (z_t + ∇log p_t), the score from ẑ0."""
        beta = self.beta(expand_like(t, z_t))
        return -0.5 * beta * (z_t + self.score_from_z0(z_t, z0_hat, t))

    def sde_drift(self, z_t: torch.Tensor, z0_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Reverse-time SDE drift f − g² ∇log p_t = −β_t (½ z_t + ∇log p_t); integrate with dt < 0 and
        add ``sde_diffusion(t) · √|dt| · ε``."""
        beta = self.beta(expand_like(t, z_t))
        return -beta * (0.5 * z_t + self.score_from_z0(z_t, z0_hat, t))

    def sde_diffusion(self, t: torch.Tensor) -> torch.Tensor:
        """Diffusion coefficient of the reverse-time SDE, g(t) = √β_t."""
        return self.diffusion(t)
