"""The embedded synthetic corpus: espeak-ng speech with ground-truth timings and PSOLA singing."""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")
parselmouth = pytest.importorskip("parselmouth")
sf = pytest.importorskip("soundfile")

from ns2.data.manifest import read_manifest, summarize  # noqa: E402
from ns2.data.synthetic import SIZES, SyntheticCorpus, SyntheticError, generate_corpus, plan, resolve_params  # noqa: E402
from ns2.data.synthetic import generate as gen  # noqa: E402
from ns2.data.synthetic.alignment import AlignmentError, align_events  # noqa: E402
from ns2.data.synthetic.espeak_synth import Event, VoiceSettings, get_espeak  # noqa: E402
from ns2.data.synthetic.sentences import SentenceGenerator  # noqa: E402
from ns2.data.synthetic.singing import is_vowel, syllabify  # noqa: E402

SIL, WB = "<sil>", "|"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """The mini corpus, generated once: ``(root, manifest path, seconds it took)``."""
    root = tmp_path_factory.mktemp("synthetic") / "mini"
    t0 = time.perf_counter()
    path = generate_corpus(root, "mini", seed=0)
    return root, path, time.perf_counter() - t0


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def semitones(a: float, b: float) -> float:
    return 12.0 * math.log2(a / b)


# ------------------------------------------------------------------------------- corpus
def test_mini_is_small_fast_and_valid(mini):
    root, path, seconds = mini
    utts = read_manifest(path)
    summary = summarize(utts)
    p = SIZES["mini"]
    assert seconds < 30.0
    assert path == root / "raw.jsonl"
    assert summary["speakers"] == p["train_speakers"] + p["test_speakers"]
    assert summary["singing"] == p["singing_train"] + p["singing_valid"] + p["singing_test"]
    assert set(summary["splits"]) == {"train", "valid", "test"}
    assert 60.0 < summary["hours"] * 3600 < 300.0
    for u in utts:
        info = sf.info(str(u.audio_path(root)))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16") == (u.sample_rate, 1, "PCM_16")
        assert info.frames == round(u.duration * u.sample_rate)
        assert u.audio == f"{u.split}/{u.speaker}/{u.id.split('_')[1]}/{u.id}.wav"
        base = u.audio_path(root).with_suffix("")
        assert base.with_name(base.name + ".original.txt").read_text(encoding="utf-8").strip() == u.text
        assert base.with_name(base.name + ".normalized.txt").exists()
    params = json.loads((root / "synthetic.json").read_text())
    assert params["complete"] and params["seed"] == 0 and params["size"] == "mini"
    assert not (root / "synthetic.journal.jsonl").exists()


def test_phoneme_times_are_contiguous_and_cover_the_audio(mini):
    from ns2.text import DEFAULT_SYMBOLS

    root, path, _ = mini
    for u in read_manifest(path):
        assert set(u.phonemes) <= set(DEFAULT_SYMBOLS.symbols), u.id
        t = u.phoneme_times
        assert t[0][0] == 0.0 and t[-1][1] == pytest.approx(u.duration, abs=1e-9), u.id
        assert all(t[k][1] == t[k + 1][0] for k in range(len(t) - 1)), u.id
        assert all(a <= b for a, b in t)
        assert len(u.word_index) == len(u.phonemes)
        for p, w, (a, b) in zip(u.phonemes, u.word_index, t):
            if p in (SIL, WB, ",", ".", "!", "?", ";", ":"):
                assert w == -1
            if p in (WB, "ˈ", "ˌ", ","):
                assert a == b  # marks take no time
            if p == SIL:
                assert b > a
        words = re.findall(r"[A-Za-z0-9']+", u.extra["normalized_text"])
        assert sorted(set(u.word_index) - {-1}) == list(range(len(words))), u.id  # every word has phonemes


def test_held_out_speakers_are_disjoint_from_training(mini):
    root, path, _ = mini
    utts = read_manifest(path)
    test_spk = {u.speaker for u in utts if u.split == "test"}
    train_spk = {u.speaker for u in utts if u.split in ("train", "valid")}
    assert test_spk and train_spk and not test_spk & train_spk
    speakers = json.loads((root / "synthetic.json").read_text())["speakers"]
    held = [s for s in speakers if s["held_out"]]
    train = [s for s in speakers if not s["held_out"]]
    assert {s["id"] for s in held} == test_spk
    assert not {s["variant"] for s in held} & {s["variant"] for s in train}
    valid_spk = {u.speaker for u in utts if u.split == "valid"}
    assert valid_spk <= train_spk


def test_speakers_differ_in_f0(mini):
    root, path, _ = mini
    f0: dict[str, list[np.ndarray]] = {}
    for u in read_manifest(path):
        if u.kind != "speech":
            continue
        y, sr = sf.read(str(u.audio_path(root)))
        q = parselmouth.Sound(y, sr).to_pitch(0.01, 60.0, 600.0).selected_array["frequency"]
        f0.setdefault(u.speaker, []).append(q[q > 0])
    medians = {s: float(np.median(np.concatenate(v))) for s, v in f0.items()}
    values = sorted(medians.values())
    assert semitones(values[-1], values[0]) > 12.0  # low male to high female voices
    gaps = [semitones(b, a) for a, b in zip(values, values[1:])]
    assert min(gaps) > 0.3, medians  # no two voices share a pitch


