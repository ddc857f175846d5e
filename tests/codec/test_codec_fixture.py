"""Our RVQCodec reproduces the official DAC implementation on a reference model and input."""
from __future__ import annotations

import torch

from ns2.codec import RVQCodec

TOL = 1e-4


def maxabs(a, b):
    return (a - b).abs().max().item()


def test_fixture_metadata_builds_our_codec(dac_tiny):
    assert isinstance(dac_tiny, RVQCodec)
    assert dac_tiny.sample_rate == 16000 and dac_tiny.hop_length == 200
    assert dac_tiny.n_q == 4 and dac_tiny.codebook_size == 64 and dac_tiny.latent_dim == 64
    assert not dac_tiny.training


@torch.no_grad()
def test_identical_codes_latents_and_audio(dac_tiny, dac_io):
    x = dac_io["x"]
    assert torch.equal(dac_tiny.preprocess(x), dac_io["x_pre"])
    codes = dac_tiny.encode(x)
    assert codes.dtype == torch.long and codes.shape == dac_io["codes"].shape
    assert torch.equal(codes, dac_io["codes"])
    # `z` is the quantised latent DAC's encode returns; `y` is DAC's decode(z) (odd rates: 15952 samples)
    z = dac_tiny.encode_latent(x)
    assert maxabs(z, dac_io["z"]) < TOL
    _, z_q = dac_tiny.quantize(dac_tiny.encode_continuous(x))
    assert maxabs(z_q, dac_io["z"]) < TOL
    z_codes = dac_tiny.codes_to_latent(dac_io["codes"])
    assert maxabs(z_codes, dac_io["z_from_codes"]) < TOL
    y = dac_tiny.decode(dac_io["z"])
    assert y.shape == dac_io["y"].shape
    assert maxabs(y, dac_io["y"]) < TOL
    assert dac_tiny.decode(dac_io["z"], length=x.shape[-1]).shape == x.shape


@torch.no_grad()
def test_codebook_logits_measure_like_the_quantizer(dac_tiny, dac_io):
    """With the encoder's residuals, the argmax of codebook_logits is the quantiser's code, layer by layer."""
    codes = dac_io["codes"]
    residual = dac_tiny.encode_continuous(dac_io["x"])
    for j in range(dac_tiny.n_q):
        logits = dac_tiny.codebook_logits(residual, j, "quantizer")
        assert logits.shape == (1, dac_tiny.codebook_size, codes.shape[-1])
        assert torch.equal(logits.argmax(1), codes[:, j])
        residual = residual - dac_tiny.layer_latent(codes[:, j], j)
    # Σ_j e_j is the latent
    total = sum(dac_tiny.layer_latent(codes[:, j], j) for j in range(dac_tiny.n_q))
    assert maxabs(total, dac_io["z_from_codes"]) < TOL


def test_rvq_logits_for_the_ce_rvq_loss(dac_tiny, dac_io):
    codes = dac_io["codes"]
    z_hat = dac_io["z_from_codes"].clone().requires_grad_(True)
    logits = dac_tiny.rvq_logits(z_hat, codes)
    assert logits.shape == (1, dac_tiny.n_q, dac_tiny.codebook_size, codes.shape[-1])
    with torch.no_grad():  # layer j's residual is ẑ0 − Σ_{i<j} e_i
        r = z_hat - dac_tiny.layer_latent(codes[:, 0], 0) - dac_tiny.layer_latent(codes[:, 1], 1)
        assert torch.allclose(logits[:, 2], dac_tiny.codebook_logits(r, 2), atol=1e-5)
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), codes)
    loss.backward()
    assert torch.isfinite(loss) and z_hat.grad is not None and z_hat.grad.abs().sum() > 0
