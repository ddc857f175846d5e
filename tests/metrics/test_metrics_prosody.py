"""Prosody metric: F0 extraction on tones of known pitch, moments equal to scipy's, NaN rules."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ns2.metrics import Alignment, MetricInputError, build_metrics
from ns2.metrics.prosody import (
    extract_f0,
    frame_f0_metrics,
    moment_differences,
    moments,
    phoneme_pitch,
    sequence_agreement,
)

SR, FR = 16000, 80.0
F0S = [110, 130, 150, 180, 140, 200, 120, 160, 100, 170]
DURS = [14, 18, 16, 20, 15, 17, 22, 15, 13, 19]
PROMPT_F0S = [100, 220, 120, 210, 105, 190, 115]
PROMPT_DURS = [10, 25, 12, 30, 9, 20, 14]


@pytest.fixture(scope="module")
def prosody():
    return build_metrics(["prosody"])[0]


def test_phoneme_pitch_recovers_known_f0(tone):
    x = tone(F0S, DURS)
    f0 = extract_f0(x, SR, FR, sum(DURS))
    assert f0.shape == (sum(DURS),)
    pitch = phoneme_pitch(f0, DURS)
    np.testing.assert_allclose(pitch, F0S, rtol=0.02)
    log_pitch = phoneme_pitch(f0, DURS, log_f0=True)
    np.testing.assert_allclose(log_pitch, np.log(F0S), atol=0.02)


def test_moments_equal_scipy(tone):
    pitch = phoneme_pitch(extract_f0(tone(F0S, DURS), SR, FR, sum(DURS)), DURS)
    for seq in (pitch, np.asarray(DURS, float)):
        m = moments(seq)
        assert m["mean"] == pytest.approx(np.mean(seq))
        assert m["std"] == pytest.approx(np.std(seq))
        assert m["skew"] == pytest.approx(stats.skew(seq, bias=True))
        assert m["kurt"] == pytest.approx(stats.kurtosis(seq, fisher=True, bias=True))
    # and the extracted pitch's moments are close to those of the true pitch
    true = moments(F0S)
    assert moments(pitch)["mean"] == pytest.approx(true["mean"], rel=0.01)
    assert moments(pitch)["std"] == pytest.approx(true["std"], rel=0.05)


def test_moments_nan_rules():
    assert all(math.isnan(v) for v in moments([]).values())
    assert all(math.isnan(v) for v in moments([np.nan, np.inf]).values())
    one = moments([5.0, np.nan])
    assert one["mean"] == 5.0 and math.isnan(one["std"]) and math.isnan(one["skew"]) and math.isnan(one["kurt"])
    const = moments([2.0, 2.0, 2.0])
    assert const["std"] == 0.0 and math.isnan(const["skew"]) and math.isnan(const["kurt"])
    d = moment_differences([1.0, 2.0, 4.0], [np.nan], "pitch")
    assert set(d) == {"pitch_mean_diff", "pitch_std_diff", "pitch_skew_diff", "pitch_kurt_diff"}
    assert all(math.isnan(v) for v in d.values())


def test_prompt_differences(prosody, tone):
    hyp, prompt = tone(F0S, DURS), tone(PROMPT_F0S, PROMPT_DURS)
    out = prosody.score(
        hyp, SR, prompt_wav=prompt, hyp_alignment=Alignment(DURS, FR), prompt_alignment=Alignment(PROMPT_DURS, FR)
    )
    assert set(out) == {f"{p}_{s}_diff" for p in ("pitch", "dur") for s in ("mean", "std", "skew", "kurt")}
    mh, mp = moments(DURS), moments(PROMPT_DURS)
    for s in ("mean", "std", "skew", "kurt"):
        assert out[f"dur_{s}_diff"] == pytest.approx(abs(mh[s] - mp[s]))
    assert out["pitch_mean_diff"] == pytest.approx(abs(np.mean(F0S) - np.mean(PROMPT_F0S)), abs=2.0)
    # identical prompt and synthesis: every difference is ~0
    same = prosody.score(hyp, SR, prompt_wav=hyp, hyp_alignment=Alignment(DURS, FR), prompt_alignment=Alignment(DURS, FR))
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in same.values())


def test_ground_truth_agreement(prosody, tone):
    hyp = tone(F0S, DURS)
    a = Alignment(DURS, FR)
    out = prosody.score(hyp, SR, prompt_wav=hyp, hyp_alignment=a, prompt_alignment=a, ref_wav=hyp, ref_alignment=a)
    assert out["pitch_corr"] == pytest.approx(1.0) and out["pitch_rmse"] == pytest.approx(0.0, abs=1e-9)
    assert out["f0_rmse_cents"] == pytest.approx(0.0, abs=1e-6) and out["vuv_f1"] == 1.0
    # a synthesis one semitone up: 100 cents everywhere, correlation still ~1
    up = tone(np.asarray(F0S) * 2 ** (1 / 12), DURS)
    out = prosody.score(up, SR, prompt_wav=hyp, hyp_alignment=a, prompt_alignment=a, ref_wav=hyp, ref_alignment=a)
    assert out["f0_rmse_cents"] == pytest.approx(100.0, abs=15.0)
    assert out["f0_corr"] > 0.95 and out["pitch_corr"] > 0.99
    assert out["dur_corr"] == pytest.approx(1.0) and out["dur_rmse"] == 0.0


def test_silence_skipped_when_phonemes_named(prosody, tone):
    f0s, durs = [0, 150, 0, 200, 0], [30, 20, 30, 20, 30]
    phones = ("<sil>", "a", "<sil>", "b", "<sil>")
    x = tone(f0s, durs)
    hyp = Alignment(durs, FR, phones)
    out = prosody.score(x, SR, prompt_wav=x, hyp_alignment=hyp, prompt_alignment=hyp, ref_wav=x, ref_alignment=hyp)
    assert out["pitch_mean_diff"] == 0.0 and out["dur_mean_diff"] == 0.0
    _, pitch, dur = prosody.analyse(x, SR, hyp)
    np.testing.assert_allclose(pitch, [150, 200], rtol=0.02)
    np.testing.assert_array_equal(dur, [20, 20])


@pytest.mark.parametrize("kind", ["silent", "unvoiced noise"])
def test_silent_or_unvoiced_gives_nan(prosody, tone, kind):
    n = sum(DURS)
    if kind == "silent":
        hyp = np.zeros(n * 200, dtype=np.float32)
    else:
        hyp = (np.random.default_rng(0).standard_normal(n * 200) * 0.05).astype(np.float32)
    ref = tone(F0S, DURS)
    a = Alignment(DURS, FR)
    out = prosody.score(hyp, SR, prompt_wav=ref, hyp_alignment=a, prompt_alignment=a, ref_wav=ref, ref_alignment=a)
    for key in ("pitch_mean_diff", "pitch_std_diff", "pitch_skew_diff", "pitch_kurt_diff", "pitch_corr", "pitch_rmse", "f0_rmse_cents", "f0_corr"):
        assert math.isnan(out[key]), key
    assert out["dur_mean_diff"] == 0.0  # durations come from the alignment, not the audio
    assert out["vuv_f1"] == 0.0  # voiced ground truth, nothing voiced in the synthesis
    assert math.isnan(frame_f0_metrics(np.zeros(5), np.zeros(5))["vuv_f1"])
    assert np.all(extract_f0(hyp, SR, FR, n) == 0)


def test_frame_metrics_known_values():
    ref = np.array([100.0, 100.0, 200.0, 0.0, 0.0, 150.0])
    hyp = np.array([200.0, 100.0, 200.0, 120.0, 0.0, 0.0])
    out = frame_f0_metrics(hyp, ref)
    # voiced in both: frames 0..2, cents [1200, 0, 0]
    assert out["f0_rmse_cents"] == pytest.approx(math.sqrt(1200**2 / 3))
    # TP = 3, FP = 1 (frame 3), FN = 1 (frame 5)
    assert out["vuv_f1"] == pytest.approx(6 / 8)
    corr, rmse = sequence_agreement([1.0, 2.0, np.nan, 4.0], [2.0, 4.0, 5.0, 8.0])
    assert corr == pytest.approx(1.0) and rmse == pytest.approx(math.sqrt((1 + 4 + 16) / 3))


def test_input_validation(prosody, tone):
    x = tone(F0S, DURS)
    with pytest.raises(MetricInputError, match="hyp_alignment"):
        prosody.score(x, SR, prompt_wav=x, prompt_alignment=Alignment(DURS, FR))
    with pytest.raises(ValueError, match="durations summing"):
        phoneme_pitch(np.zeros(10), [3, 3])
    with pytest.raises(ValueError, match="non-negative"):
        Alignment((3, -1), FR)
    with pytest.raises(ValueError, match="as many phonemes"):
        Alignment((3, 1), FR, ("a",))
    assert Alignment.coerce({"durations": [1, 2], "frame_rate": 80}).num_frames == 3
