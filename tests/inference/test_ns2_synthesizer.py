"""NS2Synthesizer with a random tiny network and codec: shapes, seeds, input errors, scores, VC / SE."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from tiny_synth import CONFIGS, SR, build_tiny, save_tiny_checkpoint, tone

from ns2.inference import NS2Synthesizer, SynthesisError, Synthesizer, fit_durations

HOP = 200


def test_output_is_mono_float32_at_codec_rate_with_predicted_length(synth, prompt):
    wav, sr = synth.synthesize("Hello world.", prompt, SR, seed=0)
    info = synth.last_info
    assert isinstance(synth, Synthesizer)
    assert sr == 16000 and wav.dtype == np.float32 and wav.ndim == 1
    assert np.all(np.isfinite(wav))
    assert info["frames"] == sum(info["durations"]) > 0
    assert len(wav) == info["frames"] * HOP
    assert len(info["durations"]) == len(info["phonemes"]) and len(info["log_f0"]) == info["frames"]
    assert info["prompt_frames"] == 2 * SR // HOP


def test_same_seed_same_audio_other_seed_other_audio(synth, prompt):
    a, _ = synth.synthesize("Good morning.", prompt, SR, seed=3)
    b, _ = synth.synthesize("Good morning.", prompt, SR, seed=3)
    c, _ = synth.synthesize("Good morning.", prompt, SR, seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape and not np.allclose(a, c)


@pytest.mark.parametrize(
    "audio, match",
    [(tone(0.5), "at least 1 s"), (np.zeros(2 * SR, np.float32), "silent"), (np.zeros(0, np.float32), "empty")],
    ids=["short", "silent", "empty"],
)
def test_unusable_prompt_is_a_synthesis_error(synth, audio, match):
    with pytest.raises(SynthesisError, match=match):
        synth.synthesize("Hello.", audio, SR)


@pytest.mark.parametrize("text, match", [("", "empty"), ("   ", "empty"), ("?!", "nothing to speak")])
def test_empty_or_unspeakable_text_names_the_text(synth, prompt, text, match):
    with pytest.raises(SynthesisError, match=match) as e:
        synth.synthesize(text, prompt, SR)
    assert repr(text) in str(e.value) and "\n" not in str(e.value)


def test_phonemes_outside_the_symbol_table_are_named(synth, prompt):
    from ns2.text import SymbolTable
    from ns2.text.charset import PUNCTUATION
    from ns2.text.symbols import SPECIAL_SYMBOLS

    small = SymbolTable([*SPECIAL_SYMBOLS, *PUNCTUATION, "h", "l", "ˈ", "oʊ"], "test-small")
    other = NS2Synthesizer(synth.net, synth.codec, synth.sde, small, "en-us", steps=2)
    with pytest.raises(SynthesisError, match="not in symbol table") as e:
        other.synthesize("Hello.", prompt, SR)
    assert "'ə'" in str(e.value) and "unknown='drop'" not in str(e.value)
    with pytest.raises(SynthesisError, match="'zz'"):
        synth.synthesize("la", prompt, SR, score={"phonemes": ["l", "zz"], "durations": [3, 3]})


def test_score_durations_set_the_length(synth, prompt):
    synth.synthesize("Hello world.", prompt, SR)
    n = len(synth.last_info["phonemes"])
    durations = [3 if i % 2 else 1 for i in range(n)]
    wav, _ = synth.synthesize("Hello world.", prompt, SR, score={"durations": durations})
    assert synth.last_info["durations"] == durations
    assert len(wav) == sum(durations) * HOP

    f0 = np.full(sum(durations), 220.0)
    synth.synthesize("Hello world.", prompt, SR, score={"durations": durations, "f0": f0})
    np.testing.assert_allclose(synth.last_info["log_f0"], np.log(f0), rtol=1e-6)


def test_unvoiced_score_frames_take_the_training_log_f0(synth, prompt):
    # f0 = 0 (unvoiced) must become what training feeds the pitch embedding (the dataset's
    # f0_to_log(..., interpolate=True)), never log 0 = -inf, which would land in pitch bucket 0
    from ns2.audio.f0 import f0_to_log
    from ns2.inference import score_log_f0

    synth.synthesize("Hello world.", prompt, SR)
    n = len(synth.last_info["phonemes"])
    durations = [2] * n
    f0 = np.linspace(150.0, 300.0, 2 * n)
    f0[[0, 1, 5, 6, 7, 2 * n - 1]] = 0.0
    want, voiced = f0_to_log(f0, interpolate=True)
    assert not voiced.all() and np.all(np.isfinite(want))
    synth.synthesize("Hello world.", prompt, SR, score={"durations": durations, "f0": f0})
    np.testing.assert_allclose(synth.last_info["log_f0"], want, rtol=1e-6)
    log_f0 = np.where(f0 > 0, np.log(np.where(f0 > 0, f0, 1.0)), -np.inf)
    np.testing.assert_allclose(score_log_f0(log_f0, "log_f0"), want, rtol=1e-6)
    with pytest.raises(SynthesisError, match="no voiced frame"):
        synth.synthesize("Hello world.", prompt, SR, score={"durations": durations, "f0": np.zeros(2 * n)})


def test_score_pitch_alone_rescales_durations_to_its_frames(synth, prompt):
    wav, _ = synth.synthesize("Hello world.", prompt, SR, score={"log_f0": np.full(37, np.log(300.0))})
    assert synth.last_info["frames"] == sum(synth.last_info["durations"]) == 37
    assert len(wav) == 37 * HOP


@pytest.mark.parametrize(
    "score, match",
    [
        ({"durations": [2, 2]}, r"expected \[\d+\], one per phoneme"),
        ({"phonemes": ["h", "i"], "durations": [1.5, 2]}, "whole numbers"),
        ({"log_f0": [[5.0, 5.0]]}, r"expected \[T\]"),
        ({"notes": [1]}, "unknown keys"),
        ({}, "expected durations"),
    ],
)
def test_bad_score_is_a_clear_error(synth, prompt, score, match):
    with pytest.raises(SynthesisError, match=match):
        synth.synthesize("Hello world.", prompt, SR, score=score)


def test_score_pitch_must_match_the_durations(synth, prompt):
    synth.synthesize("Hi.", prompt, SR)
    n = len(synth.last_info["phonemes"])
    with pytest.raises(SynthesisError, match=f"sum to {2 * n}"):
        synth.synthesize("Hi.", prompt, SR, score={"durations": [2] * n, "log_f0": np.zeros(5)})


def test_stereo_44k_prompt_is_accepted(synth):
    for layout in (tone(2.0, 44100, channels=2), tone(2.0, 44100, channels=2).T):
        wav, sr = synth.synthesize("Hello.", layout, 44100, seed=1)
        assert sr == 16000 and np.all(np.isfinite(wav))
        assert synth.last_info["prompt_frames"] == 160


def test_long_prompt_is_cut_to_max_prompt_seconds(synth, prompt):
    other = NS2Synthesizer(synth.net, synth.codec, synth.sde, synth.symbols, "en-us", steps=2, max_prompt_seconds=1.0)
    other.synthesize("Hello.", prompt, SR)
    assert other.last_info["prompt_frames"] == SR // HOP


def test_voice_conversion_keeps_the_source_length(synth, prompt):
    source = tone(1.3, 22050, f0=120.0)
    wav, sr = synth.convert(source, 22050, prompt, SR, source_text="Hello world.", seed=0)
    frames = int(np.ceil(1.3 * SR / HOP))
    assert sr == SR and wav.dtype == np.float32 and len(wav) == frames * HOP
    assert synth.last_info["frames"] == sum(synth.last_info["durations"]) == frames
    again, _ = synth.convert(source, 22050, prompt, SR, source_text="Hello world.", seed=0)
    np.testing.assert_array_equal(wav, again)
    other_voice, _ = synth.convert(source, 22050, tone(2.0, f0=300.0), SR, source_text="Hello world.")
    assert not np.allclose(wav, other_voice)


def test_voice_conversion_needs_the_source_transcript(synth, prompt):
    with pytest.raises(SynthesisError, match="source_text is required"):
        synth.convert(tone(1.0), SR, prompt, SR)


def test_voice_conversion_with_given_durations(synth, prompt):
    synth.synthesize("Hello.", prompt, SR)
    n = len(synth.last_info["phonemes"])
    frames = 80
    d = [frames // n] * n
    d[0] += frames - sum(d)
    wav, _ = synth.convert(tone(1.0), SR, prompt, SR, source_text="Hello.", durations=d)
    assert synth.last_info["durations"] == d and len(wav) == frames * HOP
    with pytest.raises(SynthesisError, match="summing to the source's 80 frames"):
        synth.convert(tone(1.0), SR, prompt, SR, source_text="Hello.", durations=[1] * n)


def test_enhancement_keeps_the_noisy_length(synth, prompt):
    rng = np.random.default_rng(0)
    noisy = tone(1.1) + 0.05 * rng.standard_normal(int(1.1 * SR)).astype(np.float32)
    wav, sr = synth.enhance(noisy, SR, text="Hello there.")
    assert sr == SR and len(wav) == int(np.ceil(1.1 * SR / HOP)) * HOP and np.all(np.isfinite(wav))
    with_prompt, _ = synth.enhance(noisy, SR, text="Hello there.", clean_prompt_wav=prompt)
    assert with_prompt.shape == wav.shape and synth.last_info["clean_prompt"] is True
    with pytest.raises(SynthesisError, match="empty"):
        synth.enhance(noisy, SR, text="")


def test_stochastic_sampler_is_seeded_in_source_aware_diffusion(synth, prompt):
    other = NS2Synthesizer(synth.net, synth.codec, synth.sde, synth.symbols, "en-us", sampler="reverse_sde", steps=3)
    a, _ = other.convert(tone(1.0), SR, prompt, SR, source_text="Hi.", seed=5)
    b, _ = other.convert(tone(1.0), SR, prompt, SR, source_text="Hi.", seed=5)
    np.testing.assert_array_equal(a, b)


def test_describe_names_checkpoint_sampler_and_codec(synth):
    d = synth.describe()
    assert d["name"] == "ns2" and d["sampler"] == "euler_ode" and d["steps"] == 4 and "checkpoint" in d
    assert d["codec"]["sample_rate"] == 16000 and len(d["codec"]["weights_sha256"]) == 64


def test_fit_durations_sums_exactly_and_follows_the_weights():
    d = fit_durations(torch.tensor([1.0, 2.0, 0.0, 3.0]), 61)
    assert int(d.sum()) == 61 and d[2] == 0 and d[0] < d[1] < d[3]
    assert fit_durations(torch.zeros(3), 7).tolist() in ([3, 2, 2], [2, 3, 2], [2, 2, 3])


def test_from_checkpoint_takes_the_stored_sampler_and_overrides(tmp_path, monkeypatch, synth):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"x")
    ckpt = types.SimpleNamespace(net=synth.net, codec=synth.codec, sde=synth.sde, symbols=synth.symbols,
                                 language="en-us", sampler={"name": "dpm_solver_pp", "steps": 12, "tau": 1.0, "order": 1},
                                 config={}, path=path)
    monkeypatch.setattr("ns2.inference.ns2.load_ns2_checkpoint", lambda p: ckpt)
    s = NS2Synthesizer.from_checkpoint(path, name="mine")
    assert (s.sampler.name, s.sampler.steps, s.sampler.tau, s.sampler.order) == ("dpm_solver_pp", 12, 1.0, 1)
    assert s.name == "mine" and s.describe()["checkpoint"] == str(path)
    s = NS2Synthesizer.from_checkpoint(path, sampler="euler_ode", device="cpu")
    assert (s.sampler.name, s.sampler.steps) == ("euler_ode", 150)
    s = NS2Synthesizer.from_checkpoint(path, steps=3)
    assert (s.sampler.name, s.sampler.steps) == ("dpm_solver_pp", 3)


def test_from_checkpoint_missing_file_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint file") as e:
        NS2Synthesizer.from_checkpoint(tmp_path / "nope.ckpt")
    assert "\n" not in str(e.value)


def test_eval_system_config_targets_from_checkpoint():
    from hydra.utils import get_method
    from omegaconf import OmegaConf

    node = OmegaConf.load(CONFIGS / "eval" / "system" / "ns2.yaml")
    assert get_method(node._target_) == NS2Synthesizer.from_checkpoint


def test_real_checkpoint_loads_and_synthesizes_like_the_modules_it_holds(tmp_path, prompt):
    path = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=3)
    loaded = NS2Synthesizer.from_checkpoint(path)
    assert (loaded.sampler.name, loaded.sampler.steps, loaded.checkpoint) == ("euler_ode", 3, str(path))
    a, sr = loaded.synthesize("Hello.", prompt, SR, seed=1)
    b, _ = build_tiny(steps=3).synthesize("Hello.", prompt, SR, seed=1)
    assert sr == SR
    np.testing.assert_allclose(a, b, atol=1e-5)

    bad = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(ValueError, match="not an NS2 checkpoint") as e:
        NS2Synthesizer.from_checkpoint(bad)
    assert "\n" not in str(e.value) and str(bad) in str(e.value)


def test_build_tiny_is_independent_of_global_state():
    a = build_tiny(steps=2)
    b = build_tiny(steps=2)
    wa, _ = a.synthesize("Yes.", tone(1.0), SR, seed=0)
    wb, _ = b.synthesize("Yes.", tone(1.0), SR, seed=0)
    np.testing.assert_array_equal(wa, wb)


def exact_prompted(synth, steps: int = 60):
    """The tiny synthesizer with an exact denoiser in place of the network's: given a prompt latent
    [1, D, Tp], the data are N(mean, var) per channel of that prompt (E[z0 | z_t] in closed form), so
    where source-aware diffusion should land is known. Returns (synthesizer, decoded latents)."""
    import copy

    net = copy.deepcopy(synth.net)
    sde = synth.sde
    net.encode_prompt = lambda z, mask=None: z
    net.predict_pitch = lambda c, mask, p, pm: torch.full(c[:, 0].shape, float(np.log(150.0)))

    def denoiser(cond, mask, p, pm):
        mu, s2 = p.mean(-1, keepdim=True), p.var(-1, keepdim=True)

        def fn(z, t):
            a, v = sde.alpha(t)[:, None, None], sde.variance(t)[:, None, None]
            return mu + a * s2 / (a**2 * s2 + v) * (z - a * mu)

        return fn

    net.denoiser = denoiser
    other = NS2Synthesizer(net, synth.codec, sde, synth.symbols, "en-us", steps=steps)
    decoded = []
    other._decode = lambda z: decoded.append(z) or np.zeros(z.shape[-1] * HOP, np.float32)
    return other, decoded


def test_voice_conversion_moves_the_latent_to_the_target_prompts(synth, prompt):
    # encoded under the source's condition, decoded under the target prompt's: the output has the target
    # prompt's per-channel statistics (swapping or ignoring the conditions keeps the source's)
    exact, decoded = exact_prompted(synth)
    source, target = tone(1.0, f0=120.0), tone(2.0, f0=300.0)
    z_src, z_tgt = exact.encode_audio(source, SR, name="source"), exact.encode_audio(target, SR)
    exact.synthesize("Hello.", prompt, SR)
    n = len(exact.last_info["phonemes"])
    d = [z_src.shape[-1] // n] * n
    d[0] += z_src.shape[-1] - sum(d)
    exact.convert(source, SR, target, SR, source_text="Hello.", durations=d)
    out = decoded[-1]
    gap = (z_src.mean(-1) - z_tgt.mean(-1)).norm()
    assert (out.mean(-1) - z_tgt.mean(-1)).norm() < 0.1 * gap
    assert (out.std(-1) / z_tgt.std(-1)).log().abs().max() < 0.1


def test_enhancement_with_a_clean_prompt_raises_the_snr(synth, prompt):
    # the noisy latent re-drawn under a clean prompt of the same voice: closer to the clean latent
    exact, decoded = exact_prompted(synth)
    rng = np.random.default_rng(0)
    clean = tone(1.0, f0=150.0)
    noisy = clean + 0.3 * rng.standard_normal(clean.shape).astype(np.float32)
    z_clean = exact.encode_audio(clean, SR, name="clean", min_seconds=0.1)
    z_noisy = exact.encode_audio(noisy, SR, name="noisy", min_seconds=0.1)
    exact.synthesize("Hello.", prompt, SR)
    n = len(exact.last_info["phonemes"])
    d = [z_noisy.shape[-1] // n] * n
    d[0] += z_noisy.shape[-1] - sum(d)
    exact.enhance(noisy, SR, text="Hello.", clean_prompt_wav=tone(2.0, f0=150.0), durations=d)
    out = decoded[-1]

    def snr(z):
        return float(10 * torch.log10(z_clean.pow(2).sum() / (z - z_clean).pow(2).sum()))

    assert snr(out) > snr(z_noisy) + 0.5
