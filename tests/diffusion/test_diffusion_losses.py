"""NaturalSpeech 2 losses: formulas, masking, prompt exclusion, CE-RVQ against a hand computation."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from ns2.codec import RVQCodec
from ns2.losses.ns2 import (
    DEFAULT_WEIGHTS,
    NS2Loss,
    ce_rvq_loss,
    ce_rvq_range,
    phonemes_outside,
    data_loss,
    duration_loss,
    durations_from_log,
    log_duration_target,
    pitch_loss,
    score_loss,
)
from ns2.models.ns2.sde import VPSDE

TINY = Path(__file__).resolve().parents[2] / "configs" / "codec" / "tiny.yaml"


@pytest.fixture(scope="module")
def codec() -> RVQCodec:
    cfg = {k: v for k, v in OmegaConf.to_container(OmegaConf.load(TINY)).items() if not k.startswith("_")}
    torch.manual_seed(0)
    return RVQCodec(**cfg).freeze()


def _batch(codec, b=3, t=20, seed=0, lengths=(20, 13, 7)):
    """A padded batch: every tensor holds garbage beyond each item's length."""
    g = torch.Generator().manual_seed(seed)
    d = codec.latent_dim
    with torch.no_grad():
        codes, z0 = codec.quantize(torch.randn(b, d, t, generator=g) * 3)
    frame_mask = torch.arange(t)[None] < torch.tensor(lengths)[:, None]
    prompt_mask = torch.zeros(b, t, dtype=torch.bool)
    prompt_mask[0, 2:6] = True
    prompt_mask[1, 0:4] = True
    sde = VPSDE()
    tt = torch.tensor([0.05, 0.5, 0.9])[:b]
    z_t = sde.sample_zt(z0, tt, torch.randn(b, d, t, generator=g))
    z0_hat = z0 + 0.3 * torch.randn(b, d, t, generator=g)
    n_ph = 9
    phone_mask = torch.arange(n_ph)[None] < torch.tensor([9, 6, 3])[:b, None]
    batch = dict(
        z0_hat=z0_hat,
        z0=z0,
        z_t=z_t,
        t=tt,
        frame_mask=frame_mask,
        prompt_mask=prompt_mask,
        codes=codes,
        log_dur_hat=torch.randn(b, n_ph, generator=g),
        durations=torch.randint(0, 12, (b, n_ph), generator=g),
        phone_mask=phone_mask,
        log_f0_hat=torch.randn(b, t, generator=g) + 5,
        log_f0=torch.randn(b, t, generator=g) + 5,
        voiced=torch.rand(b, t, generator=g) > 0.3,
    )
    return batch


