"""Factorised L2-normalised VQ and the residual stack: search, straight-through, losses, dropout."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ns2.codec.quantize import ResidualVectorQuantize, VectorQuantize


def test_vq_picks_the_nearest_normalised_code():
    torch.manual_seed(0)
    vq = VectorQuantize(input_dim=6, codebook_size=10, codebook_dim=3)
    z = torch.randn(2, 6, 7)
    out = vq(z)
    assert out.codes.shape == (2, 7) and out.codes.dtype == torch.long
    assert out.z_q.shape == z.shape and out.z_e.shape == (2, 3, 7)
    cos = torch.einsum("bdt,kd->bkt", F.normalize(out.z_e, dim=1), F.normalize(vq.codebook.weight, dim=1))
    assert torch.equal(out.codes, cos.argmax(1))  # nearest on the sphere = highest cosine
    assert torch.equal(vq.logits(z, metric="quantizer").argmax(1), out.codes)
    assert torch.allclose(out.z_q, vq.embed(out.codes), atol=1e-6)
    assert out.commitment_loss.shape == (2,) and out.codebook_loss.shape == (2,)


def test_straight_through_gradients_reach_the_input_and_the_codebook():
    torch.manual_seed(0)
    vq = VectorQuantize(6, 10, 3)
    z = torch.randn(2, 6, 5, requires_grad=True)
    out = vq(z)
    (out.z_q.sum() + out.codebook_loss.sum() + out.commitment_loss.sum()).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert vq.codebook.weight.grad.abs().sum() > 0


def test_rvq_residuals_and_n_q():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantize(input_dim=8, n_codebooks=4, codebook_size=16, codebook_dim=2).eval()
    z = torch.randn(3, 8, 5)
    out = rvq(z)
    assert out.codes.shape == (3, 4, 5) and out.latents.shape == (3, 8, 5)
    assert torch.allclose(rvq.from_codes(out.codes), out.z_q, atol=1e-5)
    first = rvq(z, n_q=2)
    assert torch.equal(first.codes, out.codes[:, :2])
    # later layers quantise what the earlier ones left
    residual = z - rvq.quantizers[0].embed(out.codes[:, 0])
    assert torch.equal(rvq.quantizers[1](residual).codes, out.codes[:, 1])
    with pytest.raises(ValueError):
        rvq(z, n_q=5)


def test_quantizer_dropout_only_in_training():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantize(8, n_codebooks=4, codebook_size=16, codebook_dim=2, quantizer_dropout=1.0)
    z = torch.randn(64, 8, 3)
    train = rvq.train()(z)
    full = rvq.eval()(z)
    assert train.codes.shape == full.codes.shape and torch.equal(train.codes, full.codes)
    dropped = (train.z_q - full.z_q).abs().amax(dim=(1, 2)) > 1e-5
    assert 0 < dropped.sum() < 64  # some items kept fewer stages (a draw of 4 keeps all)
    assert torch.isfinite(train.commitment_loss) and torch.isfinite(train.codebook_loss)
    # an explicit n_q is deterministic even in training mode
    assert torch.equal(rvq.train()(z, n_q=4).z_q, full.z_q)
