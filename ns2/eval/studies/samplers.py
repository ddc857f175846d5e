"""Quality and time against sampler steps for one synthesizer, one text and one prompt.

:func:`sampler_sweep` synthesizes the same text in the same voice with every ``(sampler, steps)`` of a
grid, from the same seed (hence the same start noise, :func:`~ns2.inference.samplers.prior_noise`) and,
since the duration and pitch predictors are deterministic, the same length. Each run's sampled latent
is compared with a reference run's (by default NaturalSpeech 2's own sampler, Euler on the
probability-flow ODE with 150 steps)::

    error = mean((z − z_ref)²) / var(z_ref)       # z: [D, T]; 0: the reference itself

(the latent, not the waveform: a decoder may add noise of its own, as the tiny harmonic codec does)

and, when metrics are given (e.g. ``sim_resemblyzer`` from :func:`ns2.metrics.build_metrics`), scored
against the prompt. Wall time is measured around each synthesis (one warm-up call first); on a shared
machine it is a rough guide only.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ns2.inference.samplers import get_sampler
from ns2.metrics.audio import resample

__all__ = ["sampler_sweep"]


def _run(synth: Any, name: str, steps: int, text: str, prompt_wav: np.ndarray, prompt_sr: int, seed: int) -> tuple[Any, float, int]:
    """Synthesize with ``name``/``steps`` in place of the synthesizer's sampler (restored afterwards).
    -> (NS2Result, seconds, NFE)."""
    original = synth.sampler
    synth.sampler = get_sampler(name, steps=int(steps), tau=original.tau)
    try:
        t0 = time.perf_counter()
        result = synth.generate(text, prompt_wav, prompt_sr, seed=seed)
        return result, time.perf_counter() - t0, int(synth.sampler.nfe)
    finally:
        synth.sampler = original


def sampler_sweep(
    synth: Any,
    text: str,
    prompt_wav: np.ndarray,
    prompt_sr: int,
    grid: Mapping[str, Sequence[int]],
    *,
    reference: tuple[str, int] = ("euler_ode", 150),
    metrics: Sequence[Any] = (),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One record per ``(sampler, steps)`` of ``grid`` (``{"euler_ode": [2, 4, 8], "dpm_solver_pp": [...]}``):
    ``{sampler, steps, nfe, seconds, rtf, error, <metric keys>}``, then the reference's own record
    (``reference: True``, error 0). ``synth`` is an :class:`~ns2.inference.NS2Synthesizer` (anything with
    a ``sampler`` attribute and a ``generate`` returning an NS2Result with its ``latent``). Raises ValueError for an unknown sampler or bad steps."""
    for name, steps in grid.items():
        for s in steps:
            get_sampler(name, steps=int(s))  # fails here, before any synthesis, on a bad grid
    _run(synth, reference[0], 1, text, prompt_wav, prompt_sr, seed)  # warm-up: first-call costs out of the timings
    ref, ref_seconds, ref_nfe = _run(synth, reference[0], reference[1], text, prompt_wav, prompt_sr, seed)
    z_ref = ref.latent.astype(np.float64)
    var = float(z_ref.var()) or 1.0
    prompt = resample(np.asarray(prompt_wav, dtype=np.float32), prompt_sr, ref.sample_rate)

    def record(name: str, steps: int, result: Any, seconds: float, nfe: int, is_ref: bool) -> dict[str, Any]:
        z = result.latent.astype(np.float64)
        if z.shape != z_ref.shape:
            raise ValueError(f"{name} with {steps} steps sampled a latent of shape {z.shape}, the reference {z_ref.shape}: "
                             "the durations are not deterministic")
        rec: dict[str, Any] = {"sampler": name, "steps": int(steps), "nfe": nfe, "seconds": round(seconds, 4),
                               "rtf": round(seconds / max(result.seconds, 1e-9), 4),
                               "error": float(((z - z_ref) ** 2).mean() / var), "reference": is_ref}
        for m in metrics:
            rec.update(m.score(result.wav, result.sample_rate, prompt_wav=prompt))
        return rec

    out = []
    for name, steps in grid.items():
        for s in steps:
            result, seconds, nfe = _run(synth, name, int(s), text, prompt_wav, prompt_sr, seed)
            out.append(record(name, int(s), result, seconds, nfe, False))
    out.append(record(reference[0], reference[1], ref, ref_seconds, ref_nfe, True))
    return out
