"""Durations from times, F0 on the frame grid, log-F0 without -inf."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ns2.data.features.durations import check_durations, durations_to_times, times_to_durations
from ns2.audio.f0 import compute_f0, f0_to_log, frame_centres, log_f0_moments, moments_to_stats, sample_track


@st.composite
def timed_phonemes(draw):
    n = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.floats(0.0, 0.05), min_size=n, max_size=n))
    lens = draw(st.lists(st.one_of(st.just(0.0), st.floats(0.0, 0.4)), min_size=n, max_size=n))
    times, t = [], draw(st.floats(0.0, 0.2))
    for g, d in zip(gaps, lens):
        t += g
        times.append([t, t + d])
        t += d
    total = t + draw(st.floats(-0.3, 0.3))  # audio a bit shorter or longer than the phonemes
    frame_rate = draw(st.sampled_from([80.0, 86.1328125, 50.0, 93.75]))
    num_frames = max(0, int(np.ceil(total * frame_rate)))
    return times, num_frames, frame_rate


@settings(max_examples=300, deadline=None)
@given(timed_phonemes())
def test_durations_sum_exactly(case):
    times, num_frames, frame_rate = case
    d = times_to_durations(times, num_frames, frame_rate)
    assert len(d) == len(times)
    assert sum(d) == num_frames
    assert all(isinstance(x, int) and x >= 0 for x in d)
    check_durations(d, num_frames)
    if num_frames >= len(times):
        d1 = times_to_durations(times, num_frames, frame_rate, min_frames=1)
        assert sum(d1) == num_frames and min(d1) >= 1


def test_durations_follow_boundaries():
    # boundaries at 0.1 s and 0.25 s at 80 fps -> frames 8 and 20
    d = times_to_durations([[0.0, 0.1], [0.1, 0.25], [0.25, 0.5]], 40, 80.0)
    assert d == [8, 12, 20]
    # a zero-length word boundary gets 0 frames by default, 1 borrowed frame with min_frames=1
    d = times_to_durations([[0.0, 0.1], [0.1, 0.1], [0.1, 0.5]], 40, 80.0)
    assert d == [8, 0, 32]
    d = times_to_durations([[0.0, 0.1], [0.1, 0.1], [0.1, 0.5]], 40, 80.0, min_frames=1)
    assert d == [8, 1, 31]
    with pytest.raises(ValueError, match="cannot give"):
        times_to_durations([[0, 1]] * 5, 3, 80.0, min_frames=1)
    assert times_to_durations([], 0, 80.0) == []
    # trailing audio goes to the last timed phoneme, not to a final zero-length punctuation mark
    assert times_to_durations([[0.0, 0.1], [0.1, 0.5], [0.5, 0.5]], 42, 80.0) == [8, 34, 0]


def test_durations_to_times_roundtrip():
    d = [3, 0, 5, 2]
    t = durations_to_times(d, 80.0)
    assert t[0][0] == 0.0 and t[-1][1] == pytest.approx(10 / 80)
    assert times_to_durations(t, 10, 80.0) == d


def harmonic(f0: float, sr: int, seconds: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)).astype(np.float32)


@pytest.mark.parametrize("f0_hz", [110.0, 220.0, 330.0])
def test_f0_of_harmonic_tone(f0_hz):
    sr, hop = 16000, 200
    x = np.concatenate([np.zeros(int(0.3 * sr), np.float32), harmonic(f0_hz, sr, 0.6), np.zeros(int(0.3 * sr) + 37, np.float32)])
    f0 = compute_f0(x, sr, hop)
    assert f0.shape == (int(np.ceil(len(x) / hop)),) and f0.dtype == np.float32
    centres = frame_centres(len(f0), hop, sr)
    inside = (centres > 0.35) & (centres < 0.85)
    assert np.all(np.abs(f0[inside] / f0_hz - 1) < 0.01)
    silent = (centres < 0.2) | (centres > 1.0)
    assert np.all(f0[silent] == 0.0)
    log_f0, voiced = f0_to_log(f0)
    assert np.all(np.isfinite(log_f0)) and voiced[inside].all() and not voiced[silent].any()
    assert np.allclose(log_f0[inside], np.log(f0_hz), atol=0.01)
    interp, _ = f0_to_log(f0, interpolate=True)
    assert np.all(np.isfinite(interp)) and np.all(interp > 0)


def test_f0_lengths_and_short_clips():
    sr, hop = 16000, 200
    for n in (1, 150, 200, 201, 999):
        x = harmonic(200.0, sr, 1.0)[:n]
        assert compute_f0(x, sr, hop).shape == (-(-n // hop),)
    assert compute_f0(harmonic(200.0, sr, 1.0), sr, hop, num_frames=90).shape == (90,)


def test_f0_to_log_edge_cases():
    log_f0, voiced = f0_to_log(np.zeros(5, np.float32), interpolate=True)
    assert np.all(log_f0 == 0.0) and not voiced.any()
    log_f0, voiced = f0_to_log(np.array([0, 100, 0, 0, 400, 0], np.float32), interpolate=True)
    assert voiced.tolist() == [False, True, False, False, True, False]
    assert log_f0[0] == pytest.approx(np.log(100)) and log_f0[-1] == pytest.approx(np.log(400))
    assert np.log(100) < log_f0[2] < log_f0[3] < np.log(400)
    plain, _ = f0_to_log(np.array([0, 100, np.nan, -3], np.float32))
    assert plain.tolist()[0] == 0.0 and np.all(np.isfinite(plain))


def test_sample_track_and_stats():
    values = np.array([0.0, 100.0, 200.0, 0.0])
    out = sample_track(values, x1=0.0, dx=1.0, times=np.array([0.2, 0.7, 1.5, 2.6, 3.5]))
    assert out.tolist() == pytest.approx([0.0, 100.0, 150.0, 0.0, 0.0])
    m = log_f0_moments(np.array([0, 100, 100, 0], np.float32))
    s = moments_to_stats(m)
    assert s["voiced_frames"] == 2 and s["mean"] == pytest.approx(np.log(100)) and s["std"] == pytest.approx(0, abs=1e-6)
