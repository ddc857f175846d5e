"""Samplers for NaturalSpeech 2's latent diffusion (data prediction under a :class:`VPSDE`).

Every sampler takes a ``denoise_fn(z_t [B, D, T], t [B]) -> ẑ0 [B, D, T]`` (a closure over the
conditions: phoneme hiddens, prompt, ...), the SDE, and a shape or a start latent, and returns z0.
They all start from the same prior noise for the same seed: ``z_1 = ε / √τ`` with
``ε = randn(shape, generator)`` (NaturalSpeech 2: τ = 1.2²). Padded frames are zeroed with the mask at
the start and after every step, so the denoiser never sees garbage there.

=================  =========================================================  =============  ==========
name               method                                                     default grid   NFE
=================  =========================================================  =============  ==========
``euler_ode``      Euler on the probability-flow ODE dz/dt = −½β(z + ∇log p)  uniform in t   steps
                   (NaturalSpeech 2's sampler, 150 steps)
``reverse_sde``    Euler–Maruyama on the reverse-time SDE                     uniform in t   steps
``heun_ode``       Heun (2nd order) on the same ODE, written in the scaled    logsnr         2·steps − 1
                   variables x̄ = z/α_t, σ̄ = σ_t/α_t, where it reads
                   dx̄/dσ̄ = (x̄ − ẑ0)/σ̄ (EDM's form)
``dpm_solver_pp``  DPM-Solver++ (2M, data prediction), exponential            logsnr         steps
                   integrator in log-SNR time λ = log(α_t/σ_t)
=================  =========================================================  =============  ==========

Time grids (:func:`time_grid`) run from t = 1 to t = 0. ``uniform`` is linspace(1, 0); ``logsnr`` and
``karras`` space the first ``steps − 1`` intervals uniformly in λ_t resp. in σ̄^{1/7} from t = 1 to
``t_min`` and end with one step from ``t_min`` to 0 (a plain denoising step for the exponential
integrators; Euler on t = 0 is never evaluated, so no sampler divides by Σ_0 = 0).

:func:`ode_encode` integrates the same ODE forwards (t: 0 → 1); with :func:`source_aware` it gives
NaturalSpeech 2's source-aware diffusion for voice conversion / speech enhancement: encode the source
latent with the source condition, decode with the target condition.
"""
from __future__ import annotations

import abc
import math
from typing import Callable, ClassVar

import torch

from ns2.models.ns2.sde import VPSDE

