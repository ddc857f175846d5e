import numpy as np
import pytest
import torch

from ns2.data.aligner.loss import binarization_loss, forward_sum_loss
from ns2.data.aligner.model import AlignerModel, beta_binomial_log_prior
from ns2.modules.mel import MelSpectrogram

VOCAB = 12


def tiny(**kw) -> AlignerModel:
    torch.manual_seed(0)
    cfg = dict(hidden_dim=64, attn_dim=32, text_layers=2, mel_layers=0, dropout=0.0)
    cfg.update(kw)
    return AlignerModel(VOCAB, **cfg)


def test_beta_binomial_prior_matches_scipy_and_is_normalised():
    from scipy.stats import betabinom

    lp = beta_binomial_log_prior(torch.tensor([9, 5]), torch.tensor([4, 5]), 9, 5, omega=1.0)
    for b, (T, L) in enumerate([(9, 4), (5, 5)]):
        ref = np.array([[betabinom(L - 1, t, T - t + 1).logpmf(k) for k in range(L)] for t in range(1, T + 1)])
        assert np.allclose(lp[b, :T, :L].numpy(), ref, atol=1e-5)
        assert np.allclose(lp[b, :T, :L].exp().sum(-1).numpy(), 1.0, atol=1e-5)
        assert (lp[b, T:] == 0).all() and (lp[b, :, L:] == 0).all()


def test_shapes_masks_and_durations(tone_batch):
    batch = tone_batch(4, VOCAB, torch.Generator().manual_seed(0))
    mel = MelSpectrogram()(batch["audio"])
    model = tiny().eval()
    out = model(batch["phonemes"], batch["phoneme_mask"], mel, batch["frame_mask"])
    B, L = batch["phonemes"].shape
    T = mel.shape[-1]
    for x in (out.attn_logprob, out.attn_soft, out.attn_hard):
        assert x.shape == (B, 1, T, L)
    valid = batch["frame_mask"][:, None, :, None] & batch["phoneme_mask"][:, None, None, :]
    assert (out.attn_soft[~valid] == 0).all() and (out.attn_hard[~valid] == 0).all()
    assert (out.attn_logprob[~valid] <= -1e3).all()
    sums = out.attn_soft.sum(-1)[:, 0]
    assert torch.allclose(sums[batch["frame_mask"]], torch.ones(()), atol=1e-5)
    assert out.durations.shape == (B, L)
    assert out.durations.sum(-1).tolist() == batch["frame_lengths"].tolist()
    assert ((out.durations >= 1) == batch["phoneme_mask"]).all()


def test_padding_does_not_change_an_item(tone_batch):
    batch = tone_batch(5, VOCAB, torch.Generator().manual_seed(1))
    mel_fn = MelSpectrogram()
    model = tiny().eval()
    mel = mel_fn(batch["audio"])
    out = model(batch["phonemes"], batch["phoneme_mask"], mel, batch["frame_mask"])
    for b in range(5):
        n, s = int(batch["phoneme_mask"][b].sum()), int(batch["audio_lengths"][b])
        t = int(batch["frame_lengths"][b])
        one = model(batch["phonemes"][b:b + 1, :n], torch.ones(1, n, dtype=torch.bool),
                    mel_fn(batch["audio"][b:b + 1, :s]), torch.ones(1, t, dtype=torch.bool))
        assert torch.allclose(out.attn_soft[b, :, :t, :n], one.attn_soft[0], atol=1e-4)
        assert torch.allclose(out.attn_logprob[b, :, :t, :n], one.attn_logprob[0], atol=1e-3)
        assert torch.equal(out.durations[b, :n], one.durations[0])
        # the loss of an item does not depend on its padding either
        fs_batch = forward_sum_loss(out.attn_logprob[b:b + 1], torch.tensor([n]), torch.tensor([t]))
        fs_one = forward_sum_loss(one.attn_logprob, torch.tensor([n]), torch.tensor([t]))
        assert torch.allclose(fs_batch, fs_one, atol=1e-4)


