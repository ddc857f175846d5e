"""``ns2 bench``: every benchmark runs at tiny sizes and writes its JSON with provenance."""
from __future__ import annotations

import json

import pytest
import torch

from ns2.cli.bench import run_bench


@pytest.mark.parametrize("overrides, keys", [
    (["target=codec", "codec=tiny", "seconds=0.5", "repeats=1"], ["encode_ms_per_audio_s", "decode_ms_per_audio_s", "params"]),
    (["target=ns2", "model=ns2", "model/scale=tiny", "codec=tiny", "repeats=1", "batch_size=2", "frames=80",
      "phonemes=20", "prompt_frames=40"], ["train_step_s", "denoise_call_ms", "params"]),
    (["target=valle", "model=valle", "model/scale=valle_tiny", "codec=tiny", "repeats=1", "batch_size=2",
      "frames=40", "phonemes=12", "prompt_frames=10"], ["train_step_s", "train_step_gflops", "train_matmul_fraction"]),
    (["target=yourtts", "model=yourtts", "model/scale=yourtts_tiny", "repeats=1", "batch_size=2", "frames=40",
      "phonemes=12"], ["train_step_s", "train_step_gflops", "train_matmul_fraction"]),
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
    with pytest.raises(SystemExit, match="model=valle"):
        run_bench(compose("bench", ["target=valle", "model=ns2"]))
    with pytest.raises(SystemExit, match="model=yourtts"):
        run_bench(compose("bench", ["target=yourtts", "model=valle"]))


def test_valle_flops_are_the_decoders_arithmetic():
    """The AR and NAR passes of one training step count what their layers multiply: per layer and token,
    forward 2·(4·H² + 2·H·F) for the projections plus the attention products; ×3 with backward."""
    from ns2.eval.bench import bench_valle
    from ns2.models.valle import VALLE

    H, F_, layers, B, L, T, K, n_q = 32, 64, 2, 2, 6, 10, 16, 3
    net = VALLE(vocab_size=20, n_q=n_q, codebook_size=K, dim=H, heads=2, layers=layers, ffn=F_, dropout=0.0)
    r = bench_valle(net, batch_size=B, phonemes=L, frames=T, prompt_frames=4, repeats=1)
    s_ar, s_nar = L + T + 1, L + T  # the AR reads BOS + T codes, the NAR T frames
    per_token = 2 * (4 * H * H + 2 * H * F_)
    dense = layers * per_token * B * (s_ar + s_nar)
    attention = layers * 2 * 2 * B * H * (s_ar**2 + s_nar**2)  # q·kᵀ and weights·v, every pair
    heads = 2 * B * H * ((K + 1) * (T + 1) + K * T)  # output heads over the audio positions (AR: K codes + EOS)
    assert r["train_step_gflops"] * 1e9 == pytest.approx(3 * (dense + attention + heads), rel=0.1)
    assert r["params"] == sum(p.numel() for p in net.parameters()) and r["n_q"] == n_q


def test_flop_count_matches_the_arithmetic():
    import torch

    from ns2.eval.bench import count_flops

    lin = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64)
    assert count_flops(lambda: lin(x)) == 2 * 8 * 64 * 32
    # forward + backward of a matmul: the forward product and two gradient products
    xg = torch.randn(8, 64, requires_grad=True)
    assert count_flops(lambda: lin(xg).sum().backward()) == 3 * 2 * 8 * 64 * 32


def test_paired_throughput_of_reference_products_is_their_share_of_the_reference():
    from ns2.eval.bench import count_flops, paired_throughput

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    one = count_flops(lambda: a @ b)
    r = paired_throughput(lambda: (a @ b, b @ a), one, torch.device("cpu"), repeats=5)
    # two reference products credited with one product's FLOPs run at half the reference rate:
    # an inverted ratio (2) or a FLOP count off by 2 (1 or 0.25) falls outside
    assert 0.3 < r["fraction"] < 0.8
    assert r["time_s"] > 0 and r["matmul_flops_per_s"] > 1e9


def test_suite_writes_every_benchmark_and_a_table(compose, tmp_path):
    cfg = compose("bench", [f"out_dir={tmp_path}", "target=suite", "repeats=1", "seconds=0.5", "batch_size=1",
                            "frames=60", "phonemes=12", "prompt_frames=20", "suite.codecs=[tiny]",
                            "suite.ns2_codec=tiny", "suite.ns2_scales=[tiny]", "suite.train_batch_size=1", "suite.autocast=[null,bf16]",
                            "suite.valle_scales=[valle_tiny]", "suite.yourtts_scales=[yourtts_tiny]",
                            "suite.sampler_scale=tiny", "suite.solvers=[[euler_ode,8],[dpm_solver_pp,4]]",
                            "suite.f0_seconds=1.0"])
    run_bench(cfg)
    saved = json.loads((tmp_path / "suite_cpu.json").read_text())
    r = saved["results"]
    assert set(r) == {"codec_tiny", "ns2_tiny", "ns2_tiny_bf16", "valle_tiny", "valle_tiny_bf16", "yourtts_tiny",
                      "yourtts_tiny_bf16", "sampler_ns2_tiny", "prep_f0"}
    assert r["yourtts_tiny"]["train_step_gflops"] > 0
    assert r["valle_tiny"]["train_step_gflops"] > 0 and r["valle_tiny_bf16"]["autocast"] == "bf16"
    assert r["ns2_tiny"]["train_step_gflops"] > r["ns2_tiny"]["denoise_call_gflops"] > 0
    assert 0 < r["ns2_tiny"]["train_matmul_fraction"] < 2
    assert r["ns2_tiny"]["batch_size"] == r["valle_tiny"]["batch_size"] == 1  # suite.train_batch_size
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
