import math

import numpy as np
import pytest
import torch

from ns2.modules.mel import MelSpectrogram


@pytest.fixture(scope="module")
def mel():
    return MelSpectrogram()


def test_frame_count_is_ceil_samples_over_hop(mel):
    g = torch.Generator().manual_seed(0)
    sizes = [0, 1, 2, 199, 200, 201, 399, 400, 411, 412, 413, 611, 612, 800, 1023, 1024, 1025, 3200, 16000, 16001]
    sizes += torch.randint(1, 40000, (30,), generator=g).tolist()
    for s in sizes:
        y = mel(torch.randn(2, s, generator=g))
        assert y.shape == (2, 80, math.ceil(s / 200)), s
        assert mel.frames(s) == math.ceil(s / 200)
        assert torch.isfinite(y).all()


def test_accepts_mono_shapes_and_rejects_others(mel):
    x = torch.randn(1000)
    ref = mel(x[None])
    assert torch.equal(mel(x), ref)
    assert torch.equal(mel(x[None, None]), ref)
    with pytest.raises(ValueError, match="wav must be shaped"):
        mel(torch.randn(2, 2, 100))


def test_padding_does_not_change_valid_frames(mel):
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3333, generator=g), torch.randn(5000, generator=g)
    batch = torch.zeros(2, 5000)
    batch[0, :3333], batch[1] = a, b
    out = mel(batch)
    alone = mel(a[None])
    assert torch.allclose(out[0, :, : alone.shape[-1]], alone[0], atol=1e-4)


def test_matches_librosa_reference(mel):
    import librosa

    x = np.random.default_rng(0).standard_normal(4321).astype(np.float32) * 0.1
    T = math.ceil(len(x) / 200)
    padded = np.pad(x, (412, T * 200 - len(x) + 412))
    spec = np.abs(librosa.stft(padded, n_fft=1024, hop_length=200, win_length=800, window="hann", center=False))
    ref = np.log(np.maximum(librosa.filters.mel(sr=16000, n_fft=1024, n_mels=80, fmin=0, fmax=8000) @ spec, 1e-5))
    out = mel(torch.from_numpy(x)[None])[0].numpy()
    assert ref.shape == out.shape
    assert np.allclose(out, ref, atol=1e-3)


def test_tone_lands_in_the_right_bin(mel):
    import librosa

    t = torch.arange(16000) / 16000
    y = mel(torch.sin(2 * math.pi * 1000 * t)[None])[0]
    centers = librosa.mel_frequencies(n_mels=82, fmin=0, fmax=8000)[1:-1]
    peak = int(y[:, 10:-10].mean(-1).argmax())
    assert abs(centers[peak] - 1000) < 100


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="win_length"):
        MelSpectrogram(win_length=2048)
    with pytest.raises(ValueError, match="f_max"):
        MelSpectrogram(f_max=9000)