__all__ = [
    "Denoiser",
    "Callback",
    "Sampler",
    "EulerODE",
    "ReverseSDE",
    "HeunODE",
    "DPMSolverPP",
    "SAMPLERS",
    "get_sampler",
    "time_grid",
    "prior_noise",
    "euler_ode",
    "reverse_sde",
    "heun_ode",
    "dpm_solver_pp",
    "ode_encode",
    "source_aware",
]

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``denoise_fn(z_t [B, D, T], t [B]) -> ẑ0 [B, D, T]``."""

Callback = Callable[[int, float, torch.Tensor, torch.Tensor], None]
"""``callback(step, t, z_t, z0_hat)``, called after each denoiser evaluation of the main steps."""

GRIDS = ("uniform", "logsnr", "karras")
NS2_TAU = 1.2**2


# --- shared pieces --------------------------------------------------------------------------
def time_grid(
    sde: VPSDE, steps: int, kind: str = "uniform", *, t_min: float = 1e-3, rho: float = 7.0
) -> list[float]:
    """``steps + 1`` decreasing times from 1 to 0 (see the module docstring for the kinds)."""
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if kind not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {kind!r}")
    if not 0.0 < t_min < 1.0:
        raise ValueError(f"t_min must be in (0, 1), got {t_min}")
    steps = int(steps)
    if kind == "uniform":
        return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64).tolist()
    if steps == 1:
        return [1.0, 0.0]
    ends = torch.tensor([1.0, t_min], dtype=torch.float64)
    u = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    if kind == "logsnr":
        lam = sde.log_snr(ends)
        ts = sde.t_from_log_snr(lam[0] + u * (lam[1] - lam[0]))
    else:  # karras: uniform in σ̄^{1/ρ}
        sb = sde.sigma_bar(ends) ** (1.0 / rho)
        sbar = (sb[0] + u * (sb[1] - sb[0])) ** rho
        ts = sde.inverse_int_beta(torch.log1p(sbar**2))
    ts = ts.tolist()
    ts[0], ts[-1] = 1.0, t_min
    return ts + [0.0]


def _mask(mask: torch.Tensor | None, shape: torch.Size, like: torch.Tensor) -> torch.Tensor | None:
    """mask: [B, T] or [B, 1, T] (bool / 0-1) -> float [B, 1, T] for a latent of ``shape`` [B, D, T]."""
    if mask is None:
        return None
    if mask.dim() == 2:
        mask = mask[:, None, :]
    if mask.dim() != 3 or mask.shape[0] != shape[0] or mask.shape[1] != 1 or mask.shape[2] != shape[-1]:
        raise ValueError(
            f"mask must have shape [B, T] or [B, 1, T] with B={shape[0]}, T={shape[-1]}, got {tuple(mask.shape)}"
        )
    return mask.to(device=like.device, dtype=like.dtype)


def _apply(z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return z if mask is None else z * mask


def prior_noise(
    shape: tuple[int, ...] | torch.Size,
    tau: float = NS2_TAU,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """z_1 ~ N(0, τ⁻¹ I) = randn(shape) / √τ.

    Drawn from ``generator`` (on its device), else from a CPU generator seeded with ``seed`` (so a seed
    gives the same noise on every device), else from the global RNG; then moved to ``device``.
    """
    if generator is None and seed is not None:
        generator = _seeded(seed)
    gen_device = generator.device if generator is not None else device
    z = VPSDE.prior_sample(shape, tau, generator=generator, device=gen_device, dtype=dtype)
    return z if device is None else z.to(device)


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def _randn_like(z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like z, drawn on the generator's device, returned on z's."""
    device = generator.device if generator is not None else z.device
    return torch.randn(z.shape, generator=generator, device=device, dtype=z.dtype).to(z.device)


def _times(t: float, z: torch.Tensor) -> torch.Tensor:
    return torch.full((z.shape[0],), float(t), device=z.device, dtype=z.dtype)


def _scalar(fn: Callable[[torch.Tensor], torch.Tensor], t: float) -> float:
    return float(fn(torch.tensor(float(t), dtype=torch.float64)))


# --- samplers -------------------------------------------------------------------------------
class Sampler(abc.ABC):
    """A reverse-time integrator from t = 1 to t = 0.

    Args:
        steps: number of time steps (NFE: see :attr:`nfe`); default :attr:`default_steps`.
        tau: prior temperature: z_1 ~ N(0, τ⁻¹ I).
        grid: the time grid (see :func:`time_grid`).
        t_min: last non-zero time of the ``logsnr`` / ``karras`` grids.
    """

    name: ClassVar[str]
    default_grid: ClassVar[str] = "uniform"
    default_steps: ClassVar[int] = 150

    def __init__(
        self, steps: int | None = None, tau: float = NS2_TAU, grid: str | None = None, t_min: float = 1e-3
    ):
        steps = self.default_steps if steps is None else steps
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if float(tau) <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.steps = int(steps)
        self.tau = float(tau)
        self.grid = self.default_grid if grid is None else grid
        if self.grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {self.grid!r}")
        if not 0.0 < float(t_min) < 1.0:
            raise ValueError(f"t_min must be in (0, 1), got {t_min}")
        self.t_min = float(t_min)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(steps={self.steps}, tau={self.tau}, grid={self.grid!r})"

    @property
    def nfe(self) -> int:
        """Denoiser evaluations per sample."""
        return self.steps

    def __call__(
        self,
        denoise_fn: Denoiser,
        sde: VPSDE,
        shape: tuple[int, ...] | torch.Size | None = None,
        *,
        mask: torch.Tensor | None = None,
        z1: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        callback: Callback | None = None,
    ) -> torch.Tensor:
        """Sample z0: [B, D, T].

        Either ``shape`` (the start is :func:`prior_noise` with this sampler's τ, from ``generator`` or
        ``seed``) or ``z1`` (the start latent itself, used as given: e.g. :func:`ode_encode`'s output).
        ``mask``: [B, T] or [B, 1, T], true on valid frames. The reverse SDE draws its per-step noise from
        the same generator after the prior noise, so a seed fixes the whole sample.
        """
        if generator is None and seed is not None:
            generator = _seeded(seed)
        if z1 is None:
            if shape is None:
                raise ValueError("give either shape=[B, D, T] or z1=[B, D, T]")
            z1 = prior_noise(shape, self.tau, generator=generator, device=device, dtype=dtype)
        elif shape is not None and tuple(shape) != tuple(z1.shape):
            raise ValueError(f"shape {tuple(shape)} disagrees with z1 of shape {tuple(z1.shape)}")
        m = _mask(mask, z1.shape, z1)
        ts = time_grid(sde, self.steps, self.grid, t_min=self.t_min)
        return self._integrate(denoise_fn, sde, _apply(z1, m), m, ts, generator, callback)

    @abc.abstractmethod
    def _integrate(
        self,
        denoise_fn: Denoiser,
        sde: VPSDE,
        z: torch.Tensor,
        mask: torch.Tensor | None,
        ts: list[float],
        generator: torch.Generator | None,
        callback: Callback | None,
    ) -> torch.Tensor: ...


