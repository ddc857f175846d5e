"""Singing test items are sung from their score: the runner hands the item's score (phonemes, frame
durations, note F0, note spans) to the system; speech items get none."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ns2.audio.f0 import midi_to_hz
from ns2.eval.inputs import synthesis_score
from ns2.eval.protocol import read_protocol
from ns2.eval.runner import EvalInputs, score_item
from ns2.eval.scoring import Scorer
from ns2.eval.testset import TestSet
from ns2.inference.synthesizer import Synthesizer

ROOT = Path(__file__).resolve().parents[2]
SINGING = ROOT / "eval/protocols/synthetic-singing-small-speech-prompt.jsonl"


def test_synthesis_score_of_a_shipped_singing_item():
    item = json.loads(SINGING.read_text().splitlines()[0])
    s = synthesis_score(item["extra"])
    fr = item["extra"]["score_frame_rate"]
    assert len(s["phonemes"]) == len(s["durations"]) and sum(s["durations"]) == s["f0"].size
    for note, (a, b) in zip((n for n in item["extra"]["score"] if n["duration"] * fr >= 1), s["note_frames"]):
        assert a == round(note["start"] * fr)
        want = 0.0 if note["rest"] else midi_to_hz(note["pitch"])
        np.testing.assert_allclose(s["f0"][a:b], want, rtol=1e-6)
    assert synthesis_score({"text": "speech"}) is None


class Recorder(Synthesizer):
    name = "recorder"

    def __init__(self):
        self.scores = []

    def synthesize(self, text, prompt_wav, prompt_sr, *, prompt_text=None, score=None, seed=0, utt_id=None):
        self.scores.append(score)
        return np.full(1600, 0.1, dtype=np.float32), 16000


@pytest.mark.parametrize("path, sung", [(SINGING, True), (ROOT / "eval/protocols/synthetic-small.jsonl", False)])
def test_the_runner_passes_the_score_of_sung_items_only(path, sung, tmp_path):
    items = read_protocol(path)[:1]
    audio = tmp_path / "audio"
    # a prompt file where the item expects one
    import soundfile as sf

    p = audio / items[0].prompt_wav
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(p, 0.1 * np.sin(np.arange(32000) / 5.0).astype(np.float32), 16000)
    ts = TestSet("t", path, items, audio)
    system = Recorder()
    rec = score_item(system, "recorder", ts, items[0], Scorer([]), EvalInputs(16000), seed=0)
    assert rec["status"] == "ok", rec
    assert (system.scores[0] is not None) is sung
    if sung:
        assert sum(system.scores[0]["durations"]) == system.scores[0]["f0"].size
