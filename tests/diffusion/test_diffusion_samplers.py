"""Samplers against closed-form denoisers: a point mass and Gaussian data."""
from __future__ import annotations

import pytest
import torch
from diffusion_oracles import gaussian_denoiser, gaussian_ode_map

from ns2.inference import (
    SAMPLERS,
    get_sampler,
    ode_encode,
    prior_noise,
    source_aware,
    time_grid,
)
from ns2.inference.samplers import euler_ode

MU, S = 0.5, 0.3
ODE_SAMPLERS = ("euler_ode", "heun_ode", "dpm_solver_pp")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize(
    "name, steps, tol",
    [("euler_ode", 150, 0.03), ("reverse_sde", 150, 0.03), ("heun_ode", 10, 1e-6), ("dpm_solver_pp", 10, 1e-6)],
)
def test_point_mass_oracle(sde, name, steps, tol):
    g = torch.Generator().manual_seed(0)
    z_star = torch.randn(2, 8, 32, generator=g)
    out = get_sampler(name, steps=steps)(lambda z, t: z_star, sde, z_star.shape, seed=1)
    assert _rel(out, z_star) < tol
    assert float((out - z_star).abs().max()) < 0.1


@pytest.mark.parametrize(
    "name, steps", [("euler_ode", 150), ("reverse_sde", 200), ("heun_ode", 50), ("dpm_solver_pp", 20)]
)
def test_gaussian_data_moments(sde, name, steps):
    denoise = gaussian_denoiser(sde, MU, S)
    out = get_sampler(name, steps=steps, tau=1.0)(denoise, sde, (8, 16, 256), seed=0, dtype=torch.float64)
    assert float(out.mean()) == pytest.approx(MU, abs=0.01)
    assert float(out.std()) == pytest.approx(S, rel=0.03)


@pytest.mark.parametrize("name", ODE_SAMPLERS)
def test_ode_error_shrinks_with_steps(sde, name):
    denoise = gaussian_denoiser(sde, MU, S)
    z1 = prior_noise((2, 4, 64), tau=1.0, seed=0, dtype=torch.float64)
    exact = gaussian_ode_map(sde, MU, S, z1)
    errs = [_rel(get_sampler(name, steps=n)(denoise, sde, z1=z1), exact) for n in (10, 20, 50, 150)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.01
    if name != "euler_ode":
        assert errs[1] < 0.03  # 20 steps


def test_same_seed_same_prior(sde):
    starts = {}
    for name in SAMPLERS:
        seen = []
        sampler = get_sampler(name, steps=3)
        sampler(lambda z, t: z * 0, sde, (2, 3, 5), seed=7, callback=lambda i, t, z, x: seen.append(z))
        starts[name] = seen[0]
    ref = prior_noise((2, 3, 5), seed=7)
    assert float(ref.std()) < 1.0  # τ = 1.2² by default
    for z in starts.values():
        assert torch.equal(z, ref)


def test_mask_zeroes_padding_and_isolates_valid_frames(sde):
    denoise = gaussian_denoiser(sde, MU, S)  # frame-local
    seen_padding = []

    def spy(z, t):
        seen_padding.append(float(z[1, :, 10:].abs().max()))
        return denoise(z, t)

    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(2, 4, 16, generator=g)
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 10:] = False
    for name in SAMPLERS:
        seen_padding.clear()
        kw = dict(generator=torch.Generator().manual_seed(1))
        out = get_sampler(name, steps=6)(spy, sde, mask=mask, z1=z1, **kw)
        assert (out[1, :, 10:] == 0).all() and max(seen_padding) == 0.0
        if name != "reverse_sde":  # deterministic: the valid part equals an unpadded run
            alone = get_sampler(name, steps=6)(denoise, sde, z1=z1[1:, :, :10])
            assert torch.allclose(out[1:, :, :10], alone, atol=1e-6)