def test_align_mask_gives_unaligned_tokens_no_frames(tone_batch):
    batch = tone_batch(4, VOCAB, torch.Generator().manual_seed(5))
    mel = MelSpectrogram()(batch["audio"])
    model = tiny().eval()
    args = (batch["phonemes"], batch["phoneme_mask"], mel, batch["frame_mask"])
    plain = model(*args)
    all_on = model(*args, align_mask=torch.ones_like(batch["phoneme_mask"]))
    assert torch.equal(plain.durations, all_on.durations)
    assert torch.allclose(plain.attn_soft, all_on.attn_soft, atol=1e-6)
    align = batch["phoneme_mask"] & (batch["phonemes"] % 3 != 0)
    out = model(*args, align_mask=align)
    assert out.attn_soft.shape[-1] == int(align.sum(-1).max()) == out.token_mask.shape[1]
    assert out.token_lengths.tolist() == align.sum(-1).tolist()
    assert ((out.durations > 0) == align).all()
    assert out.durations.sum(-1).tolist() == batch["frame_lengths"].tolist()
    for b in range(4):  # the same as aligning the item alone
        n, t = int(batch["phoneme_mask"][b].sum()), int(batch["frame_lengths"][b])
        one = model(batch["phonemes"][b:b + 1, :n], batch["phoneme_mask"][b:b + 1, :n], mel[b:b + 1, :, :t],
                    batch["frame_mask"][b:b + 1, :t], align_mask=align[b:b + 1, :n])
        assert torch.equal(one.durations[0], out.durations[b, :n])


def test_errors_name_the_input():
    model = tiny()
    with pytest.raises(ValueError, match="phoneme_mask must be shaped"):
        model(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool), torch.zeros(2, 80, 9), torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="mel must be shaped"):
        model(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 5, dtype=torch.bool), torch.zeros(2, 40, 9), torch.ones(2, 9, dtype=torch.bool))


def test_too_few_frames_strict_and_lenient():
    x = (torch.ones(1, 6, dtype=torch.long), torch.ones(1, 6, dtype=torch.bool), torch.zeros(1, 80, 4), torch.ones(1, 4, dtype=torch.bool))
    assert tiny().eval()(*x).durations.sum() == 4
    with pytest.raises(ValueError, match="frames >= tokens"):
        tiny(strict_mas=True).eval()(*x)


def test_losses_are_finite_and_binarization_is_kl_to_the_path(tone_batch):
    batch = tone_batch(3, VOCAB, torch.Generator().manual_seed(2))
    out = tiny().eval()(batch["phonemes"], batch["phoneme_mask"], MelSpectrogram()(batch["audio"]), batch["frame_mask"])
    fs = forward_sum_loss(out.attn_logprob, batch["phoneme_mask"].sum(-1), batch["frame_lengths"])
    kl = binarization_loss(out.attn_hard, out.attn_soft)
    assert torch.isfinite(fs) and fs > 0 and torch.isfinite(kl) and kl > 0
    ref = -(out.attn_hard * torch.log(out.attn_soft.clamp(min=1e-12))).sum() / batch["frame_lengths"].sum()
    assert torch.allclose(kl, ref)
    assert binarization_loss(out.attn_hard, out.attn_hard) == 0


def test_forward_sum_loss_decreases_when_overfitting_one_batch(tone_batch):
    batch = tone_batch(4, VOCAB, torch.Generator().manual_seed(3))
    mel = MelSpectrogram()(batch["audio"])
    model = tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(100):
        out = model(batch["phonemes"], batch["phoneme_mask"], mel, batch["frame_mask"], hard=step >= 50)
        loss = forward_sum_loss(out.attn_logprob, batch["phoneme_mask"].sum(-1), batch["frame_lengths"])
        total = loss + (binarization_loss(out.attn_hard, out.attn_soft) if step >= 50 else 0.0)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.5 * losses[0], (losses[0], losses[-10:])


def test_learns_the_true_alignment_of_tone_sequences(tone_batch):
    """Trained on fresh synthetic batches, the hard durations match the generated ones."""
    g = torch.Generator().manual_seed(4)
    mel_fn = MelSpectrogram()
    model = tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(250):
        batch = tone_batch(8, VOCAB, g)
        out = model(batch["phonemes"], batch["phoneme_mask"], mel_fn(batch["audio"]), batch["frame_mask"], hard=False)
        loss = forward_sum_loss(out.attn_logprob, batch["phoneme_mask"].sum(-1), batch["frame_lengths"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = tone_batch(16, VOCAB, torch.Generator().manual_seed(99))
    model.eval()
    with torch.no_grad():
        out = model(test["phonemes"], test["phoneme_mask"], mel_fn(test["audio"]), test["frame_mask"])
    within_one = total = 0
    for b, true in enumerate(test["true_durations"]):
        pred = out.durations[b, : len(true)]
        bounds_pred, bounds_true = pred.cumsum(0)[:-1], true.cumsum(0)[:-1]
        within_one += int(((bounds_pred - bounds_true).abs() <= 1).sum())
        total += len(bounds_true)
    assert within_one / total > 0.9, within_one / total
