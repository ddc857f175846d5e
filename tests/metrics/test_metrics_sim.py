"""Speaker similarity: resemblyzer on espeak speech, and the transformers / UniSpeech loading paths
exercised offline with small randomly initialised models written to a temporary cache."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ns2.metrics import MetricInputError, build_metrics
from ns2.metrics import backbones as bb
from ns2.metrics.ecapa_tdnn import WAVLM_LARGE_CONFIG, WavLMECAPA, convert_unispeech_state_dict

SR = 16000
TEXT_A = "The quick brown fox jumps over the lazy dog near the river bank."
TEXT_B = "She sells sea shells by the sea shore every summer morning."


@pytest.fixture(scope="module")
def resemblyzer_sim():
    return build_metrics(["sim_resemblyzer"])[0]


def test_resemblyzer_same_vs_different_speaker(resemblyzer_sim, speech):
    a = speech(TEXT_A, "en-us+m3")
    b = speech(TEXT_B, "en-us+m3")  # same voice, other sentence
    c = speech(TEXT_B, "en-us+f3")  # other voice, same sentence
    sim = resemblyzer_sim.similarity
    assert sim(a, a, SR) == pytest.approx(1.0, abs=1e-6)
    dither = a + np.random.default_rng(0).normal(0, 1e-4, a.size).astype(np.float32)
    assert sim(a, dither, SR) > 0.99  # recomputed, not cached
    same, diff = sim(a, b, SR), sim(a, c, SR)
    assert same > diff + 0.15, (same, diff)
    out = resemblyzer_sim.score(a, SR, prompt_wav=b, prompt_resynth_wav=c)
    assert out["sim_resemblyzer_o"] == pytest.approx(same, abs=1e-6)
    assert out["sim_resemblyzer_r"] == pytest.approx(diff, abs=1e-6)
    assert set(resemblyzer_sim.score(a, SR, prompt_wav=b)) == {"sim_resemblyzer_o"}
    # other sample rates are resampled
    import soxr

    a24 = soxr.resample(a, SR, 24000)
    from ns2.metrics.sim import cosine

    assert cosine(resemblyzer_sim.embed(a24, 24000), resemblyzer_sim.embed(a, SR)) > 0.98


def test_sim_requires_prompt(resemblyzer_sim):
    with pytest.raises(MetricInputError, match="prompt_wav"):
        resemblyzer_sim.score(np.zeros(SR, np.float32), SR)


# --- transformers WavLMForXVector ---------------------------------------------------------------
TINY_WAVLM = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=[16] * 7,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=16, max_bucket_distance=32,
)


def test_wavlm_xvector_loads_offline_from_cache(tmp_path, checksums):
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    folder = bb.backbone_dir("wavlm_base_plus_sv", tmp_path)
    torch.manual_seed(0)
    cfg = WavLMConfig(**TINY_WAVLM, tdnn_dim=(16, 16, 16, 16, 32), xvector_output_dim=8, classifier_proj_size=8)
    WavLMForXVector(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    bb.record("wavlm_base_plus_sv", tmp_path, checksums=checksums)
    metric = build_metrics(["sim_wavlm_tdnn"], tmp_path, checksums=checksums)[0]
    assert metric.name == "sim_wavlm_tdnn" and metric.backbone == "wavlm_base_plus_sv"
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal(SR) * 0.1).astype(np.float32), (rng.standard_normal(SR) * 0.1).astype(np.float32)
    out = metric.score(x, SR, prompt_wav=y, prompt_resynth_wav=x)
    assert math.isfinite(out["sim_wavlm_tdnn_o"]) and -1.0 <= out["sim_wavlm_tdnn_o"] <= 1.0
    assert out["sim_wavlm_tdnn_r"] == pytest.approx(1.0, abs=1e-5)


# --- UniSpeech WavLM-Large + ECAPA-TDNN checkpoint ----------------------------------------------
def unispeech_checkpoint(wcfg: dict, ch: int, agg: int, emb: int, scale: int, se: int, att: int, device="cpu", n_cls=10):
    """A state dict in the upstream layout (fairseq WavLM under ``feature_extract.model.`` + ECAPA head),
    written from the upstream module definitions, independently of the converter under test."""
    g = torch.Generator().manual_seed(0)

    def t(*shape):
        if device == "meta":
            return torch.empty(shape, device="meta")
        return torch.randn(shape, generator=g) * 0.1

    def bn(prefix, n):
        return {f"{prefix}.weight": 1 + t(n), f"{prefix}.bias": t(n), f"{prefix}.running_mean": t(n),
                f"{prefix}.running_var": 0.5 + t(n).abs(), f"{prefix}.num_batches_tracked": torch.tensor(7)}

    D, H, L, F = wcfg["hidden_size"], wcfg["num_attention_heads"], wcfg["num_hidden_layers"], wcfg["intermediate_size"]
    conv, kern = list(wcfg["conv_dim"]), list(wcfg.get("conv_kernel", (10, 3, 3, 3, 3, 2, 2)))
    P, G, B = wcfg["num_conv_pos_embeddings"], wcfg["num_conv_pos_embedding_groups"], wcfg["num_buckets"]
    m = "feature_extract.model."
    s = {m + "mask_emb": t(D)}
    for i, (c, k) in enumerate(zip(conv, kern)):
        s[f"{m}feature_extractor.conv_layers.{i}.0.weight"] = t(c, conv[i - 1] if i else 1, k)
        s[f"{m}feature_extractor.conv_layers.{i}.2.1.weight"] = 1 + t(c)
        s[f"{m}feature_extractor.conv_layers.{i}.2.1.bias"] = t(c)
    s.update({m + "layer_norm.weight": 1 + t(conv[-1]), m + "layer_norm.bias": t(conv[-1]),
              m + "post_extract_proj.weight": t(D, conv[-1]), m + "post_extract_proj.bias": t(D),
              m + "encoder.pos_conv.0.weight_g": 1 + t(1, 1, P).abs(), m + "encoder.pos_conv.0.weight_v": t(D, D // G, P),
              m + "encoder.pos_conv.0.bias": t(D), m + "encoder.layer_norm.weight": 1 + t(D), m + "encoder.layer_norm.bias": t(D)})
    for l in range(L):
        p = f"{m}encoder.layers.{l}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            s[f"{p}self_attn.{proj}.weight"], s[f"{p}self_attn.{proj}.bias"] = t(D, D), t(D)
        if l == 0:
            s[f"{p}self_attn.relative_attention_bias.weight"] = t(B, H)
        s[f"{p}self_attn.grep_linear.weight"], s[f"{p}self_attn.grep_linear.bias"] = t(8, D // H), t(8)
        s[f"{p}self_attn.grep_a"] = 1 + t(1, H, 1, 1)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            s[f"{p}{ln}.weight"], s[f"{p}{ln}.bias"] = 1 + t(D), t(D)
        s[f"{p}fc1.weight"], s[f"{p}fc1.bias"], s[f"{p}fc2.weight"], s[f"{p}fc2.bias"] = t(F, D), t(F), t(D, F), t(D)
    s["feature_weight"] = t(L + 1)
    s.update({"layer1.conv.weight": t(ch, D, 5), "layer1.conv.bias": t(ch), **bn("layer1.bn", ch)})
    w = ch // scale
    for blk in ("layer2", "layer3", "layer4"):
        for c in ("Conv1dReluBn1", "Conv1dReluBn2"):
            s.update({f"{blk}.{c}.conv.weight": t(ch, ch, 1), f"{blk}.{c}.conv.bias": t(ch), **bn(f"{blk}.{c}.bn", ch)})
        for j in range(scale - 1):
            s.update({f"{blk}.Res2Conv1dReluBn.convs.{j}.weight": t(w, w, 3), f"{blk}.Res2Conv1dReluBn.convs.{j}.bias": t(w),
                      **bn(f"{blk}.Res2Conv1dReluBn.bns.{j}", w)})
        s.update({f"{blk}.SE_Connect.linear1.weight": t(se, ch), f"{blk}.SE_Connect.linear1.bias": t(se),
                  f"{blk}.SE_Connect.linear2.weight": t(ch, se), f"{blk}.SE_Connect.linear2.bias": t(ch)})
    s.update({"conv.weight": t(agg, 3 * ch, 1), "conv.bias": t(agg),
              "pooling.linear1.weight": t(att, agg, 1), "pooling.linear1.bias": t(att),
              "pooling.linear2.weight": t(agg, att, 1), "pooling.linear2.bias": t(agg),
              **bn("bn", 2 * agg), "linear.weight": t(emb, 2 * agg), "linear.bias": t(emb),
              "loss_calculator.projection.weight": t(n_cls, emb)})
    return s


def test_unispeech_layout_of_the_real_checkpoint_maps_exactly():
    """The full-size layout (711 tensors, 488 of them WavLM) converts onto WavLMECAPA with every key and shape."""
    official = unispeech_checkpoint(WAVLM_LARGE_CONFIG, 512, 1536, 256, 8, 128, 128, device="meta")
    assert len(official) == 711
    assert sum(k.startswith("feature_extract.model.") for k in official) == 488
    with torch.device("meta"):
        model = WavLMECAPA()
    converted = convert_unispeech_state_dict(official, model)
    assert len(converted) == len(model.state_dict())


TINY_HEAD = dict(channels=16, aggregation_channels=24, emb_dim=8, scale=8, se_bottleneck=4, attention_channels=4)


def test_wavlm_ecapa_loads_upstream_format_offline(tmp_path, checksums):
    wcfg = {**TINY_WAVLM, "conv_bias": False, "feat_extract_norm": "layer", "do_stable_layer_norm": True}
    state = unispeech_checkpoint({**WAVLM_LARGE_CONFIG, **wcfg}, 16, 24, 8, 8, 4, 4)
    folder = bb.backbone_dir("wavlm_large_ecapa", tmp_path) / "speaker_similarity"
    folder.mkdir(parents=True)
    torch.save({"model": state, "best_valid_eer": 0.01}, folder / "wavlm_large_finetune.pth")
    (folder / "arch.json").write_text(json.dumps({"wavlm_config": wcfg, **TINY_HEAD}))
    bb.record("wavlm_large_ecapa", tmp_path, checksums=checksums, force=True)  # not the release
    metric = build_metrics(["sim_wavlm_large_ecapa"], tmp_path, checksums=checksums)[0]
    # every tensor came from the file
    sd = metric.model.state_dict()
    assert torch.equal(sd["layer2.SE_Connect.linear1.weight"], state["layer2.SE_Connect.linear1.weight"])
    assert torch.equal(sd["wavlm.encoder.layers.1.attention.gru_rel_pos_const"], state["feature_extract.model.encoder.layers.1.self_attn.grep_a"])
    assert torch.equal(sd["wavlm.feature_extractor.conv_layers.3.layer_norm.weight"], state["feature_extract.model.feature_extractor.conv_layers.3.2.1.weight"])
    rng = np.random.default_rng(1)
    x, y = (rng.standard_normal(SR) * 0.1).astype(np.float32), (rng.standard_normal(SR // 2) * 0.1).astype(np.float32)
    assert metric.embed(x, SR).shape == (8,)
    with torch.inference_mode():
        hs = metric.model.hidden_states(torch.from_numpy(x)[None])  # [L + 1, B, T, D]
        assert hs.shape[0] == TINY_WAVLM["num_hidden_layers"] + 1
        assert torch.allclose(hs[-1], metric.model.wavlm(torch.from_numpy(x)[None]).last_hidden_state)
    out = metric.score(x, SR, prompt_wav=y, prompt_resynth_wav=x)
    assert math.isfinite(out["sim_wavlm_large_ecapa_o"]) and out["sim_wavlm_large_ecapa_r"] == pytest.approx(1.0, abs=1e-6)


def test_wavlm_ecapa_rejects_foreign_checkpoint(tmp_path, checksums):
    folder = bb.backbone_dir("wavlm_large_ecapa", tmp_path)
    folder.mkdir(parents=True)
    wcfg = {**TINY_WAVLM, "conv_bias": False, "feat_extract_norm": "layer", "do_stable_layer_norm": True}
    state = unispeech_checkpoint({**WAVLM_LARGE_CONFIG, **wcfg}, 16, 24, 8, 8, 4, 4)
    del state["layer3.SE_Connect.linear2.bias"]
    state["something.else"] = torch.zeros(1)
    torch.save({"model": state}, folder / "wavlm_large_finetune.pth")
    (folder / "arch.json").write_text(json.dumps({"wavlm_config": wcfg, **TINY_HEAD}))
    bb.record("wavlm_large_ecapa", tmp_path, checksums=checksums, force=True)  # not the release
    with pytest.raises(ValueError, match="1 missing .*layer3.SE_Connect.linear2.bias.*1 unexpected .*something.else"):
        build_metrics(["sim_wavlm_large_ecapa"], tmp_path, checksums=checksums)


def test_sim_fallback_is_named_after_the_fallback(tmp_path):
    with pytest.raises(Exception, match="allow fallbacks to report sim_resemblyzer"):
        build_metrics(["sim_wavlm_large_ecapa"], tmp_path)
    metrics = build_metrics(["sim_wavlm_large_ecapa", "sim_wavlm_tdnn"], tmp_path, allow_fallbacks=True)
    assert [m.name for m in metrics] == ["sim_resemblyzer"]
