"""Inference: diffusion samplers and synthesizers (text + prompt [+ score] -> wav; :class:`Synthesizer`).

>>> sampler = get_sampler("euler_ode", steps=150)              # NaturalSpeech 2's setting, τ = 1.2²
>>> z0 = sampler(denoise_fn, sde, (B, D, T), mask=mask, seed=0)  # denoise_fn(z_t, t) -> ẑ0
"""
from ns2.inference.synthesizer import SynthesisError, Synthesizer, prepare_prompt
from ns2.inference.ns2 import NS2Result, NS2Synthesizer, fit_durations
from ns2.inference.score import Score, parse_score, score_log_f0
from ns2.inference.source_aware import SourceAware
from ns2.inference.samplers import (
    SAMPLERS,
    DPMSolverPP,
    EulerODE,
    HeunODE,
    ReverseSDE,
    Sampler,
    dpm_solver_pp,
    euler_ode,
    get_sampler,
    heun_ode,
    ode_encode,
    prior_noise,
    reverse_sde,
    source_aware,
    time_grid,
)

__all__ = [
    "SAMPLERS",
    "DPMSolverPP",
    "EulerODE",
    "HeunODE",
    "ReverseSDE",
    "Sampler",
    "dpm_solver_pp",
    "euler_ode",
    "get_sampler",
    "heun_ode",
    "ode_encode",
    "prior_noise",
    "reverse_sde",
    "source_aware",
    "time_grid",
    "NS2Result",
    "NS2Synthesizer",
    "fit_durations",
    "Score",
    "SourceAware",
    "parse_score",
    "score_log_f0",
    "SynthesisError",
    "Synthesizer",
    "prepare_prompt",
]
