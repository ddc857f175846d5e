"""MOS proxies: DNSMOS ranks speech above noise; UTMOS loads its state-dict layout offline."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ns2.metrics import build_metrics
from ns2.metrics import backbones as bb
from ns2.metrics.utmos import UTMOS22Strong

SR = 16000


@pytest.fixture(scope="module")
def dnsmos():
    return build_metrics(["dnsmos"])[0]


def test_dnsmos_noise_scores_below_speech(dnsmos, speech):
    clean = speech("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.", "en-us")
    noise = np.clip(np.random.default_rng(0).standard_normal(3 * SR) * 0.3, -1, 1).astype(np.float32)
    s, n = dnsmos.score(clean, SR), dnsmos.score(noise, SR)
    assert set(s) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}
    assert all(1.0 <= v <= 5.0 for v in (*s.values(), *n.values()))
    assert s["dnsmos_ovrl"] > n["dnsmos_ovrl"] + 0.8
    assert s["dnsmos_sig"] > n["dnsmos_sig"] and s["dnsmos_bak"] > n["dnsmos_bak"]
    # 24 kHz input and samples beyond [-1, 1] are handled (resampled, clipped)
    out = dnsmos.score(np.concatenate([[1.5], np.zeros(24000 - 1)]).astype(np.float32), 24000)
    assert all(math.isfinite(v) for v in out.values())


def utmos_layout(conv=512, dim=768, layers=12, ffn=3072, kernel=128, groups=16, dom=128, judge=128, rnn=512, proj=2048):
    """``{key: shape}`` of the released UTMOS22 strong state dict, from the published module definition."""
    s: dict[str, tuple] = {}
    w = "wav2vec2."
    for i, k in enumerate([10, 3, 3, 3, 3, 2, 2]):
        s[f"{w}feature_extractor.conv_layers.{i}.0.weight"] = (conv, 1 if i == 0 else conv, k)
    s[f"{w}feature_extractor.conv_layers.0.2.weight"] = s[f"{w}feature_extractor.conv_layers.0.2.bias"] = (conv,)
    s[f"{w}layer_norm.weight"] = s[f"{w}layer_norm.bias"] = (conv,)
    s[f"{w}post_extract_proj.weight"], s[f"{w}post_extract_proj.bias"] = (dim, conv), (dim,)
    s[f"{w}encoder.pos_conv.0.weight_g"], s[f"{w}encoder.pos_conv.0.weight_v"] = (1, 1, kernel), (dim, dim // groups, kernel)
    s[f"{w}encoder.pos_conv.0.bias"] = (dim,)
    s[f"{w}encoder.layer_norm.weight"] = s[f"{w}encoder.layer_norm.bias"] = (dim,)
    for l in range(layers):
        p = f"{w}encoder.layers.{l}."
        for proj_name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            s[f"{p}self_attn.{proj_name}.weight"], s[f"{p}self_attn.{proj_name}.bias"] = (dim, dim), (dim,)
        s[f"{p}fc1.weight"], s[f"{p}fc1.bias"], s[f"{p}fc2.weight"], s[f"{p}fc2.bias"] = (ffn, dim), (ffn,), (dim, ffn), (dim,)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            s[f"{p}{ln}.weight"] = s[f"{p}{ln}.bias"] = (dim,)
    s[f"{w}mask_emb"] = (dim,)
    s["domain_emb"], s["judge_emb"] = (1, dom), (1, judge)
    cat = dim + dom + judge
    for suffix in ("", "_reverse"):
        s[f"blstm.weight_ih_l0{suffix}"], s[f"blstm.weight_hh_l0{suffix}"] = (4 * rnn, cat), (4 * rnn, rnn)
        s[f"blstm.bias_ih_l0{suffix}"] = s[f"blstm.bias_hh_l0{suffix}"] = (4 * rnn,)
    s["projection.0.weight"], s["projection.0.bias"] = (proj, 2 * rnn), (proj,)
    s["projection.2.weight"], s["projection.2.bias"] = (1, proj), (1,)
    return s


def test_utmos_state_dict_layout_matches_release():
    with torch.device("meta"):
        model = UTMOS22Strong()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == utmos_layout()


TINY = dict(conv_dim=16, ssl_dim=24, ssl_layers=2, ssl_heads=2, ssl_ffn=32, pos_kernel=8, pos_groups=2,
            domain_dim=4, judge_dim=4, rnn_hidden=8, proj_hidden=16)


def test_utmos_loads_offline_from_cache(tmp_path, checksums):
    torch.manual_seed(0)
    model = UTMOS22Strong(**TINY)
    layout = utmos_layout(16, 24, 2, 32, 8, 2, 4, 4, 8, 16)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == layout
    folder = bb.backbone_dir("utmos22_strong", tmp_path) / "mos"
    folder.mkdir(parents=True)
    torch.save(model.state_dict(), folder / "utmos22_strong_step7459_v1.pt")
    (folder / "arch.json").write_text(json.dumps(TINY))
    bb.record("utmos22_strong", tmp_path, checksums=checksums, force=True)  # not the release file
    metric = build_metrics(["utmos"], tmp_path, checksums=checksums)[0]
    x = (np.random.default_rng(0).standard_normal(SR) * 0.1).astype(np.float32)
    out = metric.score(x, SR)
    assert set(out) == {"utmos"} and math.isfinite(out["utmos"])
    with torch.inference_mode():
        assert out["utmos"] == pytest.approx(float(model.eval()(torch.from_numpy(x)[None])[0]), abs=1e-5)


def test_utmos_falls_back_to_dnsmos(tmp_path):
    assert [m.name for m in build_metrics(["utmos"], tmp_path, allow_fallbacks=True)] == ["dnsmos"]
