"""NS2Synthesizer with a score: pitch and durations as written (the default), or predicted from the
score's notes by a score-conditioned network (``score_pitch`` / ``score_durations="predicted"``)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tiny_synth import SR, tiny_parts

from ns2.inference import NS2Synthesizer
from ns2.inference.synthesizer import SynthesisError
from ns2.models.ns2 import NaturalSpeech2
from ns2.models.ns2.sde import VPSDE
from ns2.text import DEFAULT_SYMBOLS

PHONES = ["<sil>", "l", "ˈ", "iː", "oʊ", "|", "b", "ɔː", "t", "<sil>"]
DURS = [4, 2, 0, 6, 5, 0, 2, 6, 2, 3]
NOTES = [(0, 4, 0), (4, 12, 57), (12, 17, 59), (17, 27, 62), (27, 30, 0)]  # [start, end) frames, MIDI (0 rest)


def score(transpose: float = 0.0) -> dict:
    f0 = np.zeros(sum(DURS))
    for a, b, p in NOTES:
        if p:
            f0[a:b] = 440 * 2 ** ((p + transpose - 69) / 12)
    return {"phonemes": PHONES, "durations": DURS, "f0": f0, "note_frames": [(a, b) for a, b, _ in NOTES]}


def conditioned_synth(**kwargs) -> NS2Synthesizer:
    """The tiny synthesizer's network with score conditioning (its note embedding perturbed off its
    initial values, so the notes visibly move the predictions)."""
    _, codec, kw = tiny_parts()
    torch.manual_seed(0)
    net = NaturalSpeech2(**kw, score_conditioning=True)
    with torch.no_grad():
        net.duration_predictor.out.weight.mul_(0.5)
        net.duration_predictor.out.bias.fill_(math.log1p(4.0))
        net.pitch_predictor.out.bias.fill_(math.log(150.0))
        for p in net.note_embedding.parameters():
            p.mul_(3.0)
    return NS2Synthesizer(net, codec, VPSDE(), DEFAULT_SYMBOLS, "en-us", steps=2, **kwargs)


@pytest.fixture(scope="module")
def sung():
    return conditioned_synth()


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    t = np.arange(2 * SR) / SR
    return (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


def test_default_takes_the_score_as_written(sung, voice):
    from ns2.inference import score_log_f0

    sc = score()
    res = sung.generate("x", voice, SR, score=sc)
    assert res.durations.tolist() == DURS and res.frames == sum(DURS)
    np.testing.assert_allclose(res.log_f0, score_log_f0(sc["f0"]), rtol=1e-6)
    assert res.info()["score_pitch"] == res.info()["score_durations"] == "score"


def test_predicted_pitch_follows_the_notes_not_the_flat_contour(sung, voice):
    from ns2.inference import score_log_f0

    flat = score_log_f0(score()["f0"])
    res = sung.generate("x", voice, SR, score=score(), score_pitch="predicted")
    assert res.durations.tolist() == DURS and res.log_f0.shape == flat.shape  # the score's rhythm
    assert np.abs(res.log_f0 - flat).max() > 1e-3 and res.info()["score_pitch"] == "predicted"
    up = sung.generate("x", voice, SR, score=score(transpose=7), score_pitch="predicted")
    assert np.abs(up.log_f0 - res.log_f0).max() > 1e-3  # the predictor reads the (moved) notes
    # the constructor's default, overridden per call
    dflt = conditioned_synth(score_pitch="predicted")
    again = dflt.generate("x", voice, SR, score=score())
    np.testing.assert_allclose(again.log_f0, res.log_f0, rtol=1e-5, atol=1e-5)
    assert dflt.describe()["score_pitch"] == "predicted"
    np.testing.assert_allclose(dflt.generate("x", voice, SR, score=score(), score_pitch="score").log_f0, flat, rtol=1e-6)


def test_predicted_durations_keep_the_score_length_with_its_pitch(sung, voice):
    res = sung.generate("x", voice, SR, score=score(), score_durations="predicted")
    assert res.frames == sum(DURS) and int(res.durations.sum()) == sum(DURS)
    both = sung.generate("x", voice, SR, score=score(), score_pitch="predicted", score_durations="predicted")
    assert both.info()["score_durations"] == "predicted" and len(both.durations) == len(PHONES)
    wav, sr = sung.synthesize("x", voice, SR, score=score(), score_pitch="predicted", score_durations="predicted")
    assert sr == SR and wav.size > 0 and sung.last_info["score_pitch"] == "predicted"


def test_predicted_needs_a_score_conditioned_model_and_notes(sung, voice):
    from tiny_synth import build_tiny

    plain = build_tiny(steps=2)
    with pytest.raises(SynthesisError, match="needs a model trained with score conditioning"):
        plain.generate("x", voice, SR, score=score(), score_pitch="predicted")
    with pytest.raises(SynthesisError, match="reads the score's notes"):
        sung.generate("x", voice, SR, score={"phonemes": PHONES, "durations": DURS}, score_pitch="predicted")
    with pytest.raises(ValueError, match="score_pitch must be one of"):
        conditioned_synth(score_pitch="notes")
    with pytest.raises(ValueError, match="score_durations must be one of"):
        sung.generate("x", voice, SR, score=score(), score_durations="written")
    # a model without score conditioning keeps taking scores as before (the notes are not passed to it)
    res = plain.generate("x", voice, SR, score=score())
    assert res.durations.tolist() == DURS
