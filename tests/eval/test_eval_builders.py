"""Protocol builders on fake manifests: counts, prompt rules, determinism, and the command line."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from ns2.data.manifest import Utterance, write_manifest
from ns2.eval.builders import build_ns2, build_singing, build_synthetic, build_valle, crop_words
from ns2.eval.protocol import read_protocol
from ns2.eval.protocols import main as protocols_main

FR = 80.0


def utt(spk: str, n: int, seconds: float, split: str = "test", kind: str = "speech") -> Utterance:
    """An utterance whose words (one phoneme each, with a word boundary between) tile its frames."""
    frames = int(round(seconds * FR))
    words = max(1, frames // 40)
    phonemes, wi, durs = [], [], []
    for w in range(words):
        phonemes += ["a", "|"]
        wi += [w, -1]
        durs += [40 if w < words - 1 else frames - 40 * (words - 1), 0]
    text = " ".join(f"w{w}" for w in range(words))
    return Utterance(id=f"{spk}_{n:03d}", audio=f"audio/{spk}/{spk}_{n:03d}.wav", sample_rate=16000,
                     duration=frames / FR, speaker=spk, text=text, split=split, kind=kind, phonemes=phonemes,
                     word_index=wi, durations=durs, frame_rate=FR, num_frames=frames,
                     extra={"normalized_text": text}).validate()


def corpus(n_speakers: int, per: int, seed: int = 0, lo: float = 1.5, hi: float = 14.0, split: str = "test"):
    rng = np.random.default_rng(seed)
    return [utt(f"s{s:03d}", n, float(rng.uniform(lo, hi)), split) for s in range(n_speakers) for n in range(per)]


def check_cross(items, by_id, seconds):
    for it in items:
        src = by_id[it.prompt_id]
        assert it.mode == "cross_sentence" and it.prompt_id != it.id and src.speaker == it.speaker
        assert it.gt_wav == by_id[it.id].audio and it.text == by_id[it.id].text and it.prompt_wav == src.audio
        if it.prompt_start is None:  # whole utterance: only when no other one is long enough
            assert it.extra["prompt_short"] == (src.duration < seconds)
        else:
            assert it.prompt_end - it.prompt_start == pytest.approx(seconds)
            assert 0 <= it.prompt_start and it.prompt_end <= src.duration + 1e-9
            assert (it.prompt_start * FR) == pytest.approx(round(it.prompt_start * FR))  # on the frame grid


def test_ns2_librispeech_shape(tmp_path):
    utts = corpus(45, 20) + [utt("s999", 0, 5.0, split="train")] + [utt("s998", n, 5.0) for n in range(3)]
    by_id = {u.id: u for u in utts}
    lists = build_ns2(utts, n_speakers=40, per_speaker=15, prompt_seconds=(3.0, 5.0, 10.0), seed=0)
    assert sorted(lists) == [3.0, 5.0, 10.0]
    for secs, items in lists.items():
        assert len(items) == 600 and len({i.id for i in items}) == 600
        spk = Counter(i.speaker for i in items)
        assert len(spk) == 40 and set(spk.values()) == {15} and "s998" not in spk and "s999" not in spk
        check_cross(items, by_id, secs)
        assert [i.speaker for i in items[:40]] == sorted(spk)  # round-robin: the first 40 span the speakers
    assert [i.id for i in lists[3.0]] == [i.id for i in lists[10.0]]  # same targets for every prompt length
    again = build_ns2(utts, n_speakers=40, per_speaker=15, prompt_seconds=(3.0,), seed=0)[3.0]
    assert [i.to_dict() for i in again] == [i.to_dict() for i in lists[3.0]]
    other = build_ns2(utts, n_speakers=40, per_speaker=15, prompt_seconds=(3.0,), seed=1)[3.0]
    assert [i.id for i in other] != [i.id for i in again]


def test_ns2_vctk_all_splits_and_short_prompts():
    utts = corpus(110, 8, lo=1.5, hi=4.5, split="train")
    lists = build_ns2(utts, n_speakers=108, per_speaker=5, prompt_seconds=(3.0, 10.0), seed=0, split=None)
    assert len(lists[3.0]) == 540 and len({i.speaker for i in lists[3.0]}) == 108
    long = lists[10.0]  # no VCTK utterance is 10 s: the longest other utterance, whole, marked short
    assert all(i.prompt_start is None and i.extra["prompt_short"] for i in long)
    by_id = {u.id: u for u in utts}
    for i in long:
        others = [u for u in utts if u.speaker == i.speaker and u.id != i.id]
        assert by_id[i.prompt_id].duration == max(u.duration for u in others)


def test_prompt_text_is_the_words_inside_the_crop():
    u = utt("s", 0, 10.0)  # words of 0.5 s each
    assert crop_words(u, 1.0, 2.5) == "w2 w3 w4"
    assert crop_words(u, 1.1, 2.5) == "w3 w4"
    items = build_synthetic([u, utt("s", 1, 4.0)], prompt_seconds=3.0, seed=0)
    (it,) = [i for i in items if i.id == "s_001"]
    words = it.prompt_text.split()
    assert len(words) in (5, 6) and it.extra["prompt_source_text"] == u.text


def test_valle_modes():
    utts = corpus(6, 10, lo=2.0, hi=12.0)
    by_id = {u.id: u for u in utts}
    lists = build_valle(utts, prompt_seconds=3.0, min_seconds=4.0, max_seconds=10.0, seed=0)
    want = {u.id for u in utts if 4.0 <= u.duration <= 10.0}
    assert {i.id for i in lists["cross_sentence"]} == want == {i.id for i in lists["continuation"]}
    check_cross(lists["cross_sentence"], by_id, 3.0)
    for it in lists["continuation"]:
        assert it.mode == "continuation" and it.prompt_wav == it.gt_wav == by_id[it.id].audio
        assert (it.prompt_start, it.prompt_end) == (0.0, 3.0) and it.prompt_id == it.id
        assert it.prompt_text == "w0 w1 w2 w3 w4 w5" and it.text == by_id[it.id].text


def test_synthetic_held_out_speech_only():
    utts = corpus(3, 5, lo=2.0, hi=4.0) + corpus(4, 5, split="train") + [utt("s000", 99, 3.0, kind="singing")]
    items = build_synthetic(utts, seed=0)
    assert len(items) == 15 and {i.speaker for i in items} == {"s000", "s001", "s002"}
    assert all(not i.id.endswith("_099") and i.prompt_id != i.id for i in items)


def test_singing_lists_carry_the_score_and_the_prompt_kind():
    score = [{"lyric": "a", "pitch": 60, "start": 0.0, "duration": 1.0, "phoneme_start": 0, "phoneme_end": 1}]

    def sung(spk, n):
        u = utt(spk, n, 4.0, kind="singing")
        return Utterance.from_dict({**u.to_dict(), "score": score})

    utts = corpus(2, 3, lo=4.0, hi=5.0) + [sung("s000", 50), sung("s000", 51), sung("s001", 50)] \
        + [Utterance.from_dict({**sung("s000", 52).to_dict(), "split": "train"})]
    lists = build_singing(utts, seed=0)
    speech, singing = lists["speech"], lists["singing"]
    assert sorted(i.id for i in speech) == ["s000_050", "s000_051", "s001_050"]
    assert all(i.extra["score"] == score and i.extra["prompt_kind"] == "speech" for i in speech)
    assert all(not i.prompt_id.endswith(("_050", "_051")) for i in speech)  # prompts from speech
    # s001 sings once: no other sung item to prompt with; s000's two prompt each other
    assert sorted((i.id, i.prompt_id) for i in singing) == [("s000_050", "s000_051"), ("s000_051", "s000_050")]
    assert build_singing(utts, seed=0) == lists


def test_command_line_on_recipe_manifests(tmp_path, capsys):
    from fake_corpora import make_librispeech, make_vctk

    from ns2.data.recipes import RECIPES

    make_librispeech(tmp_path / "ls")
    RECIPES["librispeech"].build_manifest(tmp_path / "ls", tmp_path / "ls" / "raw.jsonl")
    out = protocols_main(["ns2", "--manifest", str(tmp_path / "ls" / "raw.jsonl"), "--speakers", "2",
                          "--per-speaker", "2", "--prompt-seconds", "0.05", "0.1", "--name", "librispeech",
                          "--out-dir", str(tmp_path / "lists")])
    assert sorted(out) == ["librispeech-0.05s", "librispeech-0.1s"]
    items = read_protocol(out["librispeech-0.05s"])
    assert len(items) == 4 and all((tmp_path / "ls" / i.prompt_wav).is_file() for i in items)
    info = json.loads((tmp_path / "lists" / "librispeech-0.05s.info.json").read_text())
    assert info["builder"] == "ns2" and info["arguments"]["seed"] == 0 and info["items"] == 4
    out = protocols_main(["valle", "--manifest", str(tmp_path / "ls" / "raw.jsonl"), "--min-seconds", "0.05",
                          "--max-seconds", "0.2", "--prompt-seconds", "0.03", "--out-dir", str(tmp_path / "lists")])
    assert sorted(out) == ["valle-continuation", "valle-cross-sentence"]
    make_vctk(tmp_path / "vctk", utts=3)
    RECIPES["vctk"].build_manifest(tmp_path / "vctk", tmp_path / "vctk" / "raw.jsonl")
    out = protocols_main(["ns2", "--manifest", str(tmp_path / "vctk" / "raw.jsonl"), "--split", "any", "--speakers",
                          "108", "--per-speaker", "2", "--prompt-seconds", "3", "--name", "vctk",
                          "--out", str(tmp_path / "vctk.jsonl")])
    assert len({i.speaker for i in read_protocol(out["vctk-3s"])}) == 13  # every speaker with text
    (tmp_path / "meta.lst").write_text("u1|P.|p.wav|T.\n")
    out = protocols_main(["seedtts", "--meta", str(tmp_path / "meta.lst"), "--out", str(tmp_path / "s.jsonl")])
    assert read_protocol(out["seedtts"])[0].text == "T."


def test_manifest_round_trip_through_the_command(tmp_path):
    utts = corpus(2, 4, lo=2.0, hi=5.0)
    write_manifest(tmp_path / "m.jsonl", utts)
    out = protocols_main(["synthetic", "--manifest", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "l.jsonl")])
    assert [i.to_dict() for i in read_protocol(out["synthetic"])] == [i.to_dict() for i in build_synthetic(utts)]