class EulerODE(Sampler):
    """Euler on the probability-flow ODE in t: z ← z + (t_{i+1} − t_i) · (−½β(z + ∇log p(z|ẑ0))).

    NaturalSpeech 2's sampler (150 steps, τ = 1.2²).
    """

    name = "euler_ode"

    def _integrate(self, denoise_fn, sde, z, mask, ts, generator, callback):
        for i in range(len(ts) - 1):
            t = _times(ts[i], z)
            z0_hat = denoise_fn(z, t)
            if callback is not None:
                callback(i, ts[i], z, z0_hat)
            z = _apply(z + (ts[i + 1] - ts[i]) * sde.ode_drift(z, z0_hat, t), mask)
        return z


class ReverseSDE(Sampler):
    """Euler–Maruyama on the reverse-time SDE: z ← z − h·(f − g²∇log p) + g √h ε; no noise is added on
    the step that ends at t = 0. Per-step noise comes from ``generator`` after the prior noise."""

    name = "reverse_sde"

    def _integrate(self, denoise_fn, sde, z, mask, ts, generator, callback):
        for i in range(len(ts) - 1):
            t = _times(ts[i], z)
            z0_hat = denoise_fn(z, t)
            if callback is not None:
                callback(i, ts[i], z, z0_hat)
            dt = ts[i + 1] - ts[i]
            z = z + dt * sde.sde_drift(z, z0_hat, t)
            if ts[i + 1] > 0.0:
                z = z + _scalar(sde.sde_diffusion, ts[i]) * math.sqrt(-dt) * _randn_like(z, generator)
            z = _apply(z, mask)
        return z


class HeunODE(Sampler):
    """Heun's 2nd-order method on the probability-flow ODE.

    The ODE is integrated in the scaled variables x̄ = z/α_t, σ̄ = σ_t/α_t, where it is
    dx̄/dσ̄ = (x̄ − ẑ0)/σ̄ (Karras et al. 2022); this is an exact change of variables of
    dz/dt = −½β(z + ∇log p), not a different ODE. The step that ends at t = 0 is an Euler step (it returns
    ẑ0), so NFE = 2·steps − 1.
    """

    name = "heun_ode"
    default_grid = "logsnr"
    default_steps = 20

    @property
    def nfe(self) -> int:
        return 2 * self.steps - 1

    def _integrate(self, denoise_fn, sde, z, mask, ts, generator, callback):
        for i in range(len(ts) - 1):
            s, t = ts[i], ts[i + 1]
            a_s, sb_s = _scalar(sde.alpha, s), _scalar(sde.sigma_bar, s)
            a_t, sb_t = _scalar(sde.alpha, t), _scalar(sde.sigma_bar, t)
            z0_hat = denoise_fn(z, _times(s, z))
            if callback is not None:
                callback(i, s, z, z0_hat)
            x = z / a_s
            d = (x - z0_hat) / sb_s
            x_next = x + (sb_t - sb_s) * d
            if t > 0.0:
                z_next = _apply(a_t * x_next, mask)
                d2 = (z_next / a_t - denoise_fn(z_next, _times(t, z))) / sb_t
                x_next = x + (sb_t - sb_s) * 0.5 * (d + d2)
            z = _apply(a_t * x_next, mask)
        return z


