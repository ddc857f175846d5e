"""YourTTS's parts around the VITS core: the discriminator, the two speaker encoders, and the adapter that
loads the released Coqui checkpoint (checked on a tiny Coqui-format checkpoint built here)."""
from __future__ import annotations

import functools
import json
import math
import re
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from ns2.models.yourtts.discriminator import ScaleDiscriminator, VITSDiscriminator
from ns2.models.yourtts.speaker_encoder import (
    ResemblyzerSpeakerEncoder,
    ResNetSpeakerEncoder,
    htk_mel_filterbank,
)

REPO = Path(__file__).resolve().parents[2]
PREPARED_WAV = REPO / "data/synthetic-small/prepared/audio/valid/1009/1/1009_1_000031.wav"


def speech_like(seconds: float = 3.0, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A prepared 16 kHz corpus file when present, else a harmonic signal with a moving f0 and syllable envelope."""
    if PREPARED_WAV.is_file():
        import soundfile as sf

        wav, file_sr = sf.read(PREPARED_WAV, dtype="float32")
        if file_sr == sr and wav.ndim == 1 and wav.size >= int(seconds * sr):
            return wav[: int(seconds * sr)]
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum(np.sin(k * phase) / k for k in range(1, 20))
    env = 0.5 * (1 - np.cos(2 * np.pi * 3.0 * t)) ** 2
    return (0.1 * wav * env + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


# --- discriminator --------------------------------------------------------------------------------
TINY_DISC = dict(period_channels=(4, 8, 8, 8, 8), scale_channels=(4, 8, 16, 16, 16, 16),
                 scale_groups=(1, 2, 4, 4, 4, 1))


def test_vits_discriminator_outputs_one_scale_and_five_periods():
    torch.manual_seed(0)
    disc = VITSDiscriminator(**TINY_DISC)
    s = 4000
    logits, features = disc(torch.randn(2, 1, s))
    assert len(logits) == len(features) == 6
    # scale: strides 1, 4, 4, 4, 4, 1 -> ceil(S / 256) frames, six feature maps before the last conv
    assert logits[0].shape == (2, 1, math.ceil(s / 256))
    assert [f.shape[1] for f in features[0]] == [4, 8, 16, 16, 16, 16]
    assert features[0][0].shape[-1] == s and features[0][1].shape[-1] == math.ceil(s / 4)
    for p, lg, feats in zip((2, 3, 5, 7, 11), logits[1:], features[1:]):
        assert lg.shape[0] == 2 and lg.shape[1] == 1 and lg.shape[-1] == p
        assert len(feats) == 5 and feats[0].shape[-1] == p
    # the same result for [B, S] input, and weight norm in the parametrizations layout
    logits2, _ = disc(torch.randn(2, s))
    assert [lg.shape for lg in logits2] == [lg.shape for lg in logits]
    keys = disc.state_dict()
    assert "nets.0.convs.1.parametrizations.weight.original0" in keys
    assert "nets.0.conv_post.parametrizations.weight.original1" in keys
    assert disc.nets[0].convs[1].groups == 2


def test_discriminator_gradients_reach_the_input_and_paper_sizes():
    torch.manual_seed(0)
    disc = VITSDiscriminator(**TINY_DISC)
    x = torch.randn(1, 1, 2048, requires_grad=True)
    logits, features = disc(x)
    (sum(lg.square().mean() for lg in logits) + sum(f.abs().mean() for fs in features for f in fs)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    full = ScaleDiscriminator()  # VITS's sizes
    assert [c.groups for c in full.convs] == [1, 4, 16, 64, 256, 1]
    assert [c.kernel_size[0] for c in full.convs] == [15, 41, 41, 41, 41, 5]
    with pytest.raises(ValueError, match="groups"):
        ScaleDiscriminator(channels=(4, 6), kernel_sizes=(3, 3), strides=(1, 1), groups=(1, 4))


# --- Resemblyzer ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def voice_encoder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from resemblyzer import VoiceEncoder
    with mock.patch.object(torch, "load", functools.partial(torch.load, weights_only=True)):
        return VoiceEncoder(device="cpu", verbose=False)


@pytest.fixture(scope="module")
def resemblyzer_enc():
    return ResemblyzerSpeakerEncoder()


def test_resemblyzer_mel_and_partials_equal_resemblyzer(voice_encoder, resemblyzer_enc):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from resemblyzer import audio

    wav = speech_like(3.0)
    x = torch.from_numpy(wav)[None]
    ref_mel = audio.wav_to_mel_spectrogram(wav)  # [T, 40], librosa
    mel = resemblyzer_enc.mel(x)[0].numpy()
    assert mel.shape == ref_mel.shape
    np.testing.assert_allclose(mel, ref_mel, rtol=1e-4, atol=1e-4 * float(np.abs(ref_mel).max()))
    # partial windows (embed_utterance on the same unpreprocessed audio), several lengths
    for n in (4000, 8192, wav.size):
        ref = voice_encoder.embed_utterance(wav[:n])
        ours = resemblyzer_enc(x[:, :n])[0].detach().numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-4)
        assert float(ours @ ref) >= 0.95
    # whole-utterance mode: VoiceEncoder.forward on resemblyzer's own mel
    utt = ResemblyzerSpeakerEncoder(mode="utterance")
    with torch.no_grad():
        ref = voice_encoder(torch.from_numpy(ref_mel)[None])[0].numpy()
    np.testing.assert_allclose(utt(x)[0].detach().numpy(), ref, atol=1e-4)


def test_resemblyzer_is_frozen_differentiable_and_batch_exact(resemblyzer_enc):
    enc = resemblyzer_enc
    assert enc.sample_rate == 16000 and enc.dim == 256
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training  # stays in eval mode inside a training parent
    wav = torch.from_numpy(speech_like(1.5))
    x = wav[None, :8192].clone().requires_grad_(True)
    emb = enc(x)
    assert emb.shape == (1, 256)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(1))
    emb.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
    batch = torch.stack([wav[:20000], wav[3000:23000]])
    out = enc(batch, torch.tensor([20000, 9000]))
    torch.testing.assert_close(out[0], enc(batch[:1])[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], enc(batch[1:, :9000])[0], atol=1e-6, rtol=0)
    rebuilt = type(enc)(**enc.kwargs)
    rebuilt.load_state_dict(enc.state_dict())


# --- Coqui's H/ASP ResNet -------------------------------------------------------------------------
TINY_SE = dict(input_dim=16, proj_dim=24, layers=(1, 2, 1, 1), num_filters=(8, 8, 16, 16), attention_channels=8)


def coqui_se_reference(enc: ResNetSpeakerEncoder, wav: torch.Tensor) -> torch.Tensor:
    """Coqui's ResNetSpeakerEncoder.forward(l2_norm=True) rewritten from its source with torch ops written out
    differently (conv1d pre-emphasis, explicit mel of a complex STFT, functional instance norm)."""
    x = torch.nn.functional.pad(wav[:, None], (1, 0), "reflect")
    x = torch.nn.functional.conv1d(x, torch.tensor([[[-enc.preemphasis, 1.0]]]))[:, 0]
    spec = torch.stft(x, enc.n_fft, enc.hop_length, enc.win_length, torch.hamming_window(enc.win_length),
                      center=True, pad_mode="reflect", return_complex=True).abs().pow(2.0)
    fb = torch.from_numpy(__import__("librosa").filters.mel(sr=enc.sample_rate, n_fft=enc.n_fft, n_mels=enc.input_dim,
                                                           htk=True, norm=None)).T
    mel = torch.matmul(spec.transpose(-1, -2), fb).transpose(-1, -2)
    mel = (mel + 1e-6).log()
    mel = torch.nn.functional.instance_norm(mel).unsqueeze(1)
    h = enc.bn1(torch.relu(enc.conv1(mel)))
    for layer in (enc.layer1, enc.layer2, enc.layer3, enc.layer4):
        for blk in layer:
            out = blk.bn1(torch.relu(blk.conv1(h)))
            out = blk.bn2(blk.conv2(out))
            out = out * blk.se.fc(out.mean((2, 3))).view(out.shape[0], -1, 1, 1)
            h = torch.relu(out + (blk.downsample(h) if blk.downsample is not None else h))
    h = h.reshape(h.size()[0], -1, h.size()[-1])
    w = enc.attention(h)
    mu = torch.sum(h * w, dim=2)
    sg = torch.sqrt((torch.sum((h**2) * w, dim=2) - mu**2).clamp(min=1e-5))
    return torch.nn.functional.normalize(enc.fc(torch.cat((mu, sg), 1)), p=2, dim=1)


def randomise_batchnorm(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            m.weight.data.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def test_htk_filterbank_equals_librosa_htk_without_norm():
    import librosa

    for n_fft, n_mels in ((512, 64), (400, 16)):
        ref = librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None).T
        np.testing.assert_allclose(htk_mel_filterbank(n_fft // 2 + 1, n_mels, 16000).numpy(), ref, atol=1e-6)


def test_resnet_encoder_matches_coqui_forward_and_is_differentiable():
    torch.manual_seed(0)
    enc = ResNetSpeakerEncoder(**TINY_SE)
    randomise_batchnorm(enc)
    enc.freeze()
    assert enc.sample_rate == 16000 and enc.dim == 24 and not enc.training
    wav = torch.from_numpy(speech_like(1.2))
    x = torch.stack([wav[:16000], wav[2000:18000] if wav.numel() >= 18000 else wav[:16000].flip(0)])
    with torch.no_grad():
        torch.testing.assert_close(enc(x), coqui_se_reference(enc, x), atol=1e-5, rtol=1e-4)
    xg = x[:1].clone().requires_grad_(True)
    emb = enc(xg)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(1))
    emb.sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().max() > 0
    out = enc(x, torch.tensor([16000, 7000]))
    torch.testing.assert_close(out[1], enc(x[1:, :7000])[0], atol=1e-6, rtol=0)
    assert enc.compute_embedding(wav[:16000], num_frames=40, num_eval=3).shape == (24,)


def test_resnet_encoder_uses_coqui_attribute_names():
    enc = ResNetSpeakerEncoder()  # paper size: ResNet-34 widths, 64 mels, 512-d
    keys = set(enc.state_dict())
    for k in ("conv1.weight", "conv1.bias", "bn1.running_var", "layer1.2.se.fc.0.weight", "layer1.0.bn2.bias",
              "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean", "layer3.5.conv2.weight",
              "layer4.2.se.fc.2.bias", "attention.0.weight", "attention.2.running_mean", "attention.3.bias",
              "fc.weight"):
        assert k in keys, k
    assert "layer1.0.downsample.0.weight" not in keys
    assert enc.state_dict()["attention.0.weight"].shape == (128, 256 * 8, 1)
    assert enc.state_dict()["fc.weight"].shape == (512, 256 * 8 * 2)
    assert sum(len(getattr(enc, f"layer{i}")) for i in range(1, 5)) == 16
    kw = ResNetSpeakerEncoder.kwargs_from_coqui_config(
        {"model_params": {"model_name": "resnet", "input_dim": 64, "proj_dim": 512, "use_torch_spec": True,
                          "log_input": True},
         "audio": {"fft_size": 512, "win_length": 400, "hop_length": 160, "sample_rate": 16000, "preemphasis": 0.97,
                   "num_mels": 64}})
    assert kw == {"input_dim": 64, "proj_dim": 512, "log_input": True, "sample_rate": 16000, "n_fft": 512,
                  "win_length": 400, "hop_length": 160, "preemphasis": 0.97}


def test_period_discriminator_is_the_codec_one():
    """The period discriminator is restated in ns2.models (one layer with ns2.codec): same layout, same output."""
    from ns2.codec.discriminators import PeriodDiscriminator as CodecPeriod
    from ns2.models.yourtts.discriminator import PeriodDiscriminator

    torch.manual_seed(0)
    theirs, ours = CodecPeriod(5, (4, 8, 8, 8, 8)), PeriodDiscriminator(5, (4, 8, 8, 8, 8))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 1, 1003)
    (lg_a, ft_a), (lg_b, ft_b) = theirs(x), ours(x)
    assert torch.equal(lg_a, lg_b) and all(torch.equal(a, b) for a, b in zip(ft_a, ft_b))


# --- the released-checkpoint adapter --------------------------------------------------------------
LANGUAGE_IDS = {"en": 0, "fr-fr": 1, "pt-br": 2}
TINY_TTS = dict(vocab_size=20, hidden=16, ffn=32, heads=2, layers=2, kernel_size=3, dropout=0.1, spec_channels=33,
                posterior_layers=2, posterior_kernel_size=5, flow_couplings=4, flow_layers=2, flow_kernel_size=5,
                use_sdp=True, dp_channels=192, dp_dropout=0.5, speaker_dim=24, num_languages=3, lang_dim=4,
                upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8], upsample_initial_channel=16,
                resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]], hop_length=16,
                normalize_speaker=True, detach_dp_input=True)
COQUI_CONFIG = {  # a tiny Coqui VitsConfig (YourTTS flavour), named as in TTS/tts/configs/vits_config.py
    "model": "vits",
    "audio": {"sample_rate": 16000, "hop_length": 16, "fft_size": 64, "win_length": 64, "num_mels": 80,
              "mel_fmin": 0, "mel_fmax": None},
    "model_args": {
        "num_chars": 20, "out_channels": 33, "spec_segment_size": 32, "hidden_channels": 16,
        "hidden_channels_ffn_text_encoder": 32, "num_heads_text_encoder": 2, "num_layers_text_encoder": 2,
        "kernel_size_text_encoder": 3, "dropout_p_text_encoder": 0.1, "dropout_p_duration_predictor": 0.5,
        "kernel_size_posterior_encoder": 5, "dilation_rate_posterior_encoder": 1, "num_layers_posterior_encoder": 2,
        "kernel_size_flow": 5, "dilation_rate_flow": 1, "num_layers_flow": 2, "resblock_type_decoder": "1",
        "resblock_kernel_sizes_decoder": [3], "resblock_dilation_sizes_decoder": [[1, 3, 5]],
        "upsample_rates_decoder": [4, 4], "upsample_initial_channel_decoder": 16,
        "upsample_kernel_sizes_decoder": [8, 8], "use_sdp": True, "use_speaker_embedding": False,
        "use_d_vector_file": True, "d_vector_dim": 24, "use_language_embedding": True, "embedded_language_dim": 4,
        "use_speaker_encoder_as_loss": True, "condition_dp_on_speaker": True, "detach_dp_input": True,
    },
}
TINY_SE_COQUI = dict(input_dim=16, proj_dim=24, layers=(1, 2, 1, 1), num_filters=(8, 8, 16, 16))
COQUI_SE_CONFIG = {
    "model_params": {"model_name": "resnet", "input_dim": 16, "proj_dim": 24, "layers": [1, 2, 1, 1],
                     "num_filters": [8, 8, 16, 16], "encoder_type": "ASP", "use_torch_spec": True, "log_input": True},
    "audio": {"fft_size": 512, "win_length": 400, "hop_length": 160, "sample_rate": 16000, "preemphasis": 0.97,
              "num_mels": 16},
}

# Coqui's module paths, from its source (TTS/tts/models/vits.py and the layers it builds):
# torch.nn.utils.weight_norm (weight_g / weight_v) on the WaveNet convs (TTS/tts/layers/generic/wavenet.py) and
# the HiFi-GAN upsampling and ResBlock1 convs (TTS/vocoder/models/hifigan_generator.py; conv_pre / conv_post
# have it removed in Vits);
COQUI_WEIGHT_NORMED = re.compile(
    r"^((posterior_encoder\.enc|flow\.flows\.\d+\.enc)\.(in_layers\.\d+|res_skip_layers\.\d+|cond_layer)"
    r"|waveform_decoder\.(ups\.\d+|resblocks\.\d+\.convs[12]\.\d+))$")
# LayerNorm2 (gamma / beta, [C]) in the text encoder's transformer (layer_norm_type "2") and in the SDP's
# DilatedDepthSeparableConv stacks (TTS/tts/layers/vits/stochastic_duration_predictor.py).
COQUI_LAYER_NORMS = re.compile(
    r"^(text_encoder\.encoder\.norm_layers_[12]\.\d+"
    r"|duration_predictor\.(post_)?convs\.norms_[12]\.\d+"
    r"|duration_predictor\.(post_)?flows\.\d+\.convs\.norms_[12]\.\d+)$")


def to_coqui_layout(state: dict) -> dict:
    """Our state dict renamed into Coqui's key names with the tables above (independent of ns2's mapping)."""
    out, normed = {}, set()
    for key, value in state.items():
        if ".parametrizations.weight.original" in key:
            module, _, which = key.partition(".parametrizations.weight.")
            assert COQUI_WEIGHT_NORMED.match(module), f"{module} is weight-normed here but not in Coqui"
            normed.add(module)
            out[f"{module}.weight_{'g' if which == 'original0' else 'v'}"] = value.clone()
            continue
        module, _, leaf = key.rpartition(".")
        assert not (COQUI_WEIGHT_NORMED.match(module) and leaf == "weight"), f"{module} is weight-normed in Coqui"
        if COQUI_LAYER_NORMS.match(module):
            leaf = {"weight": "gamma", "bias": "beta"}[leaf]
        out[f"{module}.{leaf}"] = value.clone()
    assert normed, "no weight-normed module found"
    return out


def perturbed(module: torch.nn.Module, seed: int = 0, scale: float = 0.02) -> torch.nn.Module:
    """Small noise on every parameter (the zero-initialised coupling outputs included), so that swapped or
    misplaced weights change the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return module


