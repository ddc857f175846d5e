"""The lean hot paths give the results of the straightforward ones (within 1e-5).

The references below are the modules as first written: every convolution masks its input and output,
every block masks again, every WaveNet layer recomputes its condition convolution, a missing mask
becomes all-ones; torch's own dropout and attention stand beside the CPU ones.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import torch.nn.functional as F

from ns2.models.ns2 import DiffusionNet, PitchPredictor
from ns2.modules.attention import attention
from ns2.modules.dropout import Dropout, dropout
from ns2.modules.masks import apply_mask, check_mask, sequence_mask
from ns2.modules.transformer import TransformerEncoder, sinusoidal_embedding


def _masked_conv(conv, x, mask):
    return apply_mask(nn.Conv1d.forward(conv, apply_mask(x, mask)), mask)


def _reference_layer(layer, x, mask, cond, step, context, context_mask):
    y = apply_mask(x + layer.step_proj(step)[:, :, None], mask)
    pre = _masked_conv(layer.dilated_conv, y, mask) + _masked_conv(layer.cond_conv, cond, mask)
    if layer.has_attention:
        a = layer.attn(layer.attn_norm(y.transpose(1, 2)), context, context_mask)
        gamma, beta = layer.film.proj(a).transpose(1, 2).chunk(2, dim=1)  # FiLM as a Linear over frames
        pre = pre * (1 + gamma) + beta
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


# --- predictors and encoders: masks where they matter ---------------------------------------------

def _reference_predictor(net: PitchPredictor, x, mask, prompt, prompt_mask):
    context = prompt.transpose(1, 2)
    for i, block in enumerate(net.convs):
        y = block.dropout(block.norm(F.relu(_masked_conv(block.conv, x, mask))))
        x = apply_mask(x + y if block.residual else y, mask)
        n = net.attention_after.get(i)
        if n is not None:
            a = net.attns[n](net.attn_norms[n](x.transpose(1, 2)), context, prompt_mask)
            x = apply_mask(x + net.dropout(a).transpose(1, 2), mask)
    return net.out(x.transpose(1, 2)).squeeze(-1) * mask.float()


def _reference_encoder(enc: TransformerEncoder, x, mask):
    pos = sinusoidal_embedding(torch.arange(x.shape[-1]), enc.dim)
    x = apply_mask(enc.dropout(x + pos.t()[None]), mask)
    for block in enc.blocks:
        h = block.attn_norm(x.transpose(1, 2))
        x = apply_mask(x + block.dropout(block.attn(h, key_mask=mask)).transpose(1, 2), mask)
        h = block.ffn_norm(x.transpose(1, 2)).transpose(1, 2)
        for i, conv in enumerate(block.ffn.convs):
            h = _masked_conv(conv, h, mask)
            if i + 1 < len(block.ffn.convs):
                h = block.ffn.dropout(F.relu(h))
        x = apply_mask(x + block.dropout(h), mask)
    return apply_mask(enc.norm(x.transpose(1, 2)).transpose(1, 2), mask)


def _perturbed(module):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return module.eval()


def _garbage_padded(B=3, C=32, T=23, lengths=(23, 17, 9)):
    g = torch.Generator().manual_seed(2)
    mask = sequence_mask(torch.tensor(lengths), T)
    return torch.randn(B, C, T, generator=g) * 3, mask  # padded frames hold garbage, not zeros


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_predictor_matches_reference(kernel_size):
    net = _perturbed(PitchPredictor(32, 32, layers=4, kernel_size=kernel_size, attention_every=2, heads=2, dropout=0.0))
    x, mask = _garbage_padded()
    prompt, pmask = torch.randn(3, 32, 11), sequence_mask(torch.tensor([11, 6, 8]))
    with torch.no_grad():
        torch.testing.assert_close(net(x, mask, prompt, pmask), _reference_predictor(net, x, mask, prompt, pmask),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel_sizes", [[9, 1], [3, 3], [1, 3]])
def test_encoder_matches_reference(kernel_sizes):
    enc = _perturbed(TransformerEncoder(32, 2, 2, 64, kernel_sizes, dropout=0.0))
    x, mask = _garbage_padded()
    with torch.no_grad():
        out = enc(x, mask)
        torch.testing.assert_close(out, _reference_encoder(enc, x, mask), atol=1e-5, rtol=1e-5)
    assert out.masked_select(~mask[:, None, :]).abs().max() == 0


def test_predictor_and_encoder_gradients_match_reference():
    x, mask = _garbage_padded()
    prompt, pmask = torch.randn(3, 32, 11), sequence_mask(torch.tensor([11, 6, 8]))
    for net, ref, args in [
        (PitchPredictor(32, 32, layers=4, kernel_size=3, attention_every=2, heads=2, dropout=0.0),
         _reference_predictor, (x, mask, prompt, pmask)),
        (TransformerEncoder(32, 2, 2, 64, [9, 1], dropout=0.0), _reference_encoder, (x, mask)),
    ]:
        net = _perturbed(net).train()
        ref(net, *args).square().sum().backward()
        expected = {n: p.grad.clone() for n, p in net.named_parameters()}
        net.zero_grad()
        net(*args).square().sum().backward()
        for n, p in net.named_parameters():
            torch.testing.assert_close(p.grad, expected[n], atol=1e-5, rtol=1e-4, msg=n)


# --- dropout and attention on CPU ------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.2, 0.5])
def test_cpu_dropout_has_torchs_distribution(p):
    x = torch.ones(400, 500, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x, p)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # 200k draws: 5 sigma is ~0.005
    rate = round(p * 2**15) / 2**15  # p resolved to 1/32768: the scale is the realised rate's
    assert abs(rate - p) < 2**-15
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - rate)))
    # neighbours (lanes of one 64-bit draw) are independent: both kept at (1 - p)^2
    k = kept.flatten()
    assert abs((k[:-1] & k[1:]).float().mean().item() - (1 - p) ** 2) < 0.006
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # the gradient is the same mask, the same scale
    torch.manual_seed(0)
    torch.testing.assert_close(dropout(x, p), y)  # seeded: the same mask again


def test_random_bits_are_uniform_over_15_bits():
    from ns2.modules.dropout import random_bits

    torch.manual_seed(0)
    r = random_bits((1001, 7))  # not a multiple of four lanes
    assert r.shape == (1001, 7) and r.dtype == torch.int16 and int(r.min()) >= 0
    hist = torch.bincount((r >> 11).flatten().long(), minlength=16).float() / r.numel()  # top 4 bits
    assert hist.shape == (16,) and (hist - 1 / 16).abs().max() < 0.01
    assert int(r.max()) > 32000  # the 15th bit is drawn


def test_cpu_dropout_keeps_the_dtype_and_the_rate_in_bfloat16():
    x = torch.ones(400, 500, dtype=torch.bfloat16)
    torch.manual_seed(0)
    y = dropout(x, 0.2)
    assert y.dtype == torch.bfloat16 and abs((y != 0).float().mean().item() - 0.8) < 0.005


def test_dropout_module_is_identity_in_eval_and_keeps_torchs_interface():
    d = Dropout(0.5)
    x = torch.randn(4, 8)
    assert isinstance(d, torch.nn.Dropout) and d.p == 0.5 and not list(d.parameters())
    torch.testing.assert_close(d.eval()(x), x)
    assert (d.train()(x) == 0).any()
    torch.testing.assert_close(dropout(x, 0.0), x)
    assert (dropout(x, 1.0) == 0).all()


def test_attention_matches_sdpa_without_dropout_and_is_unbiased_with_it():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 2, 5, 4, generator=g) for _ in range(3))
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :]
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(attention(q, k, v, mask), ref)
    torch.manual_seed(0)
    mean = torch.stack([attention(q, k, v, mask, dropout_p=0.3) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(mean, ref, atol=0.06, rtol=0)  # E[dropout(w)] = w: unbiased
    k2, v2 = k.clone(), v.clone()
    k2[1, :, 3:], v2[1, :, 3:] = 1e3, 1e3  # masked keys must stay unread under dropout too
    torch.manual_seed(1)
    a = attention(q, k, v, mask, dropout_p=0.3)
    torch.manual_seed(1)
    torch.testing.assert_close(attention(q, k2, v2, mask, dropout_p=0.3), a)