def _pad(batch: dict, extra_t: int, extra_n: int, seed: int = 1) -> dict:
    """Append garbage frames / phonemes with masks false there."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in batch.items():
        if k == "t":
            out[k] = v
            continue
        extra = extra_n if k in ("log_dur_hat", "durations", "phone_mask") else extra_t
        shape = (*v.shape[:-1], extra)
        if v.dtype == torch.bool:
            pad = torch.zeros(shape, dtype=torch.bool) if k.endswith("mask") else torch.ones(shape, dtype=torch.bool)
        elif v.is_floating_point():
            pad = 1e4 * torch.randn(shape, generator=g)
        else:
            pad = torch.full(shape, -1 if k == "codes" else 10**6, dtype=v.dtype)
        out[k] = torch.cat([v, pad], dim=-1)
    return out


def test_data_and_score_formulas():
    sde = VPSDE()
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(2, 4, 6, generator=g, dtype=torch.float64)
    z0_hat = torch.randn(2, 4, 6, generator=g, dtype=torch.float64)
    eps = torch.randn(2, 4, 6, generator=g, dtype=torch.float64)
    t = torch.tensor([0.02, 0.7], dtype=torch.float64)
    z_t = sde.sample_zt(z0, t, eps)
    assert float(data_loss(z0_hat, z0)) == pytest.approx(float(((z0_hat - z0) ** 2).mean()))
    # the paper's expression, spelled out: ‖Σ⁻¹(ρ(ẑ0, t) − z_t) − ∇log p_t(z_t | z0)‖²
    var = sde.variance(t)[:, None, None]
    rho_hat, _ = sde.marginal(z0_hat, t)
    true_score = sde.score_from_z0(z_t, z0, t)
    assert torch.allclose(true_score, -eps / var.sqrt())
    direct = ((rho_hat - z_t) / var - true_score).pow(2).mean()
    assert float(score_loss(z0_hat, z0, z_t, t, sde)) == pytest.approx(float(direct), rel=1e-9)
    # "noise" weighting: the ε-prediction loss ‖ε̂ − ε‖², ε̂ = (z_t − α ẑ0)/σ
    eps_hat = (z_t - rho_hat) / var.sqrt()
    noise = score_loss(z0_hat, z0, z_t, t, sde, weighting="noise")
    assert float(noise) == pytest.approx(float((eps_hat - eps).pow(2).mean()), rel=1e-9)
    # a perfect prediction has zero loss, in float32 too (no cancellation of O(1/Σ) terms)
    z32, zt32, t32 = z0.float(), z_t.float(), torch.tensor([1e-5, 0.5])
    assert float(score_loss(z32, z32, zt32, t32, sde)) == 0.0
    assert float(data_loss(z32, z32)) == 0.0
    # half-precision predictions are upcast (the weights α²/Σ² reach ~4e12 at t = 1e-5)
    half = score_loss(z32.half(), z32.half() + 0.01, zt32.half(), t32.half(), sde)
    assert half.dtype == torch.float32 and torch.isfinite(half) and float(half) > 1e6


def test_losses_unchanged_by_padding(codec):
    batch = _batch(codec)
    padded = _pad(batch, extra_t=11, extra_n=5)
    padded["z0_hat"][0, 0, -1] = float("inf")
    padded["z0_hat"][1, 0, 15] = float("nan")  # item 1 is 13 frames long
    loss = NS2Loss()
    a = loss(**batch, codec=codec)
    b = loss(**padded, codec=codec)
    assert set(a) == {"data", "score", "ce_rvq", "duration", "pitch", "total"}
    for k in a:
        assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-5), k
        assert torch.isfinite(b[k])
    # the same for the functions, mask given as [B, 1, T] floats
    m = batch["frame_mask"][:, None].float()
    mp = padded["frame_mask"][:, None].float()
    assert float(data_loss(batch["z0_hat"], batch["z0"], m)) == pytest.approx(
        float(data_loss(padded["z0_hat"], padded["z0"], mp)), rel=1e-6
    )
    # gradients in padded frames are zero
    z0_hat = padded["z0_hat"].nan_to_num(0.0, 0.0, 0.0).requires_grad_(True)
    loss(**{**padded, "z0_hat": z0_hat}, codec=codec)["total"].backward()
    assert torch.isfinite(z0_hat.grad).all()
    assert (z0_hat.grad[:, :, batch["frame_mask"].shape[1] :] == 0).all()
    assert (z0_hat.grad.transpose(1, 2)[~padded["frame_mask"]] == 0).all()


def test_mean_is_over_valid_elements_only():
    z0 = torch.zeros(2, 3, 4)
    z0_hat = torch.zeros(2, 3, 4)
    z0_hat[0, :, :2] = 2.0  # error 4 on the 6 valid elements of item 0
    z0_hat[1] = 100.0  # item 1 fully padded
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]]).bool()
    assert float(data_loss(z0_hat, z0, mask)) == pytest.approx(4.0)
    assert float(data_loss(z0_hat, z0, torch.zeros(2, 4, dtype=torch.bool))) == 0.0


def test_prompt_frames_are_excluded(codec):
    batch = _batch(codec)
    loss = NS2Loss()
    base = loss(**batch, codec=codec)
    inside = batch["z0_hat"].clone()
    inside.transpose(1, 2)[batch["prompt_mask"]] += 5.0
    changed = loss(**{**batch, "z0_hat": inside}, codec=codec)
    for k in ("data", "score", "ce_rvq", "total"):
        assert float(changed[k]) == pytest.approx(float(base[k]), rel=1e-6), k
    outside = batch["z0_hat"].clone()
    outside[0, :, 10] += 5.0
    moved = loss(**{**batch, "z0_hat": outside}, codec=codec)
    for k in ("data", "score", "ce_rvq"):
        assert float(moved[k]) != pytest.approx(float(base[k]), rel=1e-6), k


def _ce_by_hand(z0_hat, codes, codec, mask, tau=1.0, metric="latent"):
    """Cross-entropy from first principles, the sum over quantisers of each one's mean over valid
    frames of −log softmax(−dist / τ)[true code]. ``latent``: squared distances between the residual
    and every code's latent embedding out_proj(codebook[k]); ``quantizer``: project the residual,
    L2-normalise, squared distances to the L2-normalised codebook."""
    quantizers = codec.quantizer.quantizers
    residual = z0_hat.clone()
    per_layer = []
    for j in range(codes.shape[1]):
        vq = quantizers[j]
        if metric == "latent":
            x = residual
            book = F.conv1d(vq.codebook.weight.t()[None], vq.out_proj.weight, vq.out_proj.bias)[0].t()  # [K, D]
        else:
            proj = F.conv1d(residual, vq.in_proj.weight, vq.in_proj.bias)  # [B, d, T]
            x = proj / proj.norm(dim=1, keepdim=True).clamp_min(1e-12)
            book = vq.codebook.weight / vq.codebook.weight.norm(dim=1, keepdim=True).clamp_min(1e-12)  # [K, d]
        dist = ((x.transpose(1, 2)[:, :, None, :] - book[None, None]) ** 2).sum(-1)  # [B, T, K]
        logp = torch.log_softmax(-dist / tau, dim=-1)
        nll = -logp.gather(-1, codes[:, j][..., None])[..., 0]  # [B, T]
        per_layer.append(nll[mask].mean())
        emb = F.conv1d(vq.codebook.weight[codes[:, j]].transpose(1, 2), vq.out_proj.weight, vq.out_proj.bias)
        residual = residual - emb
    return torch.stack(per_layer).sum()


def test_ce_rvq_matches_hand_computation(codec):
    batch = _batch(codec)
    mask = batch["frame_mask"]
    with torch.no_grad():
        got = ce_rvq_loss(batch["z0_hat"], batch["codes"], codec, mask)
        want = _ce_by_hand(batch["z0_hat"], batch["codes"], codec, mask)
        assert float(got) == pytest.approx(float(want), abs=1e-5)
        # fewer quantisers than the codec has
        got2 = ce_rvq_loss(batch["z0_hat"], batch["codes"][:, :2], codec, mask)
        want2 = _ce_by_hand(batch["z0_hat"], batch["codes"][:, :2], codec, mask)
        assert float(got2) == pytest.approx(float(want2), abs=1e-5)
        # the paper's sum over quantisers, or their mean
        n = batch["codes"].shape[1]
        mean = ce_rvq_loss(batch["z0_hat"], batch["codes"], codec, mask, reduction="mean")
        assert float(mean) == pytest.approx(float(want) / n, abs=1e-5)
        # the quantiser's own distances (the old behaviour)
        got_q = ce_rvq_loss(batch["z0_hat"], batch["codes"], codec, mask, metric="quantizer")
        want_q = _ce_by_hand(batch["z0_hat"], batch["codes"], codec, mask, metric="quantizer")
        assert float(got_q) == pytest.approx(float(want_q), abs=1e-5)
        # a temperature divides the logits
        got_t = ce_rvq_loss(batch["z0_hat"], batch["codes"], codec, mask, temperature=0.1)
        assert float(got_t) == pytest.approx(float(_ce_by_hand(batch["z0_hat"], batch["codes"], codec, mask, 0.1)), abs=1e-4)
        # and the codec's own all-layers logits agree
        logits = codec.rvq_logits(batch["z0_hat"], batch["codes"], "latent")  # [B, n, K, T]
        ce = F.cross_entropy(logits.transpose(1, 2), batch["codes"], reduction="none")  # [B, n, T]
        assert float(mean) == pytest.approx(float(ce.transpose(1, 2)[mask].mean()), abs=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        ce_rvq_loss(batch["z0_hat"], batch["codes"], codec, mask, reduction="avg")


def test_ce_rvq_prefers_the_true_latent(codec):
    # The latent the codes were quantised from: at every layer its residual is exactly the quantiser's
    # residual, so the true code is the arg-max of every layer's logits measured as the quantiser does.
    # The diffusion target Σ_j e_j scores far better than a random latent in the (default) latent metric.
    g = torch.Generator().manual_seed(5)
    z = torch.randn(2, codec.latent_dim, 30, generator=g) * 3
    with torch.no_grad():
        codes, _ = codec.quantize(z)
        assert torch.equal(codec.rvq_logits(z, codes, "quantizer").argmax(dim=2), codes)
        true = ce_rvq_loss(codec.codes_to_latent(codes), codes, codec)
        rand = ce_rvq_loss(torch.randn(z.shape, generator=g) * 3, codes, codec)
    assert float(true) < float(rand) - 0.1


def test_ce_rvq_checkpoint_matches(codec):
    batch = _batch(codec)
    grads = []
    for ckpt in (False, True):
        z = batch["z0_hat"].clone().requires_grad_(True)
        loss = ce_rvq_loss(z, batch["codes"], codec, batch["frame_mask"], use_checkpoint=ckpt)
        loss.backward()
        grads.append((float(loss), z.grad))
    assert grads[0][0] == pytest.approx(grads[1][0])
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-7)


def test_duration_and_pitch():
    d = torch.tensor([[0, 3, 10, 99]])
    assert torch.allclose(log_duration_target(d), torch.log(d.float() + 1))
    assert torch.equal(durations_from_log(log_duration_target(d)), d)
    assert int(durations_from_log(torch.tensor([[-3.0, -3.0]]), min_total=0).sum()) == 0
    hat = torch.log(torch.tensor([[1.0, 4.0, 11.0, 1.0]]))
    mask = torch.tensor([[True, True, True, False]])
    assert float(duration_loss(hat, d, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(duration_loss(hat + 0.5, d, mask)) == pytest.approx(0.5, abs=1e-6)
    f0_hat = torch.tensor([[5.0, 6.0, 7.0, -100.0]])
    f0 = torch.tensor([[5.5, 6.0, 6.0, 0.0]])
    assert float(pitch_loss(f0_hat, f0, mask)) == pytest.approx(0.5)
    none = pitch_loss(f0_hat.requires_grad_(True), f0, torch.zeros_like(mask))
    assert float(none) == 0.0
    none.backward()
    assert (f0_hat.grad == 0).all()


def test_ns2loss_weights_and_switches(codec):
    batch = _batch(codec)
    full = NS2Loss()(**batch, codec=codec)
    want = sum(DEFAULT_WEIGHTS[k] * full[k] for k in DEFAULT_WEIGHTS)
    assert float(full["total"]) == pytest.approx(float(want), rel=1e-6)
    assert DEFAULT_WEIGHTS == {"data": 1.0, "score": 1.0, "ce_rvq": 0.1, "duration": 1.0, "pitch": 1.0}
    no_score = NS2Loss(weights={"score": 0})(**batch, codec=codec)
    assert "score" not in no_score
    assert float(no_score["total"]) == pytest.approx(float(want - full["score"]), rel=1e-6)
    noise = NS2Loss(score_weighting="noise")(**batch, codec=codec)
    assert float(noise["score"]) < float(full["score"])
    only_diff = NS2Loss(weights={"duration": 0, "pitch": 0, "ce_rvq": 0})
    out = only_diff(z0_hat=batch["z0_hat"], z0=batch["z0"], z_t=batch["z_t"], t=batch["t"])
    assert set(out) == {"data", "score", "total"}
    # the pitch loss uses voiced & frame_mask outside the prompt (or, switched, the prompt too)
    vm = batch["voiced"] & batch["frame_mask"]
    want_pitch = pitch_loss(batch["log_f0_hat"], batch["log_f0"], vm & ~batch["prompt_mask"])
    assert float(full["pitch"]) == pytest.approx(float(want_pitch))
    old = NS2Loss(prompt_in_prosody_losses=True)(**batch, codec=codec)
    assert float(old["pitch"]) == pytest.approx(float(pitch_loss(batch["log_f0_hat"], batch["log_f0"], vm)))
    assert float(old["duration"]) == pytest.approx(float(duration_loss(batch["log_dur_hat"], batch["durations"],
                                                                        batch["phone_mask"])))
    # CE-RVQ: the paper's sum over quantisers; "mean" divides it by n
    mean = NS2Loss(ce_rvq_reduction="mean")(**batch, codec=codec)
    assert float(mean["ce_rvq"]) == pytest.approx(float(full["ce_rvq"]) / batch["codes"].shape[1], rel=1e-6)
    with pytest.raises(ValueError, match="ce_rvq_reduction"):
        NS2Loss(ce_rvq_reduction="avg")
    with pytest.raises(ValueError, match="ce_rvq_temperature"):
        NS2Loss(ce_rvq_temperature=0.0)
    with pytest.raises(ValueError, match="unknown loss weights"):
        NS2Loss(weights={"diff": 1.0})
    with pytest.raises(ValueError, match="CE-RVQ loss needs"):
        NS2Loss()(**batch)
    with pytest.raises(ValueError, match="score_weighting"):
        NS2Loss(score_weighting="snr")
    with pytest.raises(ValueError, match="frame_mask"):
        NS2Loss()(**{**batch, "frame_mask": batch["frame_mask"][:, :5]}, codec=codec)


def test_phonemes_outside_a_frame_span():
    # phonemes of 2, 0, 3, 1, 2 frames: frames [0,2) [2,2) [2,5) [5,6) [6,8)
    d = torch.tensor([[2, 0, 3, 1, 2]])
    span = torch.zeros(1, 10, dtype=torch.bool)
    span[0, 4:6] = True  # touches the third phoneme's last frame and the fourth
    assert phonemes_outside(d, span).tolist() == [[True, True, False, False, True]]
    span[:] = False
    span[0, 2:3] = True  # the zero-length phoneme sits at frame 2
    assert phonemes_outside(d, span).tolist() == [[True, False, False, True, True]]
    assert phonemes_outside(d, torch.zeros(1, 10, dtype=torch.bool)).all()


def test_prosody_losses_exclude_the_prompt(codec):
    # Durations summing to T and a prompt span covering whole phonemes: predictions on the prompt's
    # phonemes / frames must not move the duration / pitch losses; with the old switch they do.
    batch = _batch(codec)
    b, t = batch["frame_mask"].shape
    d = torch.tensor([[2, 2, 2, 2, 2, 2, 2, 2, 4], [3, 3, 3, 2, 2, 0, 0, 0, 0], [3, 2, 2, 0, 0, 0, 0, 0, 0]])
    batch["durations"] = d
    prompt = torch.zeros(b, t, dtype=torch.bool)
    prompt[0, 2:6] = True  # phonemes 1 and 2 of item 0
    prompt[1, 0:3] = True  # phoneme 0 of item 1
    batch["prompt_mask"] = prompt
    batch["log_dur_hat"] = log_duration_target(d)  # exact predictions: every change shows
    batch["log_f0_hat"] = batch["log_f0"].clone()
    base = NS2Loss()(**batch, codec=codec)
    moved = dict(batch)
    moved["log_dur_hat"] = batch["log_dur_hat"].clone()
    moved["log_dur_hat"][0, 1:3] += 3.0
    moved["log_dur_hat"][1, 0] += 3.0
    moved["log_f0_hat"] = batch["log_f0_hat"] + 2.0 * prompt
    new = NS2Loss()(**moved, codec=codec)
    for k in ("duration", "pitch"):
        assert float(new[k]) == pytest.approx(float(base[k]), rel=1e-6), k
    old_base = NS2Loss(prompt_in_prosody_losses=True)(**batch, codec=codec)
    old_new = NS2Loss(prompt_in_prosody_losses=True)(**moved, codec=codec)
    for k in ("duration", "pitch"):
        assert float(old_new[k]) > float(old_base[k]) + 0.1, k
    # a prediction outside the prompt still counts
    outside = dict(batch, log_dur_hat=batch["log_dur_hat"].clone())
    outside["log_dur_hat"][0, 5] += 3.0
    assert float(NS2Loss()(**outside, codec=codec)["duration"]) > float(base["duration"]) + 0.1


def test_ce_rvq_metric_temperature_and_range(codec):
    # DAC's factorised codebooks measured as the quantiser does: logits span at most 4 nats, and at the
    # diffusion target Σ_j e_j the true code is rarely the arg-max (in_proj does not invert out_proj);
    # measured in the latent space it is far more often. A temperature scales the logits; a learned one
    # is a parameter with a gradient.
    g = torch.Generator().manual_seed(5)
    z = torch.randn(2, codec.latent_dim, 40, generator=g) * 3
    with torch.no_grad():
        codes, _ = codec.quantize(z)
        target = codec.codes_to_latent(codes)
    quant = ce_rvq_range(target, codes, codec, metric="quantizer")
    latent = ce_rvq_range(target, codes, codec, metric="latent")
    assert quant["chance"] == pytest.approx(math.log(codec.codebook_size))
    assert quant["logit_span"] <= 4.0 + 1e-4
    assert latent["oracle_top1"] > quant["oracle_top1"] + 0.2
    assert latent["oracle"] < quant["oracle"]
    # the continuous latent the codes came from: the quantiser's metric ranks every true code first
    cont = ce_rvq_range(z, codes, codec, metric="quantizer")
    sharp = ce_rvq_range(z, codes, codec, metric="quantizer", temperature=0.05)
    assert cont["oracle_top1"] == 1.0 and sharp["oracle"] < cont["oracle"]
    assert sharp["logit_span"] == pytest.approx(cont["logit_span"] / 0.05, rel=1e-4)
    assert cont["oracle"] < cont["noisy_0.3"] < cont["noisy_1"]
    loss = NS2Loss(weights={"score": 0, "duration": 0, "pitch": 0}, ce_rvq_learn_temperature=True,
                   ce_rvq_temperature=0.5, ce_rvq_metric="quantizer")
    assert [n for n, _ in loss.named_parameters()] == ["log_temperature"]
    assert float(loss.ce_rvq_temperature) == pytest.approx(0.5)
    out = loss(z0_hat=z, z0=z, codes=codes, codec=codec)
    out["ce_rvq"].backward()
    assert loss.log_temperature.grad is not None and float(loss.log_temperature.grad) > 0  # sharper lowers it
    assert list(NS2Loss().parameters()) == []  # fixed τ: nothing to train
    with pytest.raises(ValueError, match="ce_rvq_metric"):
        NS2Loss(ce_rvq_metric="cosine")


def test_euclidean_codebooks_give_unbounded_logits():
    # NaturalSpeech 2's quantiser (codec=ns2_paper): codebooks in the latent space, no projection, no
    # L2 normalisation, so the logits are -||r - e||^2 and the exact latent scores near zero loss.
    c = RVQCodec(encoder_dim=8, encoder_rates=[2, 4, 5, 5], latent_dim=32, decoder_dim=64, decoder_rates=[5, 5, 4, 2],
                 n_codebooks=4, codebook_size=128, codebook_dim=None, factorized_codebooks=False, sample_rate=16000)
    c.freeze()
    assert c.kwargs["factorized_codebooks"] is False and c.kwargs["codebook_dim"] == 32
    vq = c.quantizer.quantizers[0]
    assert isinstance(vq.in_proj, torch.nn.Identity) and tuple(vq.codebook.weight.shape) == (128, 32)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 32, 40, generator=g) * 3
    with torch.no_grad():
        codes, _ = c.quantize(z)
        zq = c.codes_to_latent(codes)
        # the code is the Euclidean nearest neighbour of the residual
        d = ((z[:, None] - vq.codebook.weight[None, :, :, None]) ** 2).sum(2)  # [B, K, T]
        assert torch.equal(codes[:, 0], d.argmin(1))
        assert torch.allclose(c.quantize(z)[1], zq, atol=1e-4)
        r = ce_rvq_range(z, codes, c)
    assert r["logit_span"] > 20.0
    assert r["oracle"] < 0.5 * r["chance"]
    with pytest.raises(ValueError, match="codebook_dim"):
        RVQCodec(latent_dim=32, n_codebooks=2, codebook_dim=8, factorized_codebooks=False)
