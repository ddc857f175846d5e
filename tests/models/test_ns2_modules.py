"""NaturalSpeech 2's network boxes: shapes, masks, padding invariance, ablation switches, paper sizes."""
from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from ns2.models.ns2 import (
    DiffusionNet,
    DurationPredictor,
    LengthRegulator,
    NaturalSpeech2,
    PhonemeEncoder,
    PitchEmbedding,
    PitchPredictor,
    PromptEncoder,
    durations_from_log,
)
from ns2.modules.attention import MultiHeadAttention
from ns2.modules.masks import sequence_mask

H, D, V = 32, 8, 40
ENC = dict(layers=1, heads=2, filter_size=64, kernel_sizes=[3, 1], dropout=0.1)
PRED = dict(layers=3, attention_every=3, heads=2, dropout=0.1)
DIFF = dict(layers=4, kernel_size=3, cond_kernel_size=3, attention_every=2, heads=2, dropout=0.1)
TINY = dict(
    vocab_size=V,
    latent_dim=D,
    hidden=H,
    num_query_tokens=4,
    phoneme_encoder=ENC,
    prompt_encoder=ENC,
    duration_predictor={**PRED, "kernel_size": 3},
    pitch_predictor={**PRED, "kernel_size": 5},
    pitch_embedding={"n_bins": 32},
    diffusion=DIFF,
)
PAPER = {"phoneme_encoder": 72e6, "prompt_encoder": 69e6, "duration_predictor": 34e6, "pitch_predictor": 50e6, "diffusion": 183e6}


def tiny(**overrides) -> NaturalSpeech2:
    """A tiny model in eval mode, every parameter perturbed off its initial value (LayerNorm biases
    and FiLM weights included), so that masking bugs cannot hide behind zero-initialised terms."""
    torch.manual_seed(0)
    model = NaturalSpeech2(**{**TINY, **overrides}).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def garbage_pad(x: torch.Tensor, length: int, value_fn=torch.randn) -> torch.Tensor:
    """Right-pad x [1, ..., T] to ``length`` along the last axis with garbage (masking must hide it)."""
    pad = value_fn(*x.shape[:-1], length - x.shape[-1]).to(x.dtype)
    return torch.cat([x, pad], dim=-1)


def batch_of(items: list[torch.Tensor], fill=torch.randn) -> tuple[torch.Tensor, torch.Tensor]:
    """[1, ..., T_i] items -> (padded [B, ..., T_max], mask [B, T_max])."""
    t = max(x.shape[-1] for x in items)
    lengths = torch.tensor([x.shape[-1] for x in items])
    return torch.cat([garbage_pad(x, t, fill) for x in items]), sequence_mask(lengths, t)


def ids(*shape):
    return torch.randint(1, V, shape)


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, atol=1e-5, rtol=1e-5)


# --- masks and attention ----------------------------------------------------------------------
def test_sequence_mask():
    m = sequence_mask(torch.tensor([1, 3]), 4)
    assert m.tolist() == [[True, False, False, False], [True, True, True, False]]


def test_attention_ignores_padded_keys_and_handles_empty():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, context_dim=8).eval()
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 7, 8)
    key_mask = sequence_mask(torch.tensor([3, 0]), 7)
    y = attn(x, ctx, key_mask)
    ctx2 = ctx.clone()
    ctx2[0, 3:] = 100.0
    assert close(attn(x, ctx2, key_mask)[0], y[0])
    assert y.shape == (2, 5, 16) and torch.isfinite(y).all() and (y[1] == 0).all()


# --- each box: shapes, zero padding, padding invariance -------------------------------------------
def test_phoneme_encoder_padding_invariance():
    enc = tiny().phoneme_encoder
    a, b = ids(1, 5), ids(1, 9)
    batch, mask = batch_of([a, b], fill=lambda *s: torch.randint(1, V, s))
    out = enc(batch, mask)
    assert out.shape == (2, H, 9) and (out[0, :, 5:] == 0).all()
    assert close(out[0, :, :5], enc(a, None)[0]) and close(out[1], enc(b)[0])


