"""The source-filter decoder: it plays the F0 it is given, silences harmonics above Nyquist, decodes
deterministically, learns F0 from its target alone, and travels in codec weight files."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ns2.codec import RVQCodec, load_codec, save_codec
from ns2.codec.harmonic import HarmonicNoiseDecoder
from ns2.audio.f0 import compute_f0

SR, HOP = 16000, 200


def decoder(**kw) -> HarmonicNoiseDecoder:
    torch.manual_seed(0)
    return HarmonicNoiseDecoder(latent_dim=8, hop_length=HOP, sample_rate=SR, channels=16, layers=2,
                                n_harmonics=32, n_noise_bands=16, **kw).eval()


def controls(f0_hz: float, frames: int = 60, n_harmonics: int = 32, voiced: bool = True) -> dict[str, torch.Tensor]:
    k = torch.arange(1, n_harmonics + 1, dtype=torch.float32)
    dist = (1.0 / k) * (k * f0_hz < SR / 2)
    return {
        "log_f0": torch.full((1, frames), math.log(f0_hz)),
        "voicing_logit": torch.full((1, frames), 10.0 if voiced else -10.0),
        "loudness": torch.full((1, frames), 0.5),
        "harmonics": (dist / dist.sum())[None, :, None].expand(1, n_harmonics, frames).contiguous(),
        "noise": torch.full((1, 16, frames), 1e-4),
    }


@pytest.mark.parametrize("f0_hz", [90.0, 150.0, 310.0])
def test_it_plays_the_f0_it_is_given(f0_hz):
    dec = decoder()
    wav = dec.synthesize(controls(f0_hz))
    assert wav.shape == (1, 1, 60 * HOP) and wav.abs().max() <= 1.0
    f0 = compute_f0(wav[0, 0].numpy(), SR, HOP)
    voiced = f0[f0 > 0]
    assert len(voiced) > 40
    cents = 1200 * np.log2(np.median(voiced) / f0_hz)
    assert abs(cents) < 20, (f0_hz, np.median(voiced))


def test_unvoiced_frames_are_noise_only():
    dec = decoder()
    voiced, unvoiced = controls(150.0), controls(150.0, voiced=False)
    assert dec.harmonic(unvoiced).pow(2).mean() < 1e-6 * dec.harmonic(voiced).pow(2).mean()
    unvoiced["noise"] = torch.full((1, 16, 60), 0.05)
    wav = dec.synthesize(unvoiced)
    assert wav.pow(2).mean() > 1e-6 and (compute_f0(wav[0, 0].numpy(), SR, HOP) > 0).sum() == 0


def test_harmonics_above_nyquist_are_silent_and_the_rest_sum_to_one():
    dec = decoder(f0_min=40.0, f0_max=1000.0)
    z = torch.randn(2, 8, 30) * 3
    c = dec.controls(z)
    f0 = c["log_f0"].clamp(math.log(40.0), math.log(1000.0)).exp()
    above = dec.harmonic_numbers[None, :, None] * f0[:, None] >= SR / 2
    assert above.any()  # with F0 up to 1 kHz some of the 32 harmonics pass 8 kHz
    assert c["harmonics"][above].abs().max() == 0
    assert torch.allclose(c["harmonics"].sum(dim=1), torch.ones_like(f0), atol=1e-5)
    for key, shape in (("log_f0", (2, 30)), ("voicing_logit", (2, 30)), ("loudness", (2, 30)), ("noise", (2, 16, 30))):
        assert c[key].shape == shape, key


def test_eval_decoding_is_deterministic_and_training_noise_is_fresh():
    dec = decoder()
    z = torch.randn(1, 8, 20)
    assert torch.equal(dec(z), dec(z))
    dec.train()
    assert not torch.equal(dec(z), dec(z))


def test_f0_is_learnt_from_its_target_alone():
    """A loss on the audio does not reach the F0 output; a loss on log_f0 does reach the trunk."""
    dec = decoder().train()
    z = torch.randn(1, 8, 20)
    c = dec.controls(z)
    c["log_f0"].retain_grad()
    dec.synthesize(c).pow(2).mean().backward()
    assert c["log_f0"].grad is None or c["log_f0"].grad.abs().max() == 0
    dec.zero_grad()
    dec.controls(z)["log_f0"].mean().backward()
    assert dec.trunk[0].parametrizations.weight.original1.grad.abs().sum() > 0


def tiny(decoder_name: str = "harmonic", **kw) -> RVQCodec:
    torch.manual_seed(0)
    return RVQCodec(encoder_dim=8, encoder_rates=[2, 4, 5, 5], latent_dim=16, decoder_dim=32,
                    decoder_rates=[5, 5, 4, 2], n_codebooks=2, codebook_size=16, codebook_dim=4,
                    sample_rate=SR, decoder=decoder_name, **kw)


def test_the_codec_with_a_harmonic_decoder_round_trips_through_a_weight_file(tmp_path):
    codec = tiny(decoder_options={"channels": 16, "layers": 1, "n_harmonics": 8, "n_noise_bands": 8},
                 explicit_pitch=True).eval()
    x = torch.randn(1, 1, 4000) * 0.1
    out = codec(x)
    assert out.wav.shape == x.shape and out.controls["log_f0"].shape == (1, 20)
    path = save_codec(codec, tmp_path / "h.pth")
    loaded = load_codec(path)
    assert isinstance(loaded.decoder, HarmonicNoiseDecoder)
    assert loaded.kwargs["decoder"] == "harmonic" and loaded.kwargs["decoder_options"]["n_harmonics"] == 8
    assert loaded.kwargs["explicit_pitch"] is True and loaded.pitch is not None
    z = codec.codes_to_latent(codec.encode(x))
    assert torch.equal(loaded.decode(z, length=4000), codec.decode(z, length=4000))
    assert not {"decoder", "explicit_pitch"} & set(tiny("dac").kwargs)  # DAC's own files keep DAC's keywords
    assert tiny("dac")(x).controls is None


def test_bad_decoder_settings_are_named():
    with pytest.raises(ValueError, match="decoder must be 'dac' or 'harmonic', got 'wavenet'"):
        tiny("wavenet")
    with pytest.raises(ValueError, match=r"decoder_options: unknown keys \['harmonics'\]"):
        tiny(decoder_options={"harmonics": 8})
    with pytest.raises(ValueError, match="f0_min < f0_max"):
        HarmonicNoiseDecoder(8, HOP, SR, f0_min=500.0, f0_max=100.0)


def test_explicit_pitch_puts_the_inputs_f0_into_the_latent():
    from ns2.codec.harmonic import PitchInput

    t = torch.arange(8000) / SR
    tone = 0.5 * torch.sin(2 * math.pi * 200.0 * t)
    wav = torch.stack([tone, torch.zeros_like(tone)])[:, None]  # a 200 Hz tone and silence
    pitch = PitchInput(latent_dim=4, hop_length=HOP, sample_rate=SR)
    feats = pitch.features(wav)
    assert feats.shape == (2, 2, 40)
    voiced = feats[0, 1] > 0
    assert voiced.sum() > 30 and feats[1].abs().max() == 0
    assert torch.allclose(feats[0, 0][voiced], torch.full((int(voiced.sum()),), (math.log(200.0) - 5.0) / 0.5), atol=0.01)
    plain, pitched = tiny(), tiny(explicit_pitch=True)  # same seed: the same encoder weights
    with torch.no_grad():
        pitched.pitch.proj.weight.mul_(100.0)

    def spread(codec):  # how far the latent moves between a 120 Hz and a 300 Hz tone
        low, high = (codec.encode_continuous(0.5 * torch.sin(2 * math.pi * f * t)[None, None]) for f in (120.0, 300.0))
        return float((high - low).abs().mean())

    assert spread(pitched) > 5 * spread(plain)
