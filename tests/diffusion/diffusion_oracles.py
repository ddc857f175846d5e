"""Closed-form denoisers for testing the diffusion code: E[z0 | z_t] for simple data distributions."""
from __future__ import annotations

import math

import torch

from ns2.models.ns2.sde import VPSDE, expand_like


def gaussian_denoiser(sde: VPSDE, mu: float, s: float):
    """ẑ0 = E[z0 | z_t] for z0 ~ N(mu, s²) per element: mu + α s² / (α² s² + Σ) · (z_t − α mu)."""

    def denoise(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = expand_like(t, z)
        a, v = sde.alpha(tt), sde.variance(tt)
        return mu + a * s**2 / (a**2 * s**2 + v) * (z - a * mu)

    return denoise


def gaussian_ode_map(sde: VPSDE, mu: float, s: float, z1: torch.Tensor) -> torch.Tensor:
    """The exact probability-flow ODE map t = 1 -> 0 for N(mu, s²) data (it is affine)."""
    one = torch.tensor(1.0, dtype=torch.float64)
    a1, v1 = float(sde.alpha(one)), float(sde.variance(one))
    std1 = math.sqrt(a1**2 * s**2 + v1)
    return mu + s / std1 * (z1 - a1 * mu)