def test_generation_is_deterministic(mini, tmp_path):
    root, path, _ = mini
    again = generate_corpus(tmp_path / "again", "mini", seed=0, num_workers=1)
    assert again.read_bytes() == path.read_bytes()
    for u in read_manifest(path):
        assert md5(u.audio_path(root)) == md5(u.audio_path(tmp_path / "again")), u.id
    other = plan(resolve_params("mini"), seed=1)[1]
    assert [j.text for j in other] != [j.text for j in plan(resolve_params("mini"), seed=0)[1]]


def test_rerun_is_idempotent_and_fast(mini):
    root, path, _ = mini
    before = (path.stat().st_mtime_ns, path.read_bytes())
    t0 = time.perf_counter()
    assert generate_corpus(root, "mini", seed=0) == path
    assert SyntheticCorpus("mini", 0).build(root) == path
    assert time.perf_counter() - t0 < 2.0
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_resume_regenerates_only_missing_items(mini, tmp_path, monkeypatch):
    root, path, _ = mini
    work = tmp_path / "work"
    shutil.copytree(root, work)
    utts = read_manifest(path)
    # a finished corpus with a few wavs lost
    lost = [utts[3], utts[20], next(u for u in utts if u.kind == "singing")]
    for u in lost:
        u.audio_path(work).unlink()
    calls: list[str] = []
    real = gen.run_job
    monkeypatch.setattr(gen, "run_job", lambda job, r: calls.append(job.id) or real(job, r))
    assert generate_corpus(work, "mini", seed=0) == work / "raw.jsonl"
    assert sorted(calls) == sorted(u.id for u in lost)
    assert (work / "raw.jsonl").read_bytes() == path.read_bytes()
    for u in lost:
        assert md5(u.audio_path(work)) == md5(u.audio_path(root))
    # an interrupted run: no manifest yet, half of the items journaled
    calls.clear()
    (work / "raw.jsonl").unlink()
    done = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[::2]]
    (work / "synthetic.journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in done) + '{"torn', encoding="utf-8")
    generate_corpus(work, "mini", seed=0)
    assert sorted(calls) == sorted(u.id for u in utts if u.id not in {r["id"] for r in done})
    assert (work / "raw.jsonl").read_bytes() == path.read_bytes()


def test_other_parameters_in_the_same_root_are_refused(mini):
    root, _, _ = mini
    with pytest.raises(SyntheticError, match="other parameters"):
        generate_corpus(root, "mini", seed=1)
    with pytest.raises(SyntheticError, match="unknown synthetic corpus size"):
        SyntheticCorpus("huge")
    with pytest.raises(SyntheticError, match="unknown synthetic corpus parameter"):
        SyntheticCorpus("mini", speakers=3)


# ------------------------------------------------------------------------------- ground truth
def test_event_phonemes_agree_with_the_tokenizer(mini):
    """The symbols read from espeak's events equal the front end's for the same text.

    Measured: 100% symbol agreement (360 sentences over the six accents, en-us to en-gb-scotland).
    """
    from ns2.text import Tokenizer

    root, path, _ = mini
    utts = [u for u in read_manifest(path) if u.kind == "speech"]
    picked = {}
    for u in utts:  # two sentences per accent
        picked.setdefault(u.language, [])
        if len(picked[u.language]) < 2:
            picked[u.language].append(u)
    total = errors = 0
    for language, group in picked.items():
        tok = Tokenizer(language)
        for u in group:
            t = tok(u.text)
            ours = [p for p in u.phonemes if p not in (SIL, WB)]
            ref = [p for p in t.phonemes if p != WB]
            total += len(ref)
            errors += _edit_distance(ours, ref)
            wi_ours = [w for p, w in zip(u.phonemes, u.word_index) if p not in (SIL, WB)]
            wi_ref = [w for p, w in zip(t.phonemes, t.word_index) if p != WB]
            if ours == ref:
                assert wi_ours == wi_ref, u.id
    assert 1.0 - errors / total >= 0.98


def _edit_distance(a, b) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_alignment_tells_pauses_from_glides_and_rejects_unknown_names():
    from ns2.text import DEFAULT_SYMBOLS

    audio = np.zeros(1000, np.int16)
    audio[100:500] = 3000  # sound
    events = [Event("word", 100, number=1, text_position=1, length=2),
              Event("phoneme", 100, "ˈa"), Event("phoneme", 300, ""),  # loud unnamed: a glide
              Event("phoneme", 400, "ɪ"), Event("phoneme", 500, ""),     # silent unnamed: a pause
              Event("word", 700, number=2, text_position=4, length=2), Event("phoneme", 700, "n")]
    a = align_events(events, audio, 1000, "ai, n.", DEFAULT_SYMBOLS)
    assert a.phonemes == [SIL, "ˈ", "a", "ɪ", ",", SIL, "n", "."]
    assert a.times == [[0.0, 0.1], [0.1, 0.1], [0.1, 0.4], [0.4, 0.5], [0.5, 0.5], [0.5, 0.7], [0.7, 1.0], [1.0, 1.0]]
    assert a.word_index == [-1, 0, 0, 0, -1, -1, 1, -1]
    with pytest.raises(AlignmentError, match="outside symbol table"):
        align_events([Event("phoneme", 0, "☃")], audio, 1000, "x", DEFAULT_SYMBOLS)


def test_espeak_output_depends_only_on_its_arguments():
    e = get_espeak()
    a = e.synthesize("Hello there, my friend.", VoiceSettings("en-us+f3", 160, 40, 60))
    e.synthesize("Something else entirely, spoken first.", VoiceSettings("en-gb-scotland+m3"))
    b = e.synthesize("Hello there, my friend.", VoiceSettings("en-us+f3", 160, 40, 60))
    assert a.sample_rate == 22050 and np.array_equal(a.audio, b.audio) and a.events == b.events
    kinds = {ev.kind for ev in a.events}
    assert {"word", "phoneme", "sentence", "end"} <= kinds


# ------------------------------------------------------------------------------- singing
def test_singing_follows_the_score(mini):
    """Sung F0 in the middle of each note's vowel vs the score (measured median error ~10 cents)."""
    root, path, _ = mini
    errors = []
    for u in read_manifest(path):
        if u.kind != "singing":
            continue
        y, sr = sf.read(str(u.audio_path(root)))
        pitch = parselmouth.Sound(y, sr).to_pitch(0.005, 50.0, 800.0)
        covered = []
        for note in u.score:
            covered.append((note["phoneme_start"], note["phoneme_end"]))
            span = u.phoneme_times[note["phoneme_start"]][0], u.phoneme_times[note["phoneme_end"] - 1][1]
            assert note["start"] == pytest.approx(span[0], abs=1e-5)
            assert note["duration"] == pytest.approx(span[1] - span[0], abs=1e-5)
            if note["rest"]:
                assert note["pitch"] == 0 and all(p == SIL for p in u.phonemes[slice(*covered[-1])])
                continue
            vowels = [k for k in range(*covered[-1]) if is_vowel(u.phonemes[k])]
            a, b = u.phoneme_times[vowels[0]][0], u.phoneme_times[vowels[-1]][1]
            f = pitch.get_value_at_time((a + b) / 2)
            target = 440.0 * 2 ** ((note["pitch"] - 69) / 12)
            errors.append(abs(1200 * math.log2(f / target)) if f == f else float("inf"))
        assert covered[0][0] == 0 and covered[-1][1] == len(u.phonemes)
        assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))  # notes partition the phonemes
    errors = np.array(errors)
    assert len(errors) >= 20
    assert np.mean(errors < 100) >= 0.85
    assert np.median(errors) < 40


