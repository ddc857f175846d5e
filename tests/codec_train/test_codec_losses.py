"""The codec's GAN losses and the segment crop."""
from __future__ import annotations

import pytest
import torch

from ns2.lit.codec import _check_weights, crop_segments
from ns2.losses.codec import (
    MultiScaleMelLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    si_sdr,
)


def test_mel_loss_zero_on_identity_and_log10_scale():
    mel = MultiScaleMelLoss(16000, n_mels=[10, 40], window_lengths=[64, 256])
    x = 0.3 * torch.randn(2, 1, 3000)
    assert float(mel(x, x)) == 0.0
    # a gain of 10 shifts every log10 mel bin by exactly 1 (when above the clamp): the loss is 1 per scale
    assert float(mel(10 * x, x)) == pytest.approx(2.0, abs=1e-3)
    d = mel.distance(torch.cat([x[:1], 10 * x[1:]]), x)
    assert d.shape == (2,) and float(d[0]) == 0.0
    y = x.clone().requires_grad_()
    mel(y + 0.01 * torch.randn_like(y), x).backward()
    assert torch.isfinite(y.grad).all()
    with pytest.raises(ValueError, match="same shape"):
        mel(x[..., :-1], x)
    with pytest.raises(ValueError, match="equal length"):
        MultiScaleMelLoss(16000, n_mels=[10], window_lengths=[64, 128])


def test_adversarial_and_feature_losses():
    ones, zeros = [torch.ones(2, 1, 5)] * 3, [torch.zeros(2, 1, 5)] * 3
    assert float(lsgan_discriminator_loss(ones, zeros)) == 0.0  # a perfect discriminator
    assert float(lsgan_discriminator_loss(zeros, ones)) == pytest.approx(6.0)
    assert float(lsgan_generator_loss(ones)) == 0.0 and float(lsgan_generator_loss(zeros)) == pytest.approx(3.0)
    assert float(hinge_discriminator_loss([2 * o for o in ones], [-2 * o for o in ones])) == 0.0
    assert float(hinge_generator_loss(ones)) == pytest.approx(-3.0)
    feats = [[torch.randn(2, 4, 7), torch.randn(2, 4, 3)], [torch.randn(2, 8)]]
    assert float(feature_matching_loss(feats, feats)) == 0.0
    fake = [[f.clone().requires_grad_() for f in fs] for fs in feats]
    real = [[f + 1 for f in fs] for fs in feats]
    loss = feature_matching_loss(real, fake)
    assert float(loss) == pytest.approx(3.0)
    loss.backward()
    assert all(f.grad is not None for fs in fake for f in fs)


def test_si_sdr():
    x = torch.randn(3, 1, 1000)
    assert (si_sdr(0.5 * x, x) > 60).all()  # scale-invariant
    noisy = x + 0.1 * torch.randn_like(x)
    assert si_sdr(noisy, x).mean() == pytest.approx(20.0, abs=1.0)


def test_crop_segments_stays_inside_each_item():
    hop = 200
    lengths = torch.tensor([4000, 2600, 3000])
    audio = torch.zeros(3, 4000)
    for i, n in enumerate(lengths):
        audio[i, :n] = torch.arange(1, n + 1).float()  # padding is 0
    seg = crop_segments(audio, lengths, hop, frames=10, random=True, generator=torch.Generator().manual_seed(0))
    assert seg.shape == (3, 1, 2000)
    assert (seg > 0).all() and (seg[..., 1:] - seg[..., :-1] == 1).all()
    seg = crop_segments(audio, lengths, hop, frames=None, random=False)
    assert seg.shape == (3, 1, 2600) and (seg[:, 0, 0] == 1).all()  # the shortest item, whole frames
    with pytest.raises(ValueError, match="less than one codec frame"):
        crop_segments(audio, torch.tensor([4000, 150, 3000]), hop, 10, random=False)


def test_loss_weights_are_checked():
    assert _check_weights({"mel": 45}) == {"mel": 45.0, "adv_gen": 1.0, "feat": 2.0, "commitment": 0.25, "codebook": 1.0,
                                           "f0": 10.0, "voicing": 1.0}
    with pytest.raises(ValueError, match="unknown loss_weights"):
        _check_weights({"mel_loss": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        _check_weights({"feat": -1.0})
