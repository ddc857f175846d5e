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
