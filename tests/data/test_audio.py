"""Audio loading, resampling quality and the bad-file checks."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ns2.audio.frames import num_frames
from ns2.data.audio import (AudioPolicy, BadAudio, check_audio, load_audio, load_checked, resample,
                            rms_db, to_mono, wav_truncation)


def tone(freq: float, sr: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_energy(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_resample_keeps_frequency_and_energy():
    x = tone(1000.0, 22050)
    y = resample(x, 22050, 16000)
    assert len(y) == 16000
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    peak = np.fft.rfftfreq(len(y), 1 / 16000)[np.argmax(spec)]
    assert abs(peak - 1000.0) <= 1.0
    core = slice(1000, -1000)  # away from the filter's edge transients
    assert np.sqrt(np.mean(y[core] ** 2)) == pytest.approx(np.sqrt(np.mean(x[1400:-1400] ** 2)), rel=0.01)


def test_resample_suppresses_aliasing():
    # 10 kHz is above the 8 kHz Nyquist of 16 kHz: a naive decimator folds it to 6 kHz.
    y = resample(tone(10000.0, 22050), 22050, 16000)
    assert np.max(np.abs(y[1000:-1000])) < 1e-3
    naive = tone(10000.0, 22050)[np.round(np.arange(16000) * 22050 / 16000).astype(int).clip(max=22049)]
    assert band_energy(naive, 16000, 5500, 6500) > 1e3 * max(band_energy(y, 16000, 5500, 6500), 1e-12)


def test_resample_multichannel_and_identity():
    x = np.stack([tone(440, 24000), tone(880, 24000)])
    y = resample(x, 24000, 16000)
    assert y.shape == (2, 16000)
    assert resample(x[0], 16000, 16000) is not None and resample(x[0], 16000, 16000).shape == (24000,)


def test_load_and_mono(tmp_path):
    st = np.stack([tone(440, 16000), np.zeros(16000, np.float32)], axis=1)
    sf.write(tmp_path / "s.wav", st, 16000)
    x, sr = load_audio(tmp_path / "s.wav")
    assert sr == 16000 and x.shape == (2, 16000) and x.dtype == np.float32
    m = to_mono(x)
    assert m.shape == (16000,)
    assert np.allclose(m, x[0] / 2, atol=1e-4)


def test_num_frames():
    assert num_frames(0, 200) == 0
    assert num_frames(1, 200) == 1
    assert num_frames(200, 200) == 1
    assert num_frames(201, 200) == 2


def test_checks(tmp_path):
    sr = 16000
    good = tone(220, sr)[None]
    check_audio(good, sr)
    with pytest.raises(BadAudio, match="^silent"):
        check_audio(np.zeros((1, sr), np.float32), sr)
    with pytest.raises(BadAudio, match="^empty"):
        check_audio(np.zeros((1, 0), np.float32), sr)
    with pytest.raises(BadAudio, match="^too short"):
        check_audio(good[:, :100], sr)
    with pytest.raises(BadAudio, match="^wrong rate"):
        check_audio(good, sr, AudioPolicy.create([22050]))
    check_audio(good, sr, AudioPolicy.create([22050], strict_rate=False))
    with pytest.raises(BadAudio, match="^not mono"):
        check_audio(np.concatenate([good, good]), sr)
    check_audio(np.concatenate([good, good]), sr, AudioPolicy(strict_channels=False))
    with pytest.raises(BadAudio, match="^truncated"):
        check_audio(good, sr, declared_duration=2.0)
    with pytest.raises(BadAudio, match="^clipped"):
        check_audio(np.clip(good * 10, -1, 1), sr, AudioPolicy(max_clipped_fraction=0.01))
    assert rms_db(np.zeros(10)) == -np.inf


def test_truncated_and_corrupt_files(tmp_path):
    sf.write(tmp_path / "a.wav", tone(220, 16000), 16000, subtype="PCM_16")
    data = (tmp_path / "a.wav").read_bytes()
    assert wav_truncation(tmp_path / "a.wav") is None
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    assert "truncated" in wav_truncation(tmp_path / "cut.wav")
    with pytest.raises(BadAudio, match="^truncated"):
        load_checked(tmp_path / "cut.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really audio" * 5)
    with pytest.raises(BadAudio, match="^unreadable"):
        load_checked(tmp_path / "bad.wav")
    x, sr = load_checked(tmp_path / "a.wav")
    assert sr == 16000 and x.shape == (16000,)
