"""VPSDE closed forms against numerical integration, scores against autograd."""
from __future__ import annotations

import math

import pytest
import torch

from ns2.models.ns2.sde import VPSDE, expand_like


def test_marginal_matches_moment_odes(sde):
    # dm/dt = −½β m (mean), dv/dt = β (1 − v) (variance of the VP SDE), integrated with RK4.
    n = 4000
    h = 1.0 / n
    m, v = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)

    def f(t, y):
        b = sde.beta(torch.tensor(t, dtype=torch.float64))
        return torch.stack([-0.5 * b * y[0], b * (1 - y[1])])

    y = torch.stack([m, v])
    checkpoints = {n // 10: 0.1, n // 2: 0.5, n: 1.0}
    for i in range(n):
        t = i * h
        k1 = f(t, y)
        k2 = f(t + h / 2, y + h / 2 * k1)
        k3 = f(t + h / 2, y + h / 2 * k2)
        k4 = f(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if i + 1 in checkpoints:
            tt = torch.tensor([checkpoints[i + 1]], dtype=torch.float64)
            z0 = torch.ones(1, 1, 1, dtype=torch.float64)
            mean, std = sde.marginal(z0, tt)
            assert float(mean) == pytest.approx(float(y[0]), rel=1e-9)
            assert float(std) ** 2 == pytest.approx(float(y[1]), rel=1e-9)


def test_marginal_matches_forward_sde_monte_carlo(sde):
    g = torch.Generator().manual_seed(0)
    n, steps = 20000, 500
    z = torch.full((n,), 0.7, dtype=torch.float64)
    for i in range(steps):
        t = torch.tensor(i / steps, dtype=torch.float64)
        noise = torch.randn(n, generator=g, dtype=torch.float64)
        z = z - 0.5 * sde.beta(t) * z / steps + torch.sqrt(sde.beta(t) / steps) * noise
        if i + 1 == steps // 5:
            z0 = torch.full((1, 1), 0.7, dtype=torch.float64)
            mean, std = sde.marginal(z0, torch.tensor([0.2], dtype=torch.float64))
            assert float(z.mean()) == pytest.approx(float(mean), abs=0.02)
            assert float(z.std()) == pytest.approx(float(std), rel=0.03)
    assert float(z.mean()) == pytest.approx(0.7 * float(sde.alpha(torch.tensor(1.0))), abs=0.02)
    assert float(z.std()) == pytest.approx(1.0, rel=0.03)


def test_schedule_identities(sde):
    t = torch.linspace(0.01, 1.0, 50, dtype=torch.float64)
    assert torch.allclose(sde.alpha(t) ** 2 + sde.variance(t), torch.ones_like(t))
    assert torch.allclose(sde.log_alpha(t), -0.5 * (sde.beta_min * t + 0.5 * (sde.beta_max - sde.beta_min) * t**2))
    assert torch.allclose(sde.inverse_int_beta(sde.int_beta(t)), t)
    assert torch.allclose(sde.t_from_log_snr(sde.log_snr(t)), t)
    assert torch.allclose(sde.sigma_bar(t), sde.std(t) / sde.alpha(t))
    assert torch.allclose(sde.log_snr(t), torch.log(sde.alpha(t) / sde.std(t)))
    # dB/dt = β
    eps = 1e-6
    assert torch.allclose((sde.int_beta(t + eps) - sde.int_beta(t - eps)) / (2 * eps), sde.beta(t), rtol=1e-6)
    assert float(sde.variance(torch.tensor(0.0))) == 0.0


def test_score_is_gradient_of_conditional_log_density(sde):
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([0.05, 0.4, 0.9], dtype=torch.float64)
    z_t = sde.sample_zt(z0, t, torch.randn(3, 4, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    mean, std = sde.marginal(z0, t)
    logp = torch.distributions.Normal(mean, std).log_prob(z_t).sum()
    (grad,) = torch.autograd.grad(logp, z_t)
    assert torch.allclose(sde.score_from_z0(z_t, z0, t), grad)
    # sign: the score points from z_t towards the mean
    assert torch.allclose(sde.score_from_z0(z_t, z0, t), (mean - z_t) / std**2)


def test_drifts(sde):
    g = torch.Generator().manual_seed(2)
    z, z0 = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    t = torch.tensor([0.3, 0.8])
    beta = expand_like(sde.beta(t), z)
    score = sde.score_from_z0(z, z0, t)
    assert torch.allclose(sde.ode_drift(z, z0, t), sde.drift(z, t) - 0.5 * beta * score)
    assert torch.allclose(sde.sde_drift(z, z0, t), sde.drift(z, t) - beta * score)
    assert torch.allclose(sde.sde_diffusion(t) ** 2, sde.beta(t))


def test_prior_and_time_sampling(sde):
    g = torch.Generator().manual_seed(3)
    z1 = sde.prior_sample((64, 64, 64), tau=1.2**2, generator=g)
    assert float(z1.std()) == pytest.approx(1 / 1.2, rel=0.01)
    g2 = torch.Generator().manual_seed(3)
    assert torch.allclose(z1 * 1.2, sde.prior_sample((64, 64, 64), tau=1.0, generator=g2))
    t = sde.sample_t(10000, eps=0.01, generator=g)
    assert float(t.min()) >= 0.01 and float(t.max()) <= 1.0
    assert float(t.mean()) == pytest.approx(0.505, abs=0.01)


def test_bad_arguments():
    with pytest.raises(ValueError, match="schedule"):
        VPSDE(schedule="cosine")
    with pytest.raises(ValueError, match="beta_min"):
        VPSDE(beta_min=0.0)
    with pytest.raises(ValueError, match="tau"):
        VPSDE.prior_sample((2,), tau=0.0)
    with pytest.raises(ValueError, match=r"\[B\]"):
        VPSDE().marginal(torch.zeros(2, 3, 4), torch.zeros(3))
    assert math.isfinite(float(VPSDE().log_snr(torch.tensor(1.0))))
