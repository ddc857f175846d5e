"""Snake and the weight-normalised convolutions (and their official state-dict names)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ns2.codec.layers import (
    Snake1d,
    WNConv1d,
    WNConvTranspose1d,
    from_legacy_weight_norm_names,
    remove_weight_norm,
    to_legacy_weight_norm_names,
)


def test_snake_formula_and_learned_alpha():
    act = Snake1d(3)
    with torch.no_grad():
        act.alpha.copy_(torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1))
    x = torch.randn(2, 3, 5)
    a = act.alpha
    assert torch.allclose(act(x), x + torch.sin(a * x) ** 2 / a, atol=1e-6)
    act(x).sum().backward()
    assert act.alpha.grad is not None and act.alpha.grad.shape == (1, 3, 1)


def test_weight_norm_conv_is_g_times_unit_v():
    conv = WNConv1d(4, 6, kernel_size=3, padding=1)
    names = set(dict(conv.named_parameters()))
    assert names == {"bias", "parametrizations.weight.original0", "parametrizations.weight.original1"}
    g = conv.parametrizations.weight.original0
    v = conv.parametrizations.weight.original1
    assert g.shape == (6, 1, 1)
    w = g * v / v.norm(dim=(1, 2), keepdim=True)
    x = torch.randn(2, 4, 9)
    assert torch.allclose(conv(x), F.conv1d(x, w, conv.bias, padding=1), atol=1e-6)


def test_transposed_conv_normalises_over_input_channels_like_dac():
    conv = WNConvTranspose1d(6, 3, kernel_size=4, stride=2, padding=1)
    assert conv.parametrizations.weight.original0.shape == (6, 1, 1)
    assert conv(torch.randn(1, 6, 5)).shape == (1, 3, 10)


def test_official_weight_g_weight_v_names_load():
    src = WNConv1d(2, 3, kernel_size=1)
    legacy = to_legacy_weight_norm_names(src.state_dict())
    assert set(legacy) == {"bias", "weight_g", "weight_v"}
    dst = WNConv1d(2, 3, kernel_size=1)
    dst.load_state_dict(legacy)  # the conv maps the legacy names itself
    x = torch.randn(1, 2, 4)
    assert torch.equal(dst(x), src(x))
    assert from_legacy_weight_norm_names({"a.b.weight_g": 1, "a.bias": 2}) == {
        "a.b.parametrizations.weight.original0": 1,
        "a.bias": 2,
    }


def test_remove_weight_norm_keeps_outputs():
    conv = torch.nn.Sequential(WNConv1d(2, 3, kernel_size=3, padding=1))
    x = torch.randn(1, 2, 7)
    before = conv(x)
    remove_weight_norm(conv)
    assert "0.weight" in conv.state_dict()
    assert torch.allclose(conv(x), before, atol=1e-6)
