"""The Codec interface on a freshly built RVQCodec: shapes, padding, lengths, freezing, forward."""
from __future__ import annotations

import pytest
import torch

from ns2.codec import Codec, CodecOutput, RVQCodec


def test_codec_is_abstract():
    with pytest.raises(TypeError):
        Codec()


def test_shapes_and_padding(tiny_codec):
    c = tiny_codec
    assert c.hop_length == 10 and c.sample_rate == 8000 and c.frame_rate == 800
    assert c.frames(95) == 10 and c.frames(100) == 10 and c.frames(101) == 11
    wav = torch.randn(2, 1, 95)
    assert c.preprocess(wav).shape == (2, 1, 100) and torch.equal(c.preprocess(wav)[..., :95], wav)
    with torch.no_grad():
        codes = c.encode(wav)
        assert codes.shape == (2, c.n_q, 10) and codes.dtype == torch.long
        assert int(codes.max()) < c.codebook_size
        z = c.codes_to_latent(codes)
        assert z.shape == (2, c.latent_dim, 10)
        assert torch.allclose(c.encode_latent(wav), z, atol=1e-5)
        codes2, z_q = c.quantize(c.encode_continuous(wav))
        assert torch.equal(codes2, codes) and torch.allclose(z_q, z, atol=1e-5)
        assert c.encode(wav, n_q=2).shape == (2, 2, 10)
        y = c.decode(z)
        assert y.shape == (2, 1, 98)  # an odd rate (5) first: DAC gives (10·5 − 1)·2 samples
        assert c.decode(z, length=95).shape == (2, 1, 95)
        assert c.decode(z, length=100)[..., -1].abs().max() == 0
        assert c.decode_codes(codes, length=95).shape == (2, 1, 95)
        e = c.layer_latent(codes[:, 1], 1)
        assert e.shape == z.shape
        assert c.codebook_logits(z, 0).shape == (2, c.codebook_size, 10)


def test_forward_returns_what_the_gan_trainer_needs(tiny_codec):
    c = tiny_codec.train()
    wav = torch.randn(4, 1, 93)
    out = c(wav)
    assert isinstance(out, CodecOutput)
    assert out.wav.shape == wav.shape and out.z.shape == out.z_e.shape == (4, c.latent_dim, 10)
    assert out.codes.shape == (4, c.n_q, 10)
    (out.wav.abs().mean() + out.commitment_loss + out.codebook_loss).backward()
    assert all(p.grad is not None for p in c.encoder.parameters())


def test_freeze_survives_train(tiny_codec):
    c = tiny_codec.freeze()
    assert c.frozen and not c.training and not any(p.requires_grad for p in c.parameters())
    parent = torch.nn.ModuleDict({"codec": c, "other": torch.nn.Linear(1, 1)})
    parent.train()
    assert parent["other"].training and not c.training and not c.quantizer.training


def test_invalid_rates():
    with pytest.raises(ValueError, match="hop"):
        RVQCodec(encoder_rates=[2, 4], decoder_rates=[4, 4], decoder_dim=64, encoder_dim=4)


def test_pickle_and_deepcopy(tiny_codec):
    import copy
    import pickle

    wav = torch.randn(1, 1, 120)
    frozen = copy.deepcopy(tiny_codec).freeze()
    parent = torch.nn.ModuleDict({"codec": frozen, "head": torch.nn.Linear(2, 2)})
    back = pickle.loads(pickle.dumps(parent))  # what torch.save(model) does; parametrised convs alone refuse
    again = pickle.loads(pickle.dumps(tiny_codec))
    with torch.no_grad():
        ref = tiny_codec.encode(wav)
        assert torch.equal(back["codec"].encode(wav), ref) and torch.equal(again.encode(wav), ref)
    assert back["codec"].frozen and not any(p.requires_grad for p in back["codec"].parameters())
    assert not again.frozen