def test_ode_encode_then_decode_reconstructs(sde):
    denoise = gaussian_denoiser(sde, MU, S)
    g = torch.Generator().manual_seed(3)
    z0 = MU + S * torch.randn(2, 4, 64, generator=g, dtype=torch.float64)
    z1 = ode_encode(z0, denoise, sde, 300)
    assert float(z1.std()) == pytest.approx(1.0, abs=0.1)  # data mapped to the prior
    assert _rel(euler_ode(denoise, sde, steps=300, z1=z1), z0) < 0.01
    z1 = ode_encode(z0, denoise, sde, 20, method="dpm_solver_pp")
    assert _rel(get_sampler("dpm_solver_pp", steps=20)(denoise, sde, z1=z1), z0) < 1e-3


def test_source_aware_transfers_between_conditions(sde):
    # Two Gaussian "conditions": encoding under N(μ1, s1) and decoding under N(μ2, s2) is the composition
    # of the two exact (affine) ODE maps; it keeps the standardised value up to O(α_1) terms.
    (m1, s1), (m2, s2) = (0.5, 0.3), (-1.0, 0.6)
    src, tgt = gaussian_denoiser(sde, m1, s1), gaussian_denoiser(sde, m2, s2)
    g = torch.Generator().manual_seed(4)
    z0 = m1 + s1 * torch.randn(1, 4, 32, generator=g, dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    a1, v1 = sde.alpha(one), sde.variance(one)
    z1 = a1 * m1 + (a1**2 * s1**2 + v1).sqrt() * (z0 - m1) / s1
    want = gaussian_ode_map(sde, m2, s2, z1)
    assert _rel(want, m2 + s2 * (z0 - m1) / s1) < 0.01
    dpm = get_sampler("dpm_solver_pp", steps=30)
    out = source_aware(z0, src, tgt, sde, steps=30, sampler=dpm, method="dpm_solver_pp")
    assert _rel(out, want) < 1e-3
    out = source_aware(z0, src, tgt, sde, steps=150)  # Euler both ways, NaturalSpeech 2's setting
    assert _rel(out, want) < 0.02


def test_time_grids(sde):
    for kind in ("uniform", "logsnr", "karras"):
        ts = time_grid(sde, 12, kind)
        assert len(ts) == 13 and ts[0] == 1.0 and ts[-1] == 0.0
        assert all(a > b for a, b in zip(ts, ts[1:]))
    lam = sde.log_snr(torch.tensor(time_grid(sde, 6, "logsnr")[:-1], dtype=torch.float64))
    assert torch.allclose(lam.diff(), lam.diff()[0].expand(5))


def test_registry_and_errors(sde):
    assert set(SAMPLERS) == {"euler_ode", "reverse_sde", "heun_ode", "dpm_solver_pp"}
    assert get_sampler("euler_ode").steps == 150 and get_sampler("euler_ode").tau == pytest.approx(1.44)
    assert get_sampler("heun_ode", steps=10).nfe == 19
    assert get_sampler("dpm_solver_pp", steps=10, order=1).order == 1
    with pytest.raises(ValueError, match="unknown sampler"):
        get_sampler("ddpm")
    with pytest.raises(ValueError, match="grid"):
        get_sampler("euler_ode", grid="cosine")
    with pytest.raises(ValueError, match="shape"):
        get_sampler("euler_ode")(lambda z, t: z, sde)
    with pytest.raises(ValueError, match="mask"):
        get_sampler("euler_ode", steps=2)(lambda z, t: z, sde, (2, 3, 4), mask=torch.ones(2, 5, dtype=torch.bool))


def test_seed_fixes_the_whole_sample(sde):
    denoise = gaussian_denoiser(sde, MU, S)
    smp = get_sampler("reverse_sde", steps=20)
    a = smp(denoise, sde, (2, 3, 8), seed=5)
    assert torch.equal(a, smp(denoise, sde, (2, 3, 8), seed=5))
    assert not torch.equal(a, smp(denoise, sde, (2, 3, 8), seed=6))
    g = torch.Generator().manual_seed(5)
    assert torch.equal(a, smp(denoise, sde, (2, 3, 8), generator=g))
