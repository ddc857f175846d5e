"""The discriminators: output structure, shapes, gradients, odd lengths, errors."""
from __future__ import annotations

import pytest
import torch

from ns2.codec.discriminators import ComplexSTFTDiscriminator, Discriminator, PeriodDiscriminator
from codec_train_helpers import tiny_discriminator


def test_combined_discriminator_structure_and_gradients():
    disc = tiny_discriminator()
    x = (0.1 * torch.randn(3, 1, 3203)).requires_grad_()  # not a multiple of any period
    logits, features = disc(x)
    assert disc.num_discriminators == len(logits) == len(features) == 5 + 3
    for lg, ft in zip(logits[:5], features[:5]):  # MPD: [B, 1, S/p, p], five feature maps
        assert lg.shape[0] == 3 and lg.shape[1] == 1 and len(ft) == 5
    for p, lg in zip((2, 3, 5, 7, 11), logits[:5]):
        assert lg.shape[-1] == p
    for w, lg, ft in zip((512, 256, 128), logits[5:], features[5:]):  # MRD: five convs per band, five bands
        assert lg.shape[:2] == (3, 1) and len(ft) == 25
        assert lg.shape[2] == 3203 // (w // 4) + 1  # centred STFT frames
    sum(lg.mean() for lg in logits).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in disc.parameters())


def test_dac_sizes_and_batch_independence():
    disc = Discriminator()  # DAC's sizes
    n = sum(p.numel() for p in disc.parameters())
    assert 40e6 < n < 45e6, n
    small = tiny_discriminator().eval()
    x = 0.1 * torch.randn(2, 1, 2000)
    both, _ = small(x)
    one, _ = small(x[1:])
    for a, b in zip(both, one):
        torch.testing.assert_close(a[1:], b, rtol=1e-4, atol=1e-5)


def test_parts_and_errors():
    lg, ft = PeriodDiscriminator(3, channels=(4, 4))(torch.randn(2, 1000))
    assert lg.shape == (2, 1, 112, 3) and len(ft) == 2  # 1000 -> 1002 samples = 334 rows, one stride-3 conv
    lg, ft = ComplexSTFTDiscriminator(64, channels=4)(torch.randn(2, 1, 640))
    assert lg.shape[:3] == (2, 1, 41)
    with pytest.raises(ValueError, match="empty bands"):
        ComplexSTFTDiscriminator(4)
    with pytest.raises(ValueError, match=r"\[B, 1, S\]"):
        tiny_discriminator()(torch.randn(2, 2, 100))
    with pytest.raises(ValueError, match="at least one"):
        Discriminator(periods=[], fft_sizes=[])
