"""Singing metrics against known answers: tones that follow a score, transposed ones, PSOLA-sung corpus items."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("parselmouth")
pytest.importorskip("mir_eval")

from ns2.metrics.registry import MetricInputError, get_metric_class  # noqa: E402
from ns2.metrics.singing import note_track, notes_of, singing_scores  # noqa: E402

SR = 16000
SCORE = [  # the manifest's form: MIDI pitch, start and duration in seconds; 0 / rest for rests
    {"pitch": 0, "start": 0.0, "duration": 0.2, "rest": True},
    {"pitch": 57, "start": 0.2, "duration": 0.5},
    {"pitch": 60, "start": 0.7, "duration": 0.4},
    {"pitch": 64, "start": 1.1, "duration": 0.6},
    {"pitch": 0, "start": 1.7, "duration": 0.2, "rest": True},
    {"pitch": 62, "start": 1.9, "duration": 0.5},
]


def tone(score, shift: float = 0.0, gap: float = 0.03) -> np.ndarray:
    """A harmonic tone singing ``score`` transposed by ``shift`` semitones, silent in rests and for
    ``gap`` s at the end of each note (so onsets are audible), phase-continuous within a note."""
    total = max(n["start"] + n["duration"] for n in score)
    y = np.zeros(int(total * SR))
    for n in score:
        if n.get("rest") or not n["pitch"]:
            continue
        a, b = int(n["start"] * SR), int((n["start"] + n["duration"] - gap) * SR)
        f = 440.0 * 2 ** ((n["pitch"] + shift - 69) / 12)
        t = np.arange(b - a) / SR
        y[a:b] = sum(0.3 / k * np.sin(2 * np.pi * k * f * t) for k in range(1, 6))
    return y


def test_a_tone_on_its_score_scores_full_marks():
    s = singing_scores(tone(SCORE), SR, SCORE)
    assert s["sing_rpa"] >= 0.98 and s["sing_rca"] >= 0.98
    assert s["sing_f0_rmse_cents"] < 5 and s["sing_note_hit_rate"] == 1.0
    assert s["sing_onset_error_ms"] < 30 and s["sing_vuv_f1"] >= 0.9


@pytest.mark.parametrize("shift, rpa_max, rca_min, rmse", [(1.0, 0.05, None, 100.0), (12.0, 0.05, 0.95, 1200.0),
                                                           (0.3, None, 0.95, 30.0)])
def test_a_transposed_tone_scores_what_the_shift_implies(shift, rpa_max, rca_min, rmse):
    s = singing_scores(tone(SCORE, shift), SR, SCORE)
    if rpa_max is not None:
        assert s["sing_rpa"] <= rpa_max
    else:  # 30 cents is inside the 50-cent tolerance
        assert s["sing_rpa"] >= 0.95
    if rca_min is not None:
        assert s["sing_rca"] >= rca_min
    assert s["sing_f0_rmse_cents"] == pytest.approx(rmse, rel=0.1)
    if shift == 1.0:
        assert s["sing_note_hit_rate"] == 0.0 and math.isnan(s["sing_onset_error_ms"])


def test_late_notes_show_in_the_onset_error():
    late = [dict(n, start=n["start"] + 0.08) for n in SCORE]  # the tone starts each note 80 ms late...
    s = singing_scores(tone(late), SR, SCORE)                 # ...against the written onsets
    assert 60 <= s["sing_onset_error_ms"] <= 110


def test_score_forms_and_bad_scores():
    from ns2.data.singing.notes import Note, NoteScore

    ns = NoteScore([Note("la", 57.0, 0.2, 0.5), Note(None, None, 0.7, 0.2), Note("li", 60.0, 0.9, 0.4)])
    assert notes_of(ns) == [(0.2, 0.5, 57.0), (0.7, 0.2, None), (0.9, 0.4, 60.0)]
    hz = note_track(notes_of(SCORE), np.array([0.1, 0.3, 1.8, 2.0]))
    assert hz[0] == 0 and hz[1] == pytest.approx(220.0) and hz[2] == 0 and hz[3] == pytest.approx(293.66, rel=1e-4)
    with pytest.raises(ValueError, match="no notes"):
        notes_of([])
    with pytest.raises(ValueError, match="score note 1"):
        notes_of([SCORE[1], {"pitch": 60}])
    with pytest.raises(ValueError, match="every note is a rest"):
        singing_scores(tone(SCORE), SR, [SCORE[0]])


def test_psola_sung_corpus_items_follow_their_own_score(tmp_path):
    """The synthetic corpus's singing (espeak-ng speech moved onto notes by Praat PSOLA) against its
    own score, and the same item transposed by two semitones."""
    pytest.importorskip("espeakng_loader")
    import parselmouth
    from parselmouth.praat import call

    from ns2.data.manifest import read_manifest
    from ns2.data.synthetic import generate_corpus
    import soundfile as sf

    root = tmp_path / "mini"
    sung = [u for u in read_manifest(generate_corpus(root, "mini", seed=0)) if u.kind == "singing"]
    assert sung
    for u in sung[:3]:
        y, sr = sf.read(u.audio_path(root), dtype="float64")
        s = singing_scores(y, sr, u.score)
        assert s["sing_rpa"] >= 0.95 and s["sing_note_hit_rate"] >= 0.9, (u.id, s)
        manip = call(parselmouth.Sound(y, sr), "To Manipulation", 0.01, 60.0, 600.0)
        tier = call(manip, "Extract pitch tier")
        call(tier, "Multiply frequencies", 0.0, 1000.0, 2 ** (2 / 12))
        call([tier, manip], "Replace pitch tier")
        up = call(manip, "Get resynthesis (overlap-add)").values[0]
        t = singing_scores(up, sr, u.score)
        assert t["sing_rpa"] <= 0.1 and t["sing_f0_rmse_cents"] == pytest.approx(200.0, abs=30.0), (u.id, t)


def test_the_metric_needs_the_score():
    m = get_metric_class("singing")()
    assert m.score(tone(SCORE), SR, score=SCORE)["sing_rpa"] >= 0.98
    with pytest.raises(MetricInputError, match="score"):
        m.score(tone(SCORE), SR)