def test_prompt_encoder_padding_invariance():
    enc = tiny().prompt_encoder
    a, b = torch.randn(1, D, 11), torch.randn(1, D, 6)
    batch, mask = batch_of([a, b])
    out = enc(batch, mask)
    assert out.shape == (2, H, 11) and (out[1, :, 6:] == 0).all()
    assert close(out[0], enc(a)[0]) and close(out[1, :, :6], enc(b)[0])


@pytest.mark.parametrize("box", ["duration_predictor", "pitch_predictor"])
def test_predictors_padding_invariance(box):
    pred = getattr(tiny(), box)
    xs = [torch.randn(1, H, 4), torch.randn(1, H, 10)]
    ps = [torch.randn(1, H, 9), torch.randn(1, H, 3)]  # the shorter input has the longer prompt
    x, xm = batch_of(xs)
    p, pm = batch_of(ps)
    out = pred(x, xm, p, pm)
    assert out.shape == (2, 10) and (out[0, 4:] == 0).all()
    for i in range(2):
        alone = pred(xs[i], None, ps[i], None)[0]
        assert close(out[i, : xs[i].shape[-1]], alone)


def test_length_regulator_expands_and_masks():
    lr = LengthRegulator()
    h = torch.arange(1.0, 4.0)[None, None, :].repeat(2, 2, 1)  # [2, 2, 3], phoneme j has value j + 1
    d = torch.tensor([[2, 0, 1], [1, 3, 7]])  # item 0: 3 frames; item 1: phoneme 2 is padding
    pm = torch.tensor([[True, True, True], [True, True, False]])
    c, fm = lr(h, d, pm)
    assert c.shape == (2, 2, 4) and fm.tolist() == [[True, True, True, False], [True] * 4]
    assert c[0, 0].tolist() == [1, 1, 3, 0] and c[1, 1].tolist() == [1, 2, 2, 2]
    c5, fm5 = lr(h, d, pm, max_frames=5)
    assert c5.shape[-1] == 5 and not fm5[:, 4].any()
    with pytest.raises(ValueError, match="integer frames"):
        lr(h, d.float(), pm)


