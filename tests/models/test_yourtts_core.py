"""YourTTS's VITS core: the flow and the spline invert exactly, the SDP's bound is finite and differentiable,
MAS inside the model recovers known durations, a padded batch loses nothing (training and inference), inference
lengths are Σ durations · hop and seeded, and the encoders ignore padding. Tiny sizes (hidden 16, hop 200)."""
from __future__ import annotations

import math

import pytest
import torch

from ns2.data.aligner.mas import maximum_path
from ns2.models.yourtts import (
    HifiganGenerator,
    PosteriorEncoder,
    RelativePositionMultiHeadAttention,
    ResidualCouplingBlocks,
    StochasticDurationPredictor,
    TextEncoder,
    YourTTS,
    piecewise_rational_quadratic,
)

V, SPK, NLANG, F_BINS = 40, 8, 3, 33


def tiny(**kw) -> YourTTS:
    torch.manual_seed(0)
    args = dict(hidden=16, ffn=32, heads=2, layers=2, dropout=0.1, spec_channels=F_BINS, posterior_layers=2,
                flow_couplings=2, flow_layers=2, dp_channels=16, speaker_dim=SPK, num_languages=NLANG, lang_dim=4,
                upsample_rates=(5, 5, 8), upsample_kernel_sizes=(15, 15, 16), upsample_initial_channel=32,
                resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),), hop_length=200,
                maximum_path=maximum_path)
    args.update(kw)
    net = YourTTS(V, **args).eval()
    perturb_zero_inits(net)
    return net


def perturb_zero_inits(net: torch.nn.Module, scale: float = 0.3) -> None:
    """Couplings and spline projections start as the identity; give them weights so the tests mean something."""
    g = torch.Generator().manual_seed(1)
    for name, p in net.named_parameters():
        if name.endswith(("post.weight", "post.bias", "proj.weight", "proj.bias")) and not p.detach().abs().sum():
            p.data.copy_(scale * torch.randn(p.shape, generator=g))


def mask_of(lengths, t):
    return (torch.arange(t)[None, :] < torch.as_tensor(lengths)[:, None]).float()[:, None, :]


