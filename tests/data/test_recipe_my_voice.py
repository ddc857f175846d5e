"""`data=my_voice`: a folder of one speaker's clips, with or without transcripts (ns2/data/recipes/my_voice.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ns2.data.recipes import RecipeError
from ns2.data.recipes.my_voice import MyVoiceCorpus, read_metadata

SR = 22050


class FixedRecogniser:
    """A recogniser double: the transcript and confidence are set per clip length (in samples at 16 kHz)."""

    calls = 0

    def transcribe_scored(self, wav16):
        FixedRecogniser.calls += 1
        return ("hello world", 0.9) if len(wav16) < 16000 * 1.75 else ("uh the", 0.2)


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture()
def clips(tmp_path):
    d = tmp_path / "recordings"
    (d / "day2").mkdir(parents=True)
    sf.write(d / "a.wav", _tone(1.5), SR)
    (d / "a.txt").write_text("The first clip.\n")
    sf.write(d / "b.flac", _tone(1.5), SR)
    sf.write(d / "c.wav", _tone(1.5), SR)  # recognised with high confidence
    sf.write(d / "day2" / "d.wav", _tone(2.0), SR)  # recognised with low confidence
    sf.write(d / "e.wav", _tone(1.5), SR)
    (d / "metadata.csv").write_text("b|Second clip.|Second clip, normalised.\ne|The fifth one.\n")
    return d


def test_transcripts_from_files_metadata_and_the_recogniser(clips, tmp_path):
    FixedRecogniser.calls = 0
    out = tmp_path / "data" / "my_voice"
    corpus = MyVoiceCorpus(clips, recogniser=FixedRecogniser, speaker="ana", valid_clips=1)
    raw = corpus.build(out)
    assert raw == out / "raw.jsonl" and not (clips / "raw.jsonl").exists()  # nothing written beside the clips
    utts = {u["id"]: u for u in map(json.loads, raw.read_text().splitlines())}
    assert sorted(utts) == ["a", "b", "c", "e"]
    assert utts["a"]["text"] == "The first clip." and utts["a"]["extra"]["transcript"] == "txt"
    assert utts["b"]["text"] == "Second clip, normalised." and utts["b"]["extra"]["transcript"] == "metadata.csv"
    assert utts["c"]["text"] == "hello world" and utts["c"]["extra"]["transcript_confidence"] == 0.9
    assert {u["speaker"] for u in utts.values()} == {"ana"}
    assert [utts[k]["split"] for k in "abce"] == ["train", "train", "train", "valid"]
    assert FixedRecogniser.calls == 2  # only the clips without a transcript
    (q,) = map(json.loads, (out / "quarantine.jsonl").read_text().splitlines())
    assert q["id"] == "day2_d" and q["reason"].startswith("low-confidence transcript: 0.20 < 0.5 for 'uh the'")
    assert "write d.txt beside it" in q["reason"]


def test_low_confidence_clips_can_be_kept_flagged(clips, tmp_path):
    raw = MyVoiceCorpus(clips, recogniser=FixedRecogniser, low_confidence="keep").build(tmp_path / "out")
    utts = {u["id"]: u for u in map(json.loads, raw.read_text().splitlines())}
    assert utts["day2_d"]["extra"]["low_confidence"] is True and "low_confidence" not in utts["c"]["extra"]


def test_without_a_recogniser_untranscribed_clips_are_quarantined(clips, tmp_path):
    out = tmp_path / "out"
    MyVoiceCorpus(clips, recogniser=None).build(out)
    reasons = {q["id"]: q["reason"] for q in map(json.loads, (out / "quarantine.jsonl").read_text().splitlines())}
    assert reasons == {"c": "no transcript: write c.txt beside it (no recogniser is configured)",
                       "day2_d": "no transcript: write d.txt beside it (no recogniser is configured)"}


def test_bad_folders_and_options_are_one_line(tmp_path):
    with pytest.raises(RecipeError, match=r"pass the folder of your clips: data.corpus.root="):
        MyVoiceCorpus(None).build(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecipeError, match="not found under .*put .wav/.flac/.ogg clips of one speaker in"):
        MyVoiceCorpus(tmp_path / "empty").build(tmp_path / "out")
    with pytest.raises(RecipeError, match="unknown options"):
        MyVoiceCorpus(tmp_path, speakr="x")
    (tmp_path / "m.csv").write_text("no separator here\n")
    with pytest.raises(RecipeError, match=r"m.csv:1: expected '<clip name>\|<text>'"):
        read_metadata(tmp_path / "m.csv")


def test_prep_command_prepares_the_clips(clips, compose):
    cfg = compose("prep", ["data=my_voice", f"data.corpus.root={clips}", "data.prep.stages=[audio,phonemes,f0]",
                           "data.corpus.recogniser._target_=test_recipe_my_voice.FixedRecogniser",
                           "~data.corpus.recogniser._partial_", "+data.corpus.recogniser._partial_=true"])
    from ns2.cli.prep import run_prep

    summary = run_prep(cfg)
    assert summary["utterances"] == 4 and summary["speakers"] == 1
    assert summary["quarantine_reasons"] == {"low-confidence transcript": 1}
    assert summary["sample_rate"] == 16000


@pytest.mark.slow
def test_pocketsphinx_confidence_separates_speech_from_a_tone():
    import soxr

    from ns2.data.synthetic.espeak_synth import get_espeak
    from ns2.metrics.asr import PocketsphinxRecognizer

    out = get_espeak().synthesize("Hello, how are you today?")
    speech = soxr.resample(out.audio.astype(np.float32) / 32768.0, out.sample_rate, 16000).astype(np.float32)
    asr = PocketsphinxRecognizer()
    text, confidence = asr.transcribe_scored(speech)
    _, tone_confidence = asr.transcribe_scored(soxr.resample(_tone(2.0), SR, 16000).astype(np.float32))
    assert text and 0.0 < confidence <= 1.0 and asr.transcribe(speech) == text
    assert tone_confidence < confidence
