"""``ns2 bench``: both benchmarks run at tiny sizes and write their JSON with provenance."""
from __future__ import annotations

import json

import pytest

from ns2.cli.bench import run_bench


@pytest.mark.parametrize("overrides, keys", [
    (["target=codec", "codec=tiny", "seconds=0.5", "repeats=1"], ["encode_ms_per_audio_s", "decode_ms_per_audio_s", "params"]),
    (["target=ns2", "model=ns2", "model/scale=tiny", "codec=tiny", "repeats=1", "batch_size=2", "frames=80",
      "phonemes=20", "prompt_frames=40"], ["train_step_s", "denoise_call_ms", "params"]),
])
def test_bench_writes_results(compose, tmp_path, overrides, keys):
    cfg = compose("bench", [f"out_dir={tmp_path}/bench", "name=b", *overrides])
    result = run_bench(cfg)
    saved = json.loads((tmp_path / "bench" / "b_cpu.json").read_text())
    assert saved == pytest.approx(result)
    for k in keys:
        assert saved[k] > 0
    assert saved["device"] == "cpu" and saved["commit"] and saved["torch"]


def test_bench_without_a_model_says_what_to_pass(compose):
    with pytest.raises(SystemExit, match="model=ns2"):
        run_bench(compose("bench", ["target=ns2"]))


def test_flop_count_matches_the_arithmetic():
    import torch

    from ns2.eval.bench import count_flops

    lin = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64)
    assert count_flops(lambda: lin(x)) == 2 * 8 * 64 * 32
    # forward + backward of a matmul: the forward product and two gradient products
    xg = torch.randn(8, 64, requires_grad=True)
    assert count_flops(lambda: lin(xg).sum().backward()) == 3 * 2 * 8 * 64 * 32


def test_suite_writes_every_benchmark_and_a_table(compose, tmp_path):
    cfg = compose("bench", [f"out_dir={tmp_path}", "target=suite", "repeats=1", "seconds=0.5", "batch_size=1",
                            "frames=60", "phonemes=12", "prompt_frames=20", "suite.codecs=[tiny]",
                            "suite.ns2_codec=tiny", "suite.ns2_scales=[tiny]", "suite.autocast=[null,bf16]",
                            "suite.sampler_scale=tiny", "suite.solvers=[[euler_ode,8],[dpm_solver_pp,4]]",
                            "suite.f0_seconds=1.0"])
    run_bench(cfg)
    saved = json.loads((tmp_path / "suite_cpu.json").read_text())
    r = saved["results"]
    assert set(r) == {"codec_tiny", "ns2_tiny", "ns2_tiny_bf16", "sampler_ns2_tiny", "prep_f0"}
    assert r["ns2_tiny"]["train_step_gflops"] > r["ns2_tiny"]["denoise_call_gflops"] > 0
    assert 0 < r["ns2_tiny"]["train_matmul_fraction"] < 2
    assert r["ns2_tiny_bf16"]["autocast"] == "bf16"
    s = r["sampler_ns2_tiny"]
    assert (s["nfe_euler_ode_8"], s["nfe_dpm_solver_pp_4"]) == (8, 4)
    assert s["rtf_euler_ode_8"] > 0 and s["rtf_dpm_solver_pp_4"] > 0
    assert r["prep_f0"]["f0_audio_s_per_s_per_core"] > 0
    table = (tmp_path / "suite_cpu.md").read_text()
    assert saved["commit"] in table and table.count("\n| ") == 1 + len(r)


def test_bench_times_the_compiled_boxes_with_the_eager_flop_count(compose, tmp_path):
    shape = ["target=ns2", "model=ns2", "model/scale=tiny", "codec=tiny", "repeats=1", "batch_size=2", "frames=80",
             "phonemes=20", "prompt_frames=40", f"out_dir={tmp_path}"]
    eager = run_bench(compose("bench", [*shape, "name=eager"]))
    compiled = run_bench(compose("bench", [*shape, "name=compiled", "compile={modules: [diffusion], backend: eager}"]))
    assert eager["compile"] is None and compiled["compile"] == {"modules": ["diffusion"], "backend": "eager"}
    assert compiled["train_step_gflops"] == pytest.approx(eager["train_step_gflops"])
    assert compiled["sampled_frames"] == eager["sampled_frames"]  # the same seeded weights predict the same lengths
    assert compiled["denoise_call_gflops"] == pytest.approx(eager["denoise_call_gflops"]) and compiled["train_step_s"] > 0
