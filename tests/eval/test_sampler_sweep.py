"""ns2.eval.studies.samplers.sampler_sweep: error against the reference shrinks with steps; bad grids fail first."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from tiny_synth import SR, build_tiny, tone  # noqa: E402

from ns2.eval.studies.samplers import sampler_sweep  # noqa: E402


def test_error_falls_with_steps_and_the_sampler_is_restored():
    synth = build_tiny(steps=4)
    before = synth.sampler
    records = sampler_sweep(synth, "Hello there.", tone(2.0), SR, {"euler_ode": [2, 16], "dpm_solver_pp": [8]},
                            reference=("euler_ode", 48), seed=1)
    assert [(r["sampler"], r["steps"], r["nfe"]) for r in records] == [
        ("euler_ode", 2, 2), ("euler_ode", 16, 16), ("dpm_solver_pp", 8, 8), ("euler_ode", 48, 48)]
    by = {(r["sampler"], r["steps"]): r for r in records}
    assert by[("euler_ode", 48)]["reference"] and by[("euler_ode", 48)]["error"] == 0.0
    assert 0 < by[("euler_ode", 16)]["error"] < by[("euler_ode", 2)]["error"]
    assert synth.sampler is before


def test_a_bad_grid_fails_before_any_synthesis():
    synth = build_tiny(steps=4)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        sampler_sweep(synth, "Hello.", tone(2.0), SR, {"euler_ode": [0]})
    assert synth.last_info is None