def write_release(folder: Path, *, model_obj=None) -> tuple[torch.nn.Module, ResNetSpeakerEncoder]:
    """A tiny Coqui-format YourTTS release in ``folder``; returns the modules its weights came from."""
    import librosa

    from ns2.models.yourtts import YourTTS

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    src = perturbed(YourTTS(**TINY_TTS)).eval()
    state = to_coqui_layout(src.state_dict())
    # what a Coqui training checkpoint also holds: the discriminator (weight_g / weight_v), the SCL speaker
    # encoder baked in by older versions, a speaker table, torchaudio buffers
    disc = VITSDiscriminator(**TINY_DISC)
    for k, v in disc.state_dict().items():
        state["disc." + k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v")] = v
    state["speaker_encoder.conv1.weight"] = torch.zeros(8, 1, 3, 3)
    state["emb_g.weight"] = torch.zeros(5, 24)
    state["torch_spec.1.spectrogram.window"] = torch.hann_window(64)
    obj = model_obj if model_obj is not None else {
        "model": state, "config": COQUI_CONFIG, "step": 123, "epoch": 4,
        "optimizer": [{"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]}]}
    torch.save(obj, folder / "model_file.pth")
    (folder / "config.json").write_text(json.dumps(COQUI_CONFIG))
    (folder / "language_ids.json").write_text(json.dumps(LANGUAGE_IDS))

    torch.manual_seed(1)
    se = ResNetSpeakerEncoder(**TINY_SE_COQUI)
    randomise_batchnorm(se, seed=2)
    perturbed(se, seed=3, scale=0.01)
    se.eval()
    se_state = {k: v.clone() for k, v in se.state_dict().items()}
    se_state["torch_spec.0.filter"] = torch.tensor([[[-0.97, 1.0]]])
    se_state["torch_spec.1.spectrogram.window"] = torch.hamming_window(400)
    se_state["torch_spec.1.mel_scale.fb"] = torch.from_numpy(
        librosa.filters.mel(sr=16000, n_fft=512, n_mels=16, htk=True, norm=None).T.copy())
    torch.save({"model": se_state, "step": 7}, folder / "model_se.pth.tar")
    (folder / "config_se.json").write_text(json.dumps(COQUI_SE_CONFIG))
    return src, se


def test_kwargs_from_coqui_config_and_key_mapping_units():
    from ns2.models.yourtts.coqui import coqui_to_ns2_state, yourtts_kwargs_from_coqui_config

    kwargs, audio = yourtts_kwargs_from_coqui_config(COQUI_CONFIG, LANGUAGE_IDS)
    assert kwargs == TINY_TTS
    assert audio == {"sample_rate": 16000, "hop_length": 16, "fft_size": 64, "win_length": 64, "num_mels": 80,
                     "mel_fmin": 0, "mel_fmax": None}
    with pytest.raises(ValueError, match="language_ids"):
        yourtts_kwargs_from_coqui_config(COQUI_CONFIG)
    bad = json.loads(json.dumps(COQUI_CONFIG))
    bad["model_args"]["resblock_type_decoder"] = "2"
    with pytest.raises(ValueError, match="resblock_type_decoder"):
        yourtts_kwargs_from_coqui_config(bad, LANGUAGE_IDS)
    # Coqui's glow-tts LayerNorm keeps [1, C, 1] parameters (the deterministic duration predictor)
    mapped = coqui_to_ns2_state({"duration_predictor.norm_1.gamma": torch.ones(1, 6, 1),
                                 "duration_predictor.norm_1.beta": torch.zeros(1, 6, 1),
                                 "flow.flows.0.enc.cond_layer.weight_g": torch.ones(4, 1, 1),
                                 "emb_l.weight": torch.ones(3, 4), "disc.nets.0.conv_post.weight_v": torch.ones(1)})
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {
        "duration_predictor.norm_1.weight": (6,), "duration_predictor.norm_1.bias": (6,),
        "flow.flows.0.enc.cond_layer.parametrizations.weight.original0": (4, 1, 1), "emb_l.weight": (3, 4)}


def test_load_released_yourtts_gives_the_source_model(tmp_path):
    from ns2.models.yourtts.coqui import load_released_yourtts

    src, src_se = write_release(tmp_path / "rel")
    model, se, meta = load_released_yourtts(tmp_path / "rel", checksums=tmp_path / "no-manifest.json")
    assert not model.training and not se.training and not any(p.requires_grad for p in se.parameters())
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    tokens = torch.randint(1, 20, (2, 7), generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([7, 5])
    spk = torch.randn(2, 24, generator=torch.Generator().manual_seed(1))
    lang = torch.tensor([0, 2])
    with torch.no_grad():
        a = src.infer(tokens, lengths, spk, lang, max_frames=64, generator=torch.Generator().manual_seed(5))
        b = model.infer(tokens, lengths, spk, lang, max_frames=64, generator=torch.Generator().manual_seed(5))
    assert a["wav"].shape[-1] > 0
    for key in ("wav", "wav_lengths", "durations"):
        assert torch.equal(a[key], b[key]), key
    wav = torch.from_numpy(speech_like(1.0))[None]
    with torch.no_grad():
        assert torch.equal(se(wav), src_se(wav))
    assert a["wav"].abs().max() > 1e-3 and se.dim == 24 and se.kwargs["input_dim"] == 16
    assert meta["files"] == {"model": "model_file.pth", "config": "config.json", "speaker_encoder": "model_se.pth.tar",
                             "speaker_encoder_config": "config_se.json", "language_ids": "language_ids.json"}
    assert meta["verified"] == [] and sorted(meta["unverified"]) == sorted(meta["files"].values())
    assert meta["languages"] == ["en", "fr-fr", "pt-br"] and meta["step"] == 123
    assert meta["audio"]["hop_length"] == 16 and meta["model_kwargs"] == TINY_TTS
    assert meta["dropped_keys"]["model"] == {"disc": len(VITSDiscriminator(**TINY_DISC).state_dict()),
                                             "speaker_encoder": 1, "emb_g": 1, "torch_spec": 1}
    assert meta["dropped_keys"]["speaker_encoder"] == {"torch_spec": 3}
    assert max(meta["se_front_end_diff"].values()) < 1e-5
    assert meta["speakers_file"] is None


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text, text
    return text


def test_missing_release_names_the_folder_and_files(tmp_path, monkeypatch):
    from ns2.metrics.backbones import cache_root as metrics_cache_root
    from ns2.models.yourtts.coqui import MissingYourTTSError, cache_root, default_yourtts_dir, load_released_yourtts

    monkeypatch.setenv("NS2_CACHE", str(tmp_path / "cache"))
    assert cache_root() == metrics_cache_root() and default_yourtts_dir() == tmp_path / "cache" / "yourtts"
    with pytest.raises(FileNotFoundError) as e:  # MissingYourTTSError is a FileNotFoundError
        load_released_yourtts()
    assert e.type is MissingYourTTSError
    msg = one_line(e)
    for part in (str(tmp_path / "cache" / "yourtts"), "model_file.pth or best_model.pth", "config.json",
                 "model_se.pth or model_se.pth.tar", "config_se.json", "$NS2_CACHE/yourtts",
                 "system.yourtts_pretrained.path="):
        assert part in msg, part
    # a partial folder: only what is missing is named (language_ids.json: the config embeds languages)
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(COQUI_CONFIG))
    (folder / "model_se.pth").write_bytes(b"")
    with pytest.raises(MissingYourTTSError) as e:
        load_released_yourtts(folder)
    msg = one_line(e)
    assert f"{folder} lacks" in msg and "language_ids.json" in msg and "config_se.json" in msg
    assert "config.json," not in msg.split("lacks", 1)[1].split("(needs")[0] and "model_se.pth or" not in msg


def test_checksum_manifest_verifies_and_refuses(tmp_path):
    from ns2.models.yourtts.coqui import CHECKSUMS_PATH, YourTTSChecksumError, load_released_yourtts, record_checksums
    from ns2.utils.io import sha256_file

    shipped = json.loads(CHECKSUMS_PATH.read_text())
    assert shipped["files"] == {} and "_comment" in shipped  # nothing recorded yet: a placeholder manifest
    rel = tmp_path / "rel"
    write_release(rel)
    manifest = tmp_path / "checksums.json"
    manifest.write_text(json.dumps({"version": 1, "files": {"config.json": sha256_file(rel / "config.json")}}))
    _, _, meta = load_released_yourtts(rel, checksums=manifest)
    assert meta["verified"] == ["config.json"] and "config.json" not in meta["unverified"]
    manifest.write_text(json.dumps({"version": 1, "files": {"model_file.pth": "0" * 64}}))
    with pytest.raises(YourTTSChecksumError) as e:
        load_released_yourtts(rel, checksums=manifest)
    msg = one_line(e)
    assert "model_file.pth" in msg and "0" * 64 in msg and sha256_file(rel / "model_file.pth") in msg
    hashes = record_checksums(rel, checksums=manifest)
    assert sorted(hashes) == sorted(["model_file.pth", "config.json", "model_se.pth.tar", "config_se.json",
                                     "language_ids.json"])
    _, _, meta = load_released_yourtts(rel, checksums=manifest)
    assert meta["unverified"] == [] and len(meta["verified"]) == 5


def test_a_pickled_object_is_refused_with_one_line(tmp_path):
    import argparse

    from ns2.models.yourtts.coqui import CheckpointFormatError, load_released_yourtts

    rel = tmp_path / "rel"
    write_release(rel, model_obj={"model": {"x": torch.zeros(1)}, "config": argparse.Namespace(run="yourtts")})
    with pytest.raises(CheckpointFormatError) as e:
        load_released_yourtts(rel, checksums=tmp_path / "none.json")
    msg = one_line(e)
    assert "model_file.pth" in msg and "weights_only=True" in msg and "Namespace" in msg
    assert "not unpickled" in msg and "torch.save" in msg


def test_an_unreadable_checkpoint_is_one_line(tmp_path):
    from ns2.models.yourtts.coqui import CheckpointFormatError, load_weights_only

    for name, data in (("garbage.pth", b"not a checkpoint at all"), ("empty.pth", b"")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointFormatError) as e:
            load_weights_only(tmp_path / name)
        assert "not a readable torch checkpoint" in one_line(e) and name in str(e.value)
    torch.save({"a": torch.zeros(2)}, tmp_path / "bare.pth")
    with pytest.raises(CheckpointFormatError, match="state dict"):
        from ns2.models.yourtts.coqui import coqui_se_to_ns2_state

        coqui_se_to_ns2_state({"model": {"a": "not a tensor"}})


def test_released_synthesizer_reads_characters_and_speaks_seeded(tmp_path):
    """``system=yourtts_pretrained``: the release's characters (VitsCharacters layout, blanks between) reach the
    model, the prompt goes through the release's own speaker encoder, and a seed fixes the output."""
    from ns2.inference.synthesizer import SynthesisError
    from ns2.inference.yourtts import YourTTSSynthesizer
    from ns2.text.coqui_chars import CoquiCharacters

    rel = tmp_path / "rel"
    write_release(rel)
    config = {**COQUI_CONFIG, "add_blank": True, "text_cleaner": "multilingual_cleaners",
              "characters": {"characters": "abcdefghijklmn", "punctuations": "!,. ", "pad": "_", "phonemes": None}}
    (rel / "config.json").write_text(json.dumps(config))
    chars = CoquiCharacters.from_config(config)
    assert len(chars) == 20 and chars.vocab[:2] == ["_", "!"] and chars.vocab[-1] == "<BLNK>"
    ids = [5, 4, 6, 5, 8, 4, 18, 9, 4, 5, 18, 8]  # "a bad one and": quotes gone, & spelt out, o not in the alphabet
    blanked = [19] * (2 * len(ids) + 1)
    blanked[1::2] = ids
    assert chars.encode('A "bad" one&', "en") == blanked
    synth = YourTTSSynthesizer.from_released(rel, language="en")
    assert synth.name == "yourtts_pretrained" and synth.language_ids(1).tolist() == [0]
    prompt = speech_like(2.0)
    a, sr = synth.synthesize("a bad dean", prompt, 16000, seed=1)
    b, _ = synth.synthesize("a bad dean", prompt, 16000, seed=1)
    assert sr == 16000 and len(a) == synth.last_info["frames"] * 16 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(SynthesisError, match="no character of the model's alphabet"):
        synth.synthesize("zzz", prompt, 16000)
    with pytest.raises(ValueError, match="not among the model's languages"):
        YourTTSSynthesizer.from_released(rel, language="de")