def test_syllables_group_consonants_around_vowel_nuclei():
    phonemes = [SIL, "b", "ˈ", "ɑː", "s", "k", "ɪ", "t", WB, "s", "t", "ɹ", "ˈ", "iː", "t", SIL]
    words = [-1, 0, 0, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1, -1]
    assert syllabify(phonemes, words) == [(1, 5), (5, 8), (8, 15)]
    assert [is_vowel(p) for p in ("n̩", "ɚ", "aɪə", "t", "ʃ")] == [True, True, True, False, False]


# ------------------------------------------------------------------------------- sentences
def test_sentences_are_seeded_and_varied():
    gen_a, gen_b = SentenceGenerator(5), SentenceGenerator(5)
    first = [gen_a.sentence() for _ in range(2000)]
    assert first == [gen_b.sentence() for _ in range(2000)]
    assert first[:20] != [SentenceGenerator(6).sentence() for _ in range(20)]
    assert len(set(first)) > 0.98 * len(first)
    assert any(any(ch.isdigit() for ch in s) for s in first)
    assert {s[-1] for s in first} == {".", "?", "!"} and any("," in s for s in first)
    lyrics = [gen_a.lyric() for _ in range(200)]
    assert all(4 <= len(s.split()) <= 8 and not any(ch.isdigit() for ch in s) for s in lyrics)
    assert all(4 <= len(s.split()) <= 40 for s in first)


def test_sizes_are_extensible(monkeypatch):
    monkeypatch.setitem(SIZES, "tiny", dict(SIZES["mini"], train_speakers=2, test_speakers=1))
    speakers, jobs = plan(resolve_params("tiny", {"utterances_per_speaker": 3, "singing_train": 1,
                                                  "singing_valid": 0, "singing_test": 0}), seed=0)
    assert len(speakers) == 3 and len(jobs) == 2 * 3 + 6 + 1
    assert len({j.id for j in jobs}) == len(jobs)
