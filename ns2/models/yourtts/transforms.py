"""The piecewise rational-quadratic spline with linear tails (Durkan et al. 2019, "Neural Spline Flows"),
the elementwise bijection inside VITS's stochastic duration predictor (Kim et al. 2021, §2.3 and App. B).

On ``[-B, B]`` the spline has ``K`` bins with widths ``w_k``, heights ``h_k`` (both softmax-normalised,
at least ``min_bin_*`` each, summing to ``2B``) and knot derivatives ``d_0 .. d_K`` (softplus + ``min_derivative``;
``d_0 = d_K = 1`` so the spline joins the identity tails smoothly). In bin ``k`` with ``s_k = h_k / w_k`` and
``θ = (x - x_k) / w_k`` (Durkan et al. eq. 4)::

    y      = y_k + h_k · [s_k θ² + d_k θ(1-θ)] / [s_k + (d_{k+1} + d_k - 2 s_k) θ(1-θ)]
    dy/dx  = s_k² · [d_{k+1} θ² + 2 s_k θ(1-θ) + d_k (1-θ)²] / [s_k + (d_{k+1} + d_k - 2 s_k) θ(1-θ)]²

The inverse solves the quadratic ``a θ² + b θ + c = 0`` for ``θ`` (eq. 6-8) with the numerically stable root
``θ = 2c / (-b - √(b² - 4ac))``. Outside ``[-B, B]`` the map is the identity (log-det 0).

Tails are selected with ``torch.where`` on clamped inputs (not boolean indexing), so every element is
computed the same way whatever it is batched with, and gradients stay finite everywhere.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["piecewise_rational_quadratic"]

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3


def _knots(unnormalized: torch.Tensor, lo: float, hi: float, min_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[..., K] logits -> (knots [..., K+1] from lo to hi exactly, bin sizes [..., K])."""
    k = unnormalized.shape[-1]
    if min_size * k > 1.0:
        raise ValueError(f"minimal bin size {min_size} too large for {k} bins")
    sizes = min_size + (1 - min_size * k) * F.softmax(unnormalized, dim=-1)
    inner = lo + (hi - lo) * torch.cumsum(sizes, dim=-1)[..., :-1]
    knots = torch.cat([torch.full_like(inner[..., :1], lo), inner, torch.full_like(inner[..., :1], hi)], dim=-1)
    return knots, knots[..., 1:] - knots[..., :-1]


def _pick(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return t.gather(-1, idx)[..., 0]


def piecewise_rational_quadratic(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tail_bound: float = 5.0,
    min_bin_width: float = MIN_BIN_WIDTH,
    min_bin_height: float = MIN_BIN_HEIGHT,
    min_derivative: float = MIN_DERIVATIVE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise spline y = f(x) (or x = f⁻¹(y) when ``inverse``) with linear tails outside ±tail_bound.

    inputs: [...]; unnormalized_widths, unnormalized_heights: [..., K]; unnormalized_derivatives:
    [..., K - 1] (the interior knots) -> (outputs [...], log|d outputs / d inputs| [...]).
    """
    bound = float(tail_bound)
    inside = (inputs >= -bound) & (inputs <= bound)
    x = inputs.clamp(-bound, bound)

    # boundary derivatives fixed to 1: min_derivative + softplus(c) = 1
    edge = math.log(math.expm1(1 - min_derivative))
    derivatives = min_derivative + F.softplus(F.pad(unnormalized_derivatives, (1, 1), value=edge))
    cumwidths, widths = _knots(unnormalized_widths, -bound, bound, min_bin_width)
    cumheights, heights = _knots(unnormalized_heights, -bound, bound, min_bin_height)

    # bin index: how many interior knots lie at or below the point (in x for forward, in y for inverse)
    locations = cumheights if inverse else cumwidths
    idx = (x[..., None] >= locations[..., 1:-1]).sum(-1, keepdim=True)

    x_k, w_k = _pick(cumwidths, idx), _pick(widths, idx)
    y_k, h_k = _pick(cumheights, idx), _pick(heights, idx)
    d_k, d_k1 = _pick(derivatives, idx), _pick(derivatives[..., 1:], idx)
    s_k = h_k / w_k
    curvature = d_k1 + d_k - 2 * s_k

    if inverse:
        dy = x - y_k
        a = h_k * (s_k - d_k) + dy * curvature
        b = h_k * d_k - dy * curvature
        c = -s_k * dy
        theta = (2 * c) / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0.0)))
        out = x_k + theta * w_k
    else:
        theta = (x - x_k) / w_k
        t1 = theta * (1 - theta)
        out = y_k + h_k * (s_k * theta**2 + d_k * t1) / (s_k + curvature * t1)

    t1 = theta * (1 - theta)
    denominator = s_k + curvature * t1
    numerator = s_k**2 * (d_k1 * theta**2 + 2 * s_k * t1 + d_k * (1 - theta) ** 2)
    logabsdet = torch.log(numerator) - 2 * torch.log(denominator)  # log dy/dx at theta
    if inverse:
        logabsdet = -logabsdet

    out = torch.where(inside, out, inputs)
    logabsdet = torch.where(inside, logabsdet, torch.zeros_like(logabsdet))
    return out, logabsdet