class DPMSolverPP(Sampler):
    """DPM-Solver++ with data prediction (Lu et al. 2022), multistep, order 1 (= DDIM) or 2 (2M).

    In log-SNR time λ_t = log(α_t/σ_t), with h = λ_t − λ_s:
    ``z_t = (σ_t/σ_s) z_s − α_t (e^{−h} − 1) D``, D = ẑ0(z_s, s) (order 1) or the 2M extrapolation
    D = (1 + 1/(2r)) ẑ0_s − 1/(2r) ẑ0_prev, r = h_prev/h. The step that ends at t = 0 returns ẑ0.
    """

    name = "dpm_solver_pp"
    default_grid = "logsnr"
    default_steps = 20

    def __init__(
        self,
        steps: int | None = None,
        tau: float = NS2_TAU,
        grid: str | None = None,
        t_min: float = 1e-3,
        order: int = 2,
    ):
        super().__init__(steps, tau, grid, t_min)
        if int(order) not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        self.order = int(order)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, order={self.order})"

    def _integrate(self, denoise_fn, sde, z, mask, ts, generator, callback):
        prev: tuple[torch.Tensor, float] | None = None
        for i in range(len(ts) - 1):
            s, t = ts[i], ts[i + 1]
            z0_hat = denoise_fn(z, _times(s, z))
            if callback is not None:
                callback(i, s, z, z0_hat)
            if t <= 0.0:
                z = _apply(z0_hat * _scalar(sde.alpha, t), mask)
                continue
            z, prev = _dpm_step(sde, z, z0_hat, s, t, prev if self.order == 2 else None)
            z = _apply(z, mask)
        return z


def _dpm_step(
    sde: VPSDE, z: torch.Tensor, z0_hat: torch.Tensor, s: float, t: float, prev: tuple[torch.Tensor, float] | None
) -> tuple[torch.Tensor, tuple[torch.Tensor, float]]:
    """One DPM-Solver++ step from s to t (either direction); prev = (ẑ0, h) of the previous step."""
    lam_s, lam_t = _scalar(sde.log_snr, s), _scalar(sde.log_snr, t)
    h = lam_t - lam_s
    d = z0_hat
    if prev is not None:
        r = prev[1] / h
        d = (1.0 + 0.5 / r) * z0_hat - (0.5 / r) * prev[0]
    ratio = _scalar(sde.std, t) / _scalar(sde.std, s)
    z = ratio * z - _scalar(sde.alpha, t) * math.expm1(-h) * d
    return z, (z0_hat, h)


SAMPLERS: dict[str, type[Sampler]] = {c.name: c for c in (EulerODE, ReverseSDE, HeunODE, DPMSolverPP)}


def get_sampler(name: str, **kwargs) -> Sampler:
    """A sampler by name (``euler_ode``, ``reverse_sde``, ``heun_ode``, ``dpm_solver_pp``)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](**kwargs)


# --- functional forms -----------------------------------------------------------------------
def euler_ode(denoise_fn: Denoiser, sde: VPSDE, shape=None, *, steps: int = 150, tau: float = NS2_TAU, **kw):
    """:class:`EulerODE` in one call; ``kw``: grid, t_min and the sampler call's keywords."""
    return _call(EulerODE, denoise_fn, sde, shape, steps, tau, kw)


