"""The demo page's logic without a browser (ns2/app/core.py): uploads, side-by-side runs, samplers, plots."""
from __future__ import annotations

import numpy as np
import pytest
from tiny_synth import build_tiny, tone

from ns2.app.core import (
    AppError,
    UploadLimits,
    check_audio_file,
    check_text,
    convert_voice,
    enhance_speech,
    prosody_figure,
    sampler_override,
    supports,
    synthesize_all,
)
from ns2.inference.samplers import DPMSolverPP, EulerODE
from ns2.inference.systems import FolderSystem

LIMITS = UploadLimits()


@pytest.fixture(scope="module")
def synth():
    return build_tiny(steps=3)


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ("long", "40.0 s long; expected at most 30 s"),
        ("short", "0.30 s long; expected at least 1 s"),
        ("silent", "silent"),
        ("garbage", "not readable audio"),
        ("aiff", "expected one of .wav, .flac, .ogg, .mp3"),
    ],
)
def test_bad_uploads_are_refused_with_one_line(clips, clip, message):
    with pytest.raises(AppError) as e:
        check_audio_file(clips[clip], LIMITS, "prompt")
    text = str(e.value)
    assert message in text and text.startswith("prompt: ") and "\n" not in text


def test_size_limit_and_missing_upload(clips):
    with pytest.raises(AppError, match=r"long.wav is 1\.2 MB; expected at most 1 MB"):
        check_audio_file(clips["long"], UploadLimits(max_megabytes=1, max_seconds=60), "prompt")
    with pytest.raises(AppError, match="no audio given; upload or record"):
        check_audio_file(None, LIMITS, "prompt")


def test_good_uploads_are_mono_at_their_rate(clips):
    mono = check_audio_file(clips["ok"], LIMITS)
    stereo = check_audio_file(clips["stereo"], LIMITS)
    assert mono.sample_rate == stereo.sample_rate == 16000 and mono.wav.ndim == stereo.wav.ndim == 1
    assert mono.seconds == pytest.approx(2.0)
    np.testing.assert_allclose(stereo.wav, 0.75 * tone(2.0), atol=1e-4)  # channels averaged


def test_limits_and_text_are_checked():
    with pytest.raises(ValueError, match="min_seconds < max_seconds"):
        UploadLimits(min_seconds=5, max_seconds=2)
    assert UploadLimits(formats=("WAV",)).formats == (".wav",)
    assert check_text("  Hello.  ", LIMITS) == "Hello."
    with pytest.raises(AppError, match="empty"):
        check_text("   ", LIMITS)
    with pytest.raises(AppError, match="601 characters; expected at most 600"):
        check_text("a" * 601, LIMITS)


def test_sampler_override_applies_and_restores(synth, clips):
    original = synth.sampler
    prompt = check_audio_file(clips["ok"], LIMITS)
    seen = []
    out, = synthesize_all({"ns2": synth}, "Hello there.", prompt, sampler="dpm_solver_pp", steps=5,
                          progress=lambda f, d: seen.append((f, d)))
    assert out.error is None and out.info["sampler"] == "dpm_solver_pp" and out.info["steps"] == 5
    assert synth.sampler is original  # restored after the request
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [d for _, d in seen if "step" in d] == [f"ns2: step {i}/5" for i in range(1, 6)]
    # the same steps of the same sampler keep the checkpoint's grid; unknown samplers are refused
    with sampler_override(synth, None, 7) as s:
        assert isinstance(s.sampler, EulerODE) and s.sampler.steps == 7 and s.sampler.grid == original.grid
    with sampler_override(synth, "dpm_solver_pp", None) as s:
        assert isinstance(s.sampler, DPMSolverPP) and s.sampler.steps == DPMSolverPP.default_steps
    with pytest.raises(AppError, match="unknown; expected one of"):
        with sampler_override(synth, "ddim", 5):
            pass
    assert synth.sampler is original


def test_output_length_follows_the_durations(synth, clips):
    prompt = check_audio_file(clips["ok"], LIMITS)
    out, = synthesize_all({"ns2": synth}, "Hello there, how are you?", prompt)
    assert len(out.wav) == sum(out.info["durations"]) * synth.codec.hop_length
    assert out.info["frame_rate"] == synth.codec.sample_rate / synth.codec.hop_length
    assert float(np.sqrt(np.mean(out.wav**2))) > 1e-3


class Broken:
    """A system that fails on every request."""

    name = "broken"

    def synthesize(self, *args, **kwargs):
        raise RuntimeError("out of memory\nsecond line")


def test_one_failing_system_does_not_stop_the_others(synth, clips):
    prompt = check_audio_file(clips["ok"], LIMITS)
    outs = synthesize_all({"broken": Broken(), "ns2": synth}, "Hello.", prompt)
    assert [o.name for o in outs] == ["broken", "ns2"]
    assert outs[0].wav is None and outs[0].error == "RuntimeError: out of memory second line"
    assert outs[1].error is None and outs[1].seconds > 0
    with pytest.raises(AppError, match="no systems loaded"):
        synthesize_all({}, "Hello.", prompt)


def test_capabilities(synth, tmp_path):
    folder = FolderSystem(tmp_path)
    assert supports(synth, "convert") and supports(synth, "enhance") and supports(synth, "sampler")
    assert not supports(folder, "convert") and not supports(folder, "sampler")
    with pytest.raises(AppError, match="does not do voice conversion"):
        convert_voice("folder", folder, None, "x", None)


def test_vc_and_se_keep_the_source_length(synth, clips):
    source = check_audio_file(clips["stereo"], LIMITS, "source")
    prompt = check_audio_file(clips["ok"], LIMITS)
    vc = convert_voice("ns2", synth, source, "Hello there.", prompt, steps=2)
    se = enhance_speech("ns2", synth, source, "Hello there.", None, steps=2)
    se_clean = enhance_speech("ns2", synth, source, "Hello there.", prompt, steps=2)
    for out in (vc, se, se_clean):
        assert out.error is None and abs(len(out.wav) - len(source.wav)) <= synth.codec.hop_length
    assert vc.info["mode"] == "vc" and se.info["clean_prompt"] is False and se_clean.info["clean_prompt"] is True
    bad = convert_voice("ns2", synth, source, "   ", prompt)
    assert bad.wav is None and "source_text is required" in bad.error


def test_prosody_figure_has_pitch_and_durations(synth, clips):
    prompt = check_audio_file(clips["ok"], LIMITS)
    out, = synthesize_all({"ns2": synth}, "Hello there.", prompt)
    fig = prosody_figure(out)
    pitch, durations = fig.axes
    labelled = [line.get_label() for line in pitch.lines if not line.get_label().startswith("_")]
    assert labelled == ["F0 of the output (Praat)", "predicted F0"]
    assert len(pitch.lines) - 2 == len(out.info["durations"]) - 1  # one boundary line per phoneme edge
    assert len(durations.patches) == len(out.info["durations"])
    assert [t.get_text() for t in durations.get_xticklabels()] == out.info["phonemes"]
    failed = synthesize_all({"broken": Broken()}, "Hello.", prompt)[0]
    with pytest.raises(AppError, match="no audio to plot"):
        prosody_figure(failed)
