"""evaluate_codec: held-out speakers, the metrics of the codec and of the mu-law baseline."""
from __future__ import annotations

import pytest
import torch

from codec_train_helpers import tiny_codec
from ns2.eval.studies.codec import evaluate_codec, mulaw_decode, mulaw_encode, perplexity
from ns2.data.manifest import read_manifest
from ns2.losses.codec import MultiScaleMelLoss


def test_mulaw_and_perplexity():
    x = torch.linspace(-1, 1, 10001)
    q = mulaw_encode(x)
    assert int(q.min()) == 0 and int(q.max()) == 255
    assert (mulaw_decode(q) - x).abs().max() < 0.025  # half the largest step (near full scale)
    small = torch.linspace(-0.01, 0.01, 101)
    assert (mulaw_decode(mulaw_encode(small)) - small).abs().max() < 5e-4  # fine steps near zero
    assert perplexity(torch.ones(8).numpy()) == pytest.approx(8.0)
    assert perplexity(torch.tensor([5.0, 0, 0]).numpy()) == pytest.approx(1.0)


def test_evaluate_codec_on_held_out_speakers(prepared_corpus):
    root = prepared_corpus / "data" / "synthetic-mini" / "prepared"
    utts = read_manifest(root / "manifest.jsonl")
    codec = tiny_codec().train()
    mel = MultiScaleMelLoss(16000, n_mels=[20, 80], window_lengths=[128, 1024])
    out = evaluate_codec(codec, utts, root, max_utterances=4, mel_loss=mel)
    assert codec.training  # mode restored
    assert out["split"] == "test" and out["utterances"] == 4
    assert out["codec/kbps"] == pytest.approx(4 * 7 * 80 / 1000) and out["mulaw8/kbps"] == 128.0
    assert out["mulaw8/si_sdr"] > 25 and out["mulaw8/mel_distance"] < out["codec/mel_distance"]  # untrained codec
    for j in range(4):
        assert 1.0 <= out[f"codec/perplexity/q{j:02d}"] <= 128 and 0 < out[f"codec/usage/q{j:02d}"] <= 1
    assert 1.0 < out["mulaw8/perplexity"] <= 256
    # pitch fidelity: mu-law keeps every frame's F0; the untrained codec keeps none of it
    assert out["mulaw8/f0_mean_corr"] > 0.95 and out["mulaw8/f0_rmse_cents"] < 20 and out["mulaw8/vuv_f1"] > 0.9
    assert not out["codec/f0_rmse_cents"] < 20  # NaN (nothing voiced) or far off
    assert all(isinstance(v, (int, float, str)) for v in out.values())
    with pytest.raises(ValueError, match="no utterances in split"):
        evaluate_codec(codec, [u for u in utts if u.split == "train"], root)


def test_command_line_writes_results(prepared_corpus, tmp_path):
    import json

    from ns2.codec import save_codec
    from ns2.eval.studies.codec import main

    path = save_codec(tiny_codec(), tmp_path / "codec.pth")
    manifest = prepared_corpus / "data" / "synthetic-mini" / "prepared" / "manifest.jsonl"
    main([str(path), str(manifest), "--max-utterances", "1", "--out", str(tmp_path / "results.json")])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["utterances"] == 1 and "codec/si_sdr" in results and "commit" in results
