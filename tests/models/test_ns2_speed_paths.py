"""The lean hot paths give the results of the straightforward ones (within 1e-5).

The reference below is the WaveNet as first written: every convolution masks its input and output,
every layer recomputes its condition convolution, a missing mask becomes all-ones.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ns2.models.ns2 import DiffusionNet
from ns2.modules.masks import apply_mask, check_mask, sequence_mask
from ns2.modules.transformer import sinusoidal_embedding


def _masked_conv(conv, x, mask):
    return apply_mask(nn.Conv1d.forward(conv, apply_mask(x, mask)), mask)


def _reference_layer(layer, x, mask, cond, step, context, context_mask):
    y = apply_mask(x + layer.step_proj(step)[:, :, None], mask)
    pre = _masked_conv(layer.dilated_conv, y, mask) + _masked_conv(layer.cond_conv, cond, mask)
    if layer.has_attention:
        pre = layer.film(pre, layer.attn(layer.attn_norm(y.transpose(1, 2)), context, context_mask))
    g = layer.dropout(torch.tanh(pre[:, : layer.channels]) * torch.sigmoid(pre[:, layer.channels :]))
    res, skip = _masked_conv(layer.out_conv, g, mask).chunk(2, dim=1)
    return apply_mask((x + res) / math.sqrt(2.0), mask), skip


def _reference_denoiser(net: DiffusionNet, z_t, t, cond, frame_mask, prompt, prompt_mask):
    mask = check_mask(frame_mask, z_t)
    ctx, ctx_mask = net.prompt_context(prompt, prompt_mask)
    step = net.time_mlp(sinusoidal_embedding(net.time_scale * t, net.hidden))
    x = apply_mask(torch.relu(net.in_proj(z_t)), mask)
    cond = apply_mask(cond, mask)
    skips = torch.zeros_like(x)
    for layer in net.wavenet.layers:
        x, skip = _reference_layer(layer, x, mask, cond, step, ctx, ctx_mask)
        skips = skips + skip
    skips = skips / math.sqrt(len(net.wavenet.layers))
    return apply_mask(net.out_proj(torch.relu(net.skip_proj(skips))), mask)


def _net(**kw) -> DiffusionNet:
    torch.manual_seed(0)
    return DiffusionNet(8, hidden=32, layers=5, heads=2, attention_every=2, dropout=0.0, num_query_tokens=4, **kw).eval()


def _inputs(padded: bool):
    g = torch.Generator().manual_seed(1)
    B, T, Tp = 3, 23, 11
    mask = sequence_mask(torch.tensor([23, 17, 9])) if padded else None
    pmask = sequence_mask(torch.tensor([11, 6, 8])) if padded else None
    return (torch.randn(B, 8, T, generator=g), torch.rand(B, generator=g), torch.randn(B, 32, T, generator=g), mask,
            torch.randn(B, 32, Tp, generator=g), pmask)


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("kw", [{}, {"cond_kernel_size": 1, "dilation_cycle": 3}, {"use_query_attention": False}])
def test_denoiser_matches_reference(padded, kw):
    net = _net(**kw)
    args = _inputs(padded)
    with torch.no_grad():
        ref = _reference_denoiser(net, *args)
        out = net(*args)
        z_t, t, cond, mask, prompt, pmask = args
        cached = net(z_t, t, cond, mask, context=net.prompt_context(prompt, pmask), cond_proj=net.condition(cond, mask))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached, ref, atol=1e-5, rtol=1e-5)
    if padded:  # zero at padding, as before
        assert out.masked_select(~mask[:, None, :]).abs().max() == 0


def test_denoiser_gradients_match_reference():
    net = _net().train()
    args = _inputs(True)
    _reference_denoiser(net, *args).square().sum().backward()
    ref = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    net(*args).square().sum().backward()
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], atol=1e-5, rtol=1e-4, msg=n)


def test_cond_proj_of_wrong_length_is_refused():
    net = _net()
    z_t, t, cond, mask, prompt, pmask = _inputs(False)
    with pytest.raises(ValueError, match="one tensor per layer"):
        net(z_t, t, cond, mask, prompt, pmask, cond_proj=net.condition(cond)[:2])