def reverse_sde(denoise_fn: Denoiser, sde: VPSDE, shape=None, *, steps: int = 150, tau: float = NS2_TAU, **kw):
    """:class:`ReverseSDE` in one call."""
    return _call(ReverseSDE, denoise_fn, sde, shape, steps, tau, kw)


def heun_ode(denoise_fn: Denoiser, sde: VPSDE, shape=None, *, steps: int = 20, tau: float = NS2_TAU, **kw):
    """:class:`HeunODE` in one call."""
    return _call(HeunODE, denoise_fn, sde, shape, steps, tau, kw)


def dpm_solver_pp(
    denoise_fn: Denoiser, sde: VPSDE, shape=None, *, steps: int = 20, tau: float = NS2_TAU, order: int = 2, **kw
):
    """:class:`DPMSolverPP` in one call."""
    return _call(DPMSolverPP, denoise_fn, sde, shape, steps, tau, kw, order=order)


_CTOR = ("grid", "t_min")


def _call(cls, denoise_fn, sde, shape, steps, tau, kw, **extra):
    ctor = {k: kw.pop(k) for k in _CTOR if k in kw}
    return cls(steps=steps, tau=tau, **ctor, **extra)(denoise_fn, sde, shape, **kw)


# --- source-aware diffusion -----------------------------------------------------------------
def ode_encode(
    z0: torch.Tensor,
    denoise_fn: Denoiser,
    sde: VPSDE,
    steps: int = 150,
    *,
    mask: torch.Tensor | None = None,
    method: str = "euler",
    t_min: float = 1e-3,
) -> torch.Tensor:
    """Integrate the probability-flow ODE forwards, z_0 → z_1 (DDIM-style inversion).

    z0: [B, D, T] -> z1: [B, D, T]. Starts at ``t_min`` from α_{t_min}·z0 (the ODE's velocity is 0/0
    at t = 0) and ends at t = 1; decode z1 with any sampler's ``z1=`` to get back (approximately) z0.
    ``method``: ``"euler"`` (Euler in t on a uniform grid, the mirror of :class:`EulerODE`) or
    ``"dpm_solver_pp"`` (2M exponential integrator on a log-SNR grid, the mirror of :class:`DPMSolverPP`;
    much more accurate for a given number of steps).
    """
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    m = _mask(mask, z0.shape, z0)
    if method == "euler":
        ts = torch.linspace(t_min, 1.0, int(steps) + 1, dtype=torch.float64).tolist()
    elif method == "dpm_solver_pp":
        ts = time_grid(sde, int(steps) + 1, "logsnr", t_min=t_min)[:-1][::-1]
    else:
        raise ValueError(f"method must be 'euler' or 'dpm_solver_pp', got {method!r}")
    z = _apply(z0 * _scalar(sde.alpha, ts[0]), m)
    prev = None
    for i in range(len(ts) - 1):
        t = _times(ts[i], z)
        z0_hat = denoise_fn(z, t)
        if method == "euler":
            z = z + (ts[i + 1] - ts[i]) * sde.ode_drift(z, z0_hat, t)
        else:
            z, prev = _dpm_step(sde, z, z0_hat, ts[i], ts[i + 1], prev)
        z = _apply(z, m)
    return z


def source_aware(
    z_source: torch.Tensor,
    source_denoise_fn: Denoiser,
    target_denoise_fn: Denoiser,
    sde: VPSDE,
    *,
    steps: int = 150,
    sampler: Sampler | None = None,
    mask: torch.Tensor | None = None,
    method: str = "euler",
) -> torch.Tensor:
    """Source-aware diffusion (NaturalSpeech 2's voice conversion / speech enhancement).

    ODE-encode ``z_source`` [B, D, T] to z_1 under the source condition, then sample from that z_1 under
    the target condition (e.g. another speaker's prompt
    for voice conversion, a clean prompt for speech enhancement). ``sampler`` defaults to
    ``EulerODE(steps)``. Returns [B, D, T]."""
    z1 = ode_encode(z_source, source_denoise_fn, sde, steps, mask=mask, method=method)
    sampler = EulerODE(steps=steps) if sampler is None else sampler
    return sampler(target_denoise_fn, sde, mask=mask, z1=z1)
