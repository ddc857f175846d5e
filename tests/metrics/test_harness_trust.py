"""The offline fallback backbones, called through the harness, give the values their packages give when
called directly, on real speech: the recordings that ship inside the gradio wheel (two clips of one
speaker, one of another, one more voice; mp3 at 32 kHz and stereo wav at 48 kHz, so the harness's own
reading, down-mixing and resampling are exercised against each package's loader)."""
from __future__ import annotations

import functools
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf

from ns2.metrics.audio import prepare
from ns2.metrics.registry import get_metric_class
from ns2.metrics.sim import cosine

gradio = pytest.importorskip("gradio", reason="the real recordings come with gradio (the '.[app]' extra)")
AUDIO = Path(gradio.__file__).parent / "media_assets" / "audio"
CLIPS = ("cate_blanch.mp3", "cate_blanch_2.mp3", "heath_ledger.mp3", "recording1.wav")
#: The words of heath_ledger.mp3 (a film line), the reference for the WER check.
HEATH_TEXT = "If you're good at something, never do it for free."


def _read(name: str) -> tuple[np.ndarray, int]:
    path = AUDIO / name
    if not path.is_file():
        pytest.skip(f"{path} is not in this gradio release")
    x, sr = sf.read(path, dtype="float32")
    return x, sr


def _librosa16(name: str) -> np.ndarray:
    import librosa

    return librosa.load(AUDIO / name, sr=16000)[0]


@pytest.fixture(scope="module")
def resemblyzer_direct():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch
        from resemblyzer import VoiceEncoder, preprocess_wav

        with mock.patch.object(torch, "load", functools.partial(torch.load, weights_only=True)):
            enc = VoiceEncoder(device="cpu", verbose=False)
    return {name: enc.embed_utterance(preprocess_wav(AUDIO / name)) for name in CLIPS if (AUDIO / name).is_file()}


def test_sim_resemblyzer_matches_the_package_on_real_speech(resemblyzer_direct):
    sim = get_metric_class("sim_resemblyzer")()
    ours = {name: sim.embed(*_read(name)) for name in CLIPS}
    for i, a in enumerate(CLIPS):
        for b in CLIPS[i + 1:]:
            direct = float(resemblyzer_direct[a] @ resemblyzer_direct[b])  # unit-norm embeddings
            assert cosine(ours[a], ours[b]) == pytest.approx(direct, abs=1e-3), (a, b)
    same = float(resemblyzer_direct["cate_blanch.mp3"] @ resemblyzer_direct["cate_blanch_2.mp3"])
    other = float(resemblyzer_direct["cate_blanch.mp3"] @ resemblyzer_direct["heath_ledger.mp3"])
    assert same > other + 0.1, "one speaker's two clips should be closer than two speakers'"


def test_wer_pocketsphinx_matches_the_decoder_and_reads_a_real_sentence():
    from pocketsphinx import Decoder

    wer = get_metric_class("wer_pocketsphinx")()
    for name in ("cate_blanch.mp3", "heath_ledger.mp3", "recording1.wav"):
        y = _librosa16(name)
        d = Decoder(samprate=16000, loglevel="FATAL")
        d.start_utt()
        d.process_raw((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
        d.end_utt()
        direct = d.hyp().hypstr if d.hyp() is not None else ""
        x, sr = _read(name)
        assert wer.recognizer.transcribe(prepare(x, sr, 16000)) == direct, name
    scores = wer.score(*_read("heath_ledger.mp3"), text=HEATH_TEXT)
    assert scores["wer_pocketsphinx"] == 0.0 and scores["wer_pocketsphinx_ref_words"] == 10


def test_dnsmos_matches_speechmos_and_falls_with_noise():
    from speechmos import dnsmos

    metric = get_metric_class("dnsmos")()
    for name in ("cate_blanch.mp3", "heath_ledger.mp3"):
        direct = dnsmos.run(np.clip(_librosa16(name), -1, 1), 16000)
        x, sr = _read(name)
        ours = metric.score(x, sr)
        for key in ("ovrl", "sig", "bak", "p808"):
            assert ours[f"dnsmos_{key}"] == pytest.approx(float(direct[f"{key}_mos"]), abs=0.02), (name, key)
        noisy = x + 0.1 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
        assert metric.score(noisy, sr)["dnsmos_bak"] < ours["dnsmos_bak"] - 0.3, name