def batch(seed=0):
    """Two utterances: 9 tokens / 40 frames and 5 tokens / 22 frames, with garbage in the padding."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, V, (2, 9), generator=g)
    spec = torch.rand(2, F_BINS, 40, generator=g) * 2
    spk = torch.randn(2, SPK, generator=g)
    return tokens, torch.tensor([9, 5]), spec, torch.tensor([40, 22]), spk, torch.tensor([0, 2])


# ----------------------------------------------------------------------------------------------- flows
def test_flow_is_exactly_invertible_with_mask_and_g():
    torch.manual_seed(0)
    flow = ResidualCouplingBlocks(8, 16, kernel_size=5, dilation_rate=1, num_layers=2, num_flows=3, gin_channels=6)
    perturb_zero_inits(flow)
    x = torch.randn(2, 8, 20)
    mask = mask_of([20, 13], 20)
    g = torch.randn(2, 6, 1)
    with torch.no_grad():
        y = flow(x * mask, mask, g=g)
        back = flow(y, mask, g=g, reverse=True)
    assert (y - x * mask).abs().max() > 1e-2                      # not the identity
    assert torch.allclose(back, x * mask, atol=1e-4)
    assert not y[1, :, 13:].any()


def test_spline_inverts_and_its_logdet_is_autograds():
    g = torch.Generator().manual_seed(0)
    n, k = 12, 10
    x = torch.linspace(-6.5, 6.5, n, dtype=torch.float64)          # includes both linear tails
    w, h, d = (torch.randn(n, m, generator=g, dtype=torch.float64) for m in (k, k, k - 1))
    y, logdet = piecewise_rational_quadratic(x, w, h, d, tail_bound=5.0)
    back, logdet_inv = piecewise_rational_quadratic(y, w, h, d, inverse=True, tail_bound=5.0)
    assert torch.allclose(back, x, atol=1e-4)
    assert torch.allclose(logdet_inv, -logdet, atol=1e-6)
    jac = torch.autograd.functional.jacobian(lambda v: piecewise_rational_quadratic(v, w, h, d, tail_bound=5.0)[0], x)
    assert torch.allclose(jac - torch.diag(torch.diagonal(jac)), torch.zeros_like(jac))   # elementwise
    assert torch.allclose(torch.log(torch.diagonal(jac).abs()), logdet, atol=1e-6)
    assert (y[x.abs() > 5] == x[x.abs() > 5]).all() and (logdet[x.abs() > 5] == 0).all()


def test_sdp_bound_is_finite_and_differentiable_and_reverse_gives_log_durations():
    torch.manual_seed(0)
    sdp = StochasticDurationPredictor(20, 16, 3, dropout=0.0, gin_channels=6, lang_channels=4)
    perturb_zero_inits(sdp)
    mask = mask_of([7, 4], 7)
    x = torch.randn(2, 20, 7) * mask
    durations = torch.randint(1, 6, (2, 1, 7)).float() * mask
    g, lang = torch.randn(2, 6, 1), torch.randn(2, 4)
    nll = sdp(x, mask, durations, g=g, lang_emb=lang, generator=torch.Generator().manual_seed(0))
    assert nll.shape == (2,) and torch.isfinite(nll).all()
    nll.sum().backward()
    grads = [p.grad for p in sdp.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert sdp.cond.weight.grad.abs().sum() > 0 and sdp.cond_lang.weight.grad.abs().sum() > 0
    with torch.no_grad():
        logw = sdp(x, mask, g=g, lang_emb=lang, reverse=True, noise_scale=0.8)
    assert logw.shape == (2, 1, 7) and torch.isfinite(logw).all() and not logw[1, :, 4:].any()


# ----------------------------------------------------------------------------------------------- alignment
def test_mas_inside_the_model_recovers_known_durations():
    net = tiny()
    known = [torch.tensor([3, 1, 4, 2]), torch.tensor([2, 5, 1])]
    c, L, T = 16, 4, 10
    m_p = torch.zeros(2, c, L)
    for j in range(L):
        m_p[:, :, j] = 4.0 * j - 6.0                                  # token j's mean, far from the others
    logs_p = torch.zeros(2, c, L)
    z_p = torch.zeros(2, c, T)
    for b, d in enumerate(known):
        owner = torch.repeat_interleave(torch.arange(len(d)), d)
        z_p[b, :, : len(owner)] = m_p[b][:, owner] + 0.1 * torch.randn(c, len(owner))
    spec_mask, text_mask = mask_of([10, 8], T), mask_of([4, 3], L)
    path = net.align(z_p, m_p, logs_p, spec_mask, text_mask)
    assert path.shape == (2, T, L)
    assert path[0].sum(0).long().tolist() == known[0].tolist()
    assert path[1].sum(0).long().tolist() == known[1].tolist() + [0]
    assert not path[1, 8:].any()


def test_the_model_needs_an_alignment_search_for_training():
    net = tiny(maximum_path=None)
    tokens, tl, spec, sl, spk, lang = batch()
    with pytest.raises(RuntimeError, match="maximum_path"):
        net(tokens, tl, spec, sl, spk, lang, segment_frames=8)


# ----------------------------------------------------------------------------------------------- padding
def _alone(x, b, n, dim=-1):
    return x[b: b + 1].narrow(dim, 0, n)


def test_a_padded_batch_loses_nothing_in_training():
    net = tiny()
    tokens, tl, spec, sl, spk, lang = batch()
    start = torch.tensor([10, 16])                                   # item 1's window runs past its end (22)
    kw = dict(segment_frames=8, noise_scale=0.0, noise_scale_dp=0.0)
    with torch.no_grad():
        both = net(tokens, tl, spec, sl, spk, lang, segment_start=start, **kw)
        one = net(tokens[1:, :5], tl[1:], spec[1:, :, :22], sl[1:], spk[1:], lang[1:], segment_start=start[1:], **kw)
    assert torch.allclose(both["y_hat"][1:], one["y_hat"], atol=1e-5)
    assert not one["y_hat"][..., 6 * 200:].any()                      # zero past the utterance's end
    for key in ("z_q", "m_q", "logs_q", "z_p", "m_p", "logs_p"):
        assert torch.allclose(_alone(both[key], 1, 22), one[key], atol=1e-5), key
    assert torch.equal(both["attn"][1:, :, :22, :5], one["attn"])
    assert both["durations"][1].tolist() == one["durations"][0].tolist() + [0] * 4
    assert torch.allclose(both["duration_nll"][1:], one["duration_nll"], atol=1e-4)
    assert both["durations"].sum(1).tolist() == [40, 22]
    assert both["y_hat"].shape == (2, 1, 8 * 200) and both["wav_slice_start"].tolist() == [10, 16]


def test_a_padded_batch_loses_nothing_in_inference():
    net = tiny()
    tokens, tl, _, _, spk, lang = batch()
    kw = dict(noise_scale=0.0, noise_scale_dp=0.0)
    with torch.no_grad():
        both = net.infer(tokens, tl, spk, lang, **kw)
        one = net.infer(tokens[1:, :5], tl[1:], spk[1:], lang[1:], **kw)
    n = int(one["wav_lengths"][0])
    assert both["wav_lengths"][1] == n and both["durations"][1, :5].tolist() == one["durations"][0].tolist()
    assert torch.allclose(both["wav"][1:, :, :n], one["wav"], atol=1e-5)
    assert not both["wav"][1, :, n:].any()


def test_text_encoder_output_is_independent_of_padding():
    torch.manual_seed(0)
    enc = TextEncoder(V, 16, 16, 32, num_heads=2, num_layers=2, kernel_size=3, dropout=0.0, lang_dim=4).eval()
    lang = torch.randn(1, 4)
    tokens = torch.randint(1, V, (1, 6))
    with torch.no_grad():
        alone = enc(tokens, torch.tensor([6]), lang)
        padded = enc(torch.cat([tokens, torch.randint(1, V, (1, 5))], 1), torch.tensor([6]), lang)
    for a, p in zip(alone, padded):
        assert torch.allclose(p[..., :6], a, atol=1e-5)
        assert not p[..., 6:].any()
    assert alone[0].shape == (1, 20, 6) and alone[1].shape == (1, 16, 6)


def test_posterior_encoder_mask_zeroes_padding():
    torch.manual_seed(0)
    enc = PosteriorEncoder(F_BINS, 16, 16, kernel_size=5, num_layers=3, gin_channels=SPK).eval()
    spec = torch.rand(2, F_BINS, 30)
    lengths = torch.tensor([30, 17])
    g = torch.randn(2, SPK, 1)
    with torch.no_grad():
        z, m, logs, mask = enc(spec, lengths, g, generator=torch.Generator().manual_seed(0))
        spec2 = spec.clone()
        spec2[1, :, 17:] = 100.0                                       # other garbage in the padding
        _, m2, logs2, _ = enc(spec2, lengths, g, noise_scale=0.0)
    assert mask[:, 0].sum(-1).tolist() == [30, 17]
    for t in (z, m, logs):
        assert not t[1, :, 17:].any() and t[1, :, :17].abs().sum() > 0
    assert torch.allclose(m2, m, atol=1e-6) and torch.allclose(logs2, logs, atol=1e-6)


# ----------------------------------------------------------------------------------------------- inference
def test_infer_length_is_sum_of_durations_times_hop_and_seeded_runs_agree():
    net = tiny()
    tokens, tl, _, _, spk, lang = batch()
    with torch.no_grad():
        a = net.infer(tokens, tl, spk, lang, generator=torch.Generator().manual_seed(3))
        b = net.infer(tokens, tl, spk, lang, generator=torch.Generator().manual_seed(3))
    frames = a["durations"].sum(1)
    assert (frames > 0).all() and not a["durations"][1, 5:].any()
    assert a["wav_lengths"].tolist() == (frames * 200).tolist()
    assert a["wav"].shape == (2, 1, int(frames.max()) * 200)
    assert torch.equal(a["wav"], b["wav"]) and torch.equal(a["durations"], b["durations"])
    with torch.no_grad():
        capped = net.infer(tokens, tl, spk, lang, max_frames=3, generator=torch.Generator().manual_seed(3))
    assert capped["wav"].shape[-1] == 3 * 200


def test_deterministic_duration_predictor_variant():
    net = tiny(use_sdp=False)
    tokens, tl, spec, sl, spk, lang = batch()
    with torch.no_grad():
        out = net(tokens, tl, spec, sl, spk, lang, segment_frames=8, generator=torch.Generator().manual_seed(0))
        inf = net.infer(tokens, tl, spk, lang)
    assert out["log_durations"].shape == out["log_durations_target"].shape == (2, 1, 9)
    assert "duration_nll" not in out
    assert inf["wav_lengths"].tolist() == (inf["durations"].sum(1).clamp_min(1) * 200).tolist()


# ----------------------------------------------------------------------------------------------- layers
@pytest.mark.parametrize("length, window", [(6, 2), (3, 4), (1, 4)])
def test_relative_attention_matches_a_direct_sum_over_offsets(length, window):
    torch.manual_seed(0)
    attn = RelativePositionMultiHeadAttention(8, num_heads=2, window_size=window).eval()
    x = torch.randn(1, 8, length)
    mask = torch.ones(1, 1, length, length)

    def rel(emb, i, j):
        return emb[j - i + window] if abs(j - i) <= window else torch.zeros(4)

    with torch.no_grad():
        out = attn(x, mask)
        q = attn._heads(attn.conv_q(x))[0] / 2.0                       # [h, L, d], d = 4
        k, v = attn._heads(attn.conv_k(x))[0], attn._heads(attn.conv_v(x))[0]
        ek, ev = attn.emb_rel_k[0], attn.emb_rel_v[0]
        ref = torch.zeros(2, length, 4)
        for i in range(length):
            p = torch.stack([(q[:, i] * (k[:, j] + rel(ek, i, j))).sum(-1) for j in range(length)], -1).softmax(-1)
            for j in range(length):
                ref[:, i] += p[:, j, None] * (v[:, j] + rel(ev, i, j))
        ref = attn.conv_o(ref.transpose(1, 2).reshape(1, 8, length))
    assert torch.allclose(out, ref, atol=1e-5)


def test_generator_upsamples_by_the_hop_and_checks_it():
    gen = HifiganGenerator(16, (5, 5, 8), (15, 15, 16), 32, (3,), ((1, 3),), gin_channels=SPK, hop_length=200)
    with torch.no_grad():
        y = gen(torch.randn(2, 16, 7), torch.randn(2, SPK, 1))
    assert y.shape == (2, 1, 1400) and y.abs().max() <= 1
    assert not gen.conv_post.bias and not hasattr(gen.conv_pre, "parametrizations")
    assert hasattr(gen.ups[0], "parametrizations")
    with pytest.raises(ValueError, match="hop"):
        HifiganGenerator(16, (5, 5, 8), (15, 15, 16), 32, (3,), ((1, 3),), hop_length=256)
    with pytest.raises(ValueError, match="even"):
        HifiganGenerator(16, (5, 5, 8), (10, 10, 16), 32, (3,), ((1, 3),))


def test_paper_size_speaks_coquis_key_names():
    net = YourTTS(100, num_languages=3, lang_dim=4, spec_channels=513, speaker_dim=512)
    keys = set(net.state_dict())
    for key in ("text_encoder.emb.weight", "text_encoder.encoder.attn_layers.9.emb_rel_k",
                "text_encoder.encoder.ffn_layers.0.conv_2.weight", "posterior_encoder.enc.in_layers.15.bias",
                "flow.flows.3.post.weight", "duration_predictor.post_flows.4.proj.weight",
                "duration_predictor.flows.0.log_scale", "duration_predictor.cond_lang.weight",
                "waveform_decoder.cond_layer.weight", "waveform_decoder.resblocks.11.convs2.2.bias", "emb_l.weight"):
        assert key in keys, key
    assert net.text_encoder.encoder.attn_layers[0].emb_rel_k.shape == (1, 9, 98)     # (192 + 4) / 2 heads
    assert net.hop_length == 256 and math.prod((8, 8, 2, 2)) == 256


def test_sdp_bound_has_the_closed_form_when_its_flows_are_the_identity():
    """With identity flows, (z_u, ν) = e_q and the bound is -log N(log(d - u)) + Σ log(d - u) + log N(e_q)
    - Σ log σ'(z_u) (VITS eq. 9); reverse returns the noise's first channel."""
    torch.manual_seed(0)
    sdp = StochasticDurationPredictor(20, 16, 3, dropout=0.0).double()
    unit = math.log(math.expm1(1 - 1e-3))                            # knot derivative 1: the identity spline
    for flow in [*sdp.flows[1:], *sdp.post_flows[1:]]:
        flow.proj.bias.data.view(-1)[2 * flow.num_bins:] = unit
    mask = torch.ones(1, 1, 5, dtype=torch.double)
    x = torch.randn(1, 20, 5, dtype=torch.double)
    d = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]], dtype=torch.double)
    nll = sdp(x, mask, d, generator=torch.Generator().manual_seed(0))
    e = torch.randn((1, 2, 5), generator=torch.Generator().manual_seed(0), dtype=torch.double)
    z_u, nu = e[:, :1], e[:, 1:]
    y = torch.log(d - torch.sigmoid(z_u))
    log_n = lambda v: (-0.5 * (math.log(2 * math.pi) + v**2)).sum()  # noqa: E731
    log_q = log_n(e) - (torch.nn.functional.logsigmoid(z_u) + torch.nn.functional.logsigmoid(-z_u)).sum()
    expected = -(log_n(y) + log_n(nu) - y.sum()) + log_q
    assert torch.allclose(nll, expected.reshape(1), atol=1e-9)
    logw = sdp(x, mask, reverse=True, noise_scale=0.5, generator=torch.Generator().manual_seed(5))
    z = torch.randn((1, 2, 5), generator=torch.Generator().manual_seed(5), dtype=torch.double)
    assert torch.allclose(logw, 0.5 * z[:, :1], atol=1e-9)


def test_fewer_frames_than_tokens_still_trains():
    """MAS has no path when T < L; the aligner's diagonal (strict=False) keeps the pass finite."""
    net = tiny()
    tokens, tl, spec, _, spk, lang = batch()
    with torch.no_grad():
        out = net(tokens, tl, spec[:, :, :6], torch.tensor([6, 6]), spk, lang, segment_frames=8,
                  generator=torch.Generator().manual_seed(0))
    assert out["durations"].sum(1).tolist() == [6, 6] and torch.isfinite(out["duration_nll"]).all()