def test_durations_from_log_roundtrip():
    d = torch.tensor([[0, 3, 12], [5, 0, 0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    back = durations_from_log(torch.log1p(d.float()) + 0.01 * torch.randn(2, 3), mask)
    assert back.tolist() == d.tolist()
    assert durations_from_log(torch.full((1, 3), -5.0)).sum() == 1  # never zero frames in all


def test_pitch_embedding_buckets_and_masks():
    emb = PitchEmbedding(H, n_bins=16)
    log_f0 = torch.log(torch.tensor([[10.0, 100.0, 200.0, 5000.0], [0.0, float("nan"), 120.0, 120.0]]))
    b = emb.buckets(log_f0)
    assert b[0, 0] == 0 and b[0, 3] == 15 and b[0, 1] < b[0, 2] and b[1, 0] == 0 and b[1, 1] == 0
    out = emb(log_f0, torch.tensor([[True] * 4, [True, True, False, False]]))
    assert out.shape == (2, H, 4) and (out[1, :, 2:] == 0).all() and torch.isfinite(out).all()


@pytest.mark.parametrize("switch", [{}, {"use_query_attention": False}, {"use_diffusion_prompt": False}])
def test_diffusion_padding_invariance(switch):
    net = tiny(**switch).diffusion
    zs, cs = [torch.randn(1, D, 12), torch.randn(1, D, 7)], [torch.randn(1, H, 12), torch.randn(1, H, 7)]
    ps = [torch.randn(1, H, 3), torch.randn(1, H, 8)]
    t = torch.tensor([0.3, 0.8])
    z, fm = batch_of(zs)
    c, _ = batch_of(cs)
    p, pm = batch_of(ps)
    out = net(z, t, c, fm, p, pm)
    assert out.shape == (2, D, 12) and (out[1, :, 7:] == 0).all()
    for i in range(2):
        alone = net(zs[i], t[i : i + 1], cs[i], None, ps[i], None)[0]
        assert close(out[i, :, : zs[i].shape[-1]], alone)


def test_full_model_padding_invariance_and_denoiser():
    model = tiny()
    phs = [ids(1, 4), ids(1, 6)]
    durs = [torch.tensor([[2, 0, 3, 1]]), torch.tensor([[1, 2, 1, 3, 2, 1]])]  # 6 and 10 frames
    f0s = [torch.randn(1, 6) + 5, torch.randn(1, 10) + 5]
    zts = [torch.randn(1, D, 6), torch.randn(1, D, 10)]
    prompts = [torch.randn(1, D, 9), torch.randn(1, D, 5)]
    ph, pm = batch_of(phs, fill=lambda *s: torch.randint(1, V, s))
    dur, _ = batch_of(durs, fill=lambda *s: torch.randint(0, 5, s))
    f0, _ = batch_of(f0s)
    zt, fm = batch_of(zts)
    zp, prm = batch_of(prompts)
    t = torch.tensor([0.2, 0.9])
    out = model(ph, pm, dur, f0, zt, t, zp, prm)
    assert out.z0_hat.shape == (2, D, 10) and out.log_duration.shape == (2, 6) and out.log_f0.shape == (2, 10)
    assert torch.equal(out.frame_mask, fm)
    for i in range(2):
        alone = model(phs[i], None, durs[i], f0s[i], zts[i], t[i : i + 1], prompts[i], None)
        n, f = phs[i].shape[-1], zts[i].shape[-1]
        assert close(out.z0_hat[i, :, :f], alone.z0_hat[0])
        assert close(out.log_duration[i, :n], alone.log_duration[0]) and close(out.log_f0[i, :f], alone.log_f0[0])
    fn = model.denoiser(out.cond, fm, out.prompt_hidden, prm)
    assert close(fn(zt, t), out.z0_hat)


def test_infer_condition_from_text_and_prompt():
    model = tiny()
    ph, pm = batch_of([ids(1, 3), ids(1, 5)], fill=lambda *s: torch.randint(1, V, s))
    zp = torch.randn(2, D, 6)
    cond = model.infer_condition(ph, pm, zp, None)
    total = cond.durations.sum(-1)
    assert (total >= 1).all() and cond.cond.shape == (2, H, int(total.max())) and torch.equal(cond.frame_mask.sum(-1), total)
    assert (cond.durations[0, 3:] == 0).all()


# --- ablation switches -----------------------------------------------------------------------------
def count(module) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def test_switch_prompt_in_predictors():
    on, off = tiny(), tiny(use_prompt_in_predictors=False)
    assert len(on.duration_predictor.attns) == 1 and len(off.duration_predictor.attns) == 0
    assert len(off.pitch_predictor.attns) == 0 and off.prompt_encoder is not None  # the diffusion still uses it
    h, p = torch.randn(1, H, 5), torch.randn(1, H, 4)
    assert close(off.duration_predictor(h, None, p, None), off.duration_predictor(h, None, 5 * p, None))
    assert not close(on.duration_predictor(h, None, p, None), on.duration_predictor(h, None, 5 * p, None))
    both_off = tiny(use_prompt_in_predictors=False, use_diffusion_prompt=False)
    assert both_off.prompt_encoder is None and both_off.encode_prompt(None) is None


def test_switch_query_attention_and_tokens():
    on, off = tiny(), tiny(use_query_attention=False)
    assert on.diffusion.query_tokens.shape == (4, H) and not hasattr(off.diffusion, "query_tokens")
    assert tiny(num_query_tokens=7).diffusion.query_tokens.shape == (7, H)
    p, pm = torch.randn(2, H, 5), sequence_mask(torch.tensor([5, 2]), 5)
    ctx_on, m_on = on.diffusion.prompt_context(p, pm)
    ctx_off, m_off = off.diffusion.prompt_context(p, pm)
    assert ctx_on.shape == (2, 4, H) and m_on is None
    assert ctx_off.shape == (2, 5, H) and torch.equal(m_off, pm)


def test_switch_diffusion_prompt():
    on, off = tiny(), tiny(use_diffusion_prompt=False)
    assert on.diffusion.wavenet.attention_layers == [1, 3] and off.diffusion.wavenet.attention_layers == []
    assert count(off.diffusion) < count(on.diffusion)
    z, c, t = torch.randn(1, D, 6), torch.randn(1, H, 6), torch.tensor([0.5])
    p = torch.randn(1, H, 4)
    assert close(off.denoise(z, t, c, None, p), off.denoise(z, t, c, None, 3 * p))
    assert not close(on.denoise(z, t, c, None, p), on.denoise(z, t, c, None, 3 * p))


# --- construction, codec, errors -----------------------------------------------------------------
def test_model_receives_codec_without_owning_it():
    class FakeCodec(torch.nn.Module):
        latent_dim = D

    codec = FakeCodec()
    model = NaturalSpeech2(**{**TINY, "latent_dim": None}, codec=codec)
    assert model.latent_dim == D and all(m is not codec for m in model.modules())
    with pytest.raises(ValueError, match="disagrees"):
        NaturalSpeech2(**{**TINY, "latent_dim": D + 1}, codec=codec)
    with pytest.raises(ValueError, match="latent dimension"):
        NaturalSpeech2(**{**TINY, "latent_dim": None})


def test_clear_errors():
    model = tiny()
    with pytest.raises(ValueError, match="vocab_size"):
        model.encode_text(torch.tensor([[1, V]]))
    with pytest.raises(ValueError, match=r"z_prompt must be \[B, 8, Tp\]"):
        model.encode_prompt(torch.randn(1, D + 1, 4))
    with pytest.raises(ValueError, match="differs from the model's hidden"):
        NaturalSpeech2(**{**TINY, "diffusion": {**DIFF, "hidden": 64}})


# --- training signal and speed ---------------------------------------------------------------------
def test_gradients_reach_every_parameter():
    model = tiny().train()
    ph = ids(2, 7)
    dur = torch.randint(1, 3, (2, 7))
    t_frames = int(dur.sum(-1).max())
    args = (ph, None, dur, torch.randn(2, t_frames) + 5, torch.randn(2, D, t_frames), torch.rand(2), torch.randn(2, D, 9), None)
    model.zero_grad()
    out = model(*args)
    (out.z0_hat.square().mean() + (out.log_duration - 1).square().mean() + (out.log_f0 - 5).square().mean()).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


# --- configs and the paper's sizes ---------------------------------------------------------------
def scale_net(compose, scale: str, codec: str | None = None):
    overrides = ["model=ns2", f"model/scale={scale}"] + ([f"codec={codec}"] if codec else [])
    cfg = compose("train", overrides)
    return cfg.model.net


def build(net_cfg) -> NaturalSpeech2:
    from hydra.utils import instantiate

    with torch.device("meta"):
        return instantiate(net_cfg)


@pytest.mark.parametrize("scale", ["tiny", "small", "paper"])
def test_scale_configs_instantiate(compose, scale):
    net = scale_net(compose, scale)
    model = build(net)
    assert isinstance(model, NaturalSpeech2) and model.hidden == net.hidden


def test_latent_dim_follows_the_codec(compose):
    assert scale_net(compose, "paper", "tiny").latent_dim == 32
    assert scale_net(compose, "tiny", "ns2_paper").latent_dim == 256
    assert OmegaConf.select(scale_net(compose, "paper"), "latent_dim") == 256


def test_paper_scale_parameter_counts_match_the_card(compose):
    model = build(scale_net(compose, "paper"))
    for name, target in PAPER.items():
        n = count(getattr(model, name))
        assert abs(n - target) / target < 0.05, f"{name}: {n / 1e6:.1f}M vs the paper's {target / 1e6:.0f}M"
    assert len(model.diffusion.wavenet.layers) == 40 and len(model.diffusion.wavenet.attention_layers) == 13
    assert len(model.duration_predictor.convs) == 30 and len(model.duration_predictor.attns) == 10
    assert model.diffusion.query_tokens.shape == (32, 512)
