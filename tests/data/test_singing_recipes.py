"""Singing corpora through to a prepared manifest: Opencpop (its phones onto the front end's symbols)
and ``data=singing_folder`` (recordings + MusicXML / MIDI scores)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from fake_corpora import OPENCPOP_LINES, make_opencpop, write_audio

from ns2.data.features.durations import times_to_durations
from ns2.data.manifest import read_manifest
from ns2.data.prepare import prepare
from ns2.data.recipes import RECIPES, RecipeCorpus, RecipeError

pytest.importorskip("espeakng_loader")

FR = 80.0  # 16 kHz, hop 200
STAGES = ["audio", "phonemes", "durations", "f0"]
TONES = {"˥", "˧˥", "˨˩˦", "˥˩", "˩"}
ZERO = TONES | {"ˈ", "ˌ", "|"}

# beyond fake_corpora's lines: a polyphone the front end misreads in context (长大: zhang -> sung chang),
# a pause inside a word (一 SP 起), y/w initials, a glide in the final (x iong), a slur inside a
# multi-syllable line, a vowel-only syllable (er) and a final without a consonant for its initial (y v)
EXTRA_LINES = [
    "2003000001|长大一起|ch ang d a SP y i q i AP|C4 C4 D4 D4 rest E4 E4 F4 F4 rest|"
    "0.3 0.3 0.3 0.3 0.1 0.3 0.3 0.3 0.3 0.2|0.05 0.25 0.05 0.25 0.1 0.05 0.25 0.05 0.25 0.2|0 0 0 0 0 0 0 0 0 0",
    "2003000002|熊猫鱼儿|x iong m ao ao y v er|C4 C4 D4 D4 E4 E4 E4 G4|0.3 0.3 0.3 0.3 0.2 0.3 0.3 0.4|"
    "0.05 0.25 0.05 0.25 0.2 0.05 0.25 0.4|0 0 0 0 1 0 0 0",
]


def phone_times(line: str) -> list[tuple[str, float, float]]:
    f = line.split("|")
    out, t = [], 0.0
    for p, d in zip(f[2].split(), f[5].split()):
        out.append((p, t, t + float(d)))
        t += float(d)
    return out


# ------------------------------------------------------------------------------ Opencpop
def test_opencpop_prepares_every_valid_line_with_front_end_durations(tmp_path):
    lines = OPENCPOP_LINES + EXTRA_LINES
    make_opencpop(tmp_path, lines)
    summary = prepare(RecipeCorpus("opencpop", num_valid=1), tmp_path, stages=STAGES, durations_source="corpus",
                      language="cmn", expected_rates=[44100])
    assert summary["quarantined"] == 0 and summary["utterances"] == len(lines) == 6
    assert (tmp_path / "prepared/quarantine.jsonl").read_text() == ""
    utts = {u.id: u for u in read_manifest(tmp_path / "prepared/manifest.jsonl")}
    from ns2.text import DEFAULT_SYMBOLS

    for line in lines:
        u = utts[line.split("|")[0]]
        assert u.kind == "singing" and u.language == "cmn" and u.frame_rate == FR and u.sample_rate == 16000
        assert set(u.phonemes) <= set(DEFAULT_SYMBOLS.symbols)
        assert len(u.durations) == len(u.phonemes) == len(u.word_index) and sum(u.durations) == u.num_frames
        assert u.durations == times_to_durations(u.phoneme_times, u.num_frames, FR)
        f0 = np.load(u.feature_path("f0", tmp_path / "prepared"))
        assert f0.shape == (u.num_frames,) and np.median(f0[f0 > 0]) == pytest.approx(220, rel=0.02)  # the fake tone
        assert all(d == 0 for p, d in zip(u.phonemes, u.durations) if p in ZERO)  # tones, stress, | take no time
        # one <sil> per pause phone, at the pause's time
        pauses = [(a, b) for p, a, b in phone_times(line) if p in ("SP", "AP")]
        sil = [t for p, t in zip(u.phonemes, u.phoneme_times) if p == "<sil>"]
        assert [x for t in sil for x in t] == pytest.approx([x for t in pauses for x in t])
        # the score indexes the front end's phonemes: a syllable's symbols span its phones' times
        times = phone_times(line)
        for k, n in enumerate(u.score):
            assert 0 <= n["phoneme_start"] < n["phoneme_end"] <= len(u.phonemes)
            assert {"lyric", "pitch", "start", "duration", "word", "rest", "slur"} <= set(n)
            if n["rest"]:
                assert u.phonemes[n["phoneme_start"]:n["phoneme_end"]] == ["<sil>"] and n["pitch"] == 0
            if n["slur"]:
                continue
            end = times[n["corpus_phone_end"] - 1][2]
            for m in u.score[k + 1:]:  # the slurred notes sung on this syllable's vowel
                if not m["slur"]:
                    break
                end = times[m["corpus_phone_end"] - 1][2]
            got = u.phoneme_times[n["phoneme_start"]][0], u.phoneme_times[n["phoneme_end"] - 1][1]
            assert got == pytest.approx((times[n["corpus_phone_start"]][1], end), abs=1e-5), (u.id, n)

    u = utts["2001000001"]  # g an | sh ou | t ing | z ai | AP
    assert u.text == "感受停在" and [n["lyric"] for n in u.score] == ["感", "受", "停", "在", "AP"]
    assert [n["pitch"] for n in u.score] == [63, 62, 60, 69, 0]
    assert u.phonemes == ["k", "ˈ", "a", "˨˩˦", "n", "|", "ʂ", "ˈ", "ou", "˥˩", "|", "tʰ", "ˈ", "i", "˧˥", "ŋ", "|",
                          "ts", "ˈ", "ai", "˥˩", "<sil>"]
    frames = dict(zip(range(len(u.phonemes)), u.durations))
    assert frames[0] == 4 and frames[0] + frames[2] + frames[4] == 20  # g: 0.05 s; g + an: 0.25 s at 80 frames/s
    assert frames[2] > frames[4] > 0  # the vowel carries the note, the coda a bounded share
    assert u.score[0]["phoneme_start"] == 0 and u.score[0]["phoneme_end"] == 5 and u.score[1]["phoneme_start"] == 5

    u = utts["2001000002"]  # SP w o o(slur): the slur continues 我's vowel on D4
    assert u.phonemes == ["<sil>", "w", "ˈ", "o", "˨˩˦"]
    assert [(n["lyric"], n["pitch"], n["slur"], n["phoneme_start"], n["phoneme_end"]) for n in u.score] == [
        ("SP", 0, False, 0, 1), ("我", 60, False, 1, 5), ("-", 62, True, 2, 5)]
    assert u.durations[3] == round(0.6 * FR) - round(0.15 * FR)  # o + its slur: 0.15 .. 0.6 s

    u = utts["2003000001"]  # 长 re-read as sung (ch), the pause inside 一起 before its boundary
    assert u.phonemes[0] == "ʈʂʰ" and [r["char"] for r in u.extra["pinyin_rereads"]] == ["长"]
    assert u.phonemes[8:11] == ["<sil>", "|", "j"] and u.split in ("train", "valid")

    u = utts["2003000002"]  # x iong: ɕ takes the initial, the glide j goes with the final; y v: j for y
    assert u.phonemes[:4] == ["ɕ", "j", "ˈ", "ʊŋ"] and u.durations[0] == 4
    assert [n["lyric"] for n in u.score] == ["熊", "猫", "-", "鱼", "儿"]
    assert utts["2044000001"].split == "test"


def test_opencpop_invalid_lines_are_quarantined_with_their_reason(tmp_path):
    good = OPENCPOP_LINES[0]
    bad = {
        "2005000001": ("2005000001|我|w xx|C4 C4|0.3 0.3|0.1 0.2|0 0", "unknown phone 'xx'"),
        "2005000002": ("2005000002|你|n i|C4|0.3 0.3|0.1 0.2|0 0", "one entry per phone"),
        "2005000003": ("2005000003|我们|w o|C4 C4|0.3 0.3|0.1 0.2|0 0", "2 lyric characters but 1 sung syllables"),
        "2005000004": ("2005000004|我|w SP|C4 rest|0.3 0.3|0.1 0.2|0 0", "initial 'w' at position 0 is followed by 'SP'"),
        "2005000005": ("2005000005|我|w o|C4 rest|0.3 0.3|0.1 0.2|0 0", "its note is 'rest'"),
        "2005000006": ("2005000006|我|SP o|rest C4|0.3 0.3|0.1 0.2|0 1", "continues no sung syllable"),
        "2005000007": ("2005000007|丆|a|C4|0.3|0.3|0", "text front end: espeak produced phonemes not in symbol table"),
        "2005000008": ("2005000008|我|w o|C4 C4|0.3 0.3|0.1 0.2|0 0", "phone durations sum to 0.300 s but the audio lasts 1.000 s"),
    }
    make_opencpop(tmp_path, [good] + [ln for ln, _ in bad.values()])
    write_audio(tmp_path / "Opencpop/segments/wavs/2005000008.wav", 44100, 1.0)
    summary = prepare(RecipeCorpus("opencpop", num_valid=0), tmp_path, stages=STAGES, language="cmn",
                      expected_rates=[44100])
    assert summary["utterances"] == 1 and summary["quarantined"] == len(bad)
    assert summary["quarantine_by_stage"] == {"recipe": len(bad)}
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "prepared/quarantine.jsonl").read_text().splitlines())}
    assert set(records) == set(bad)
    for uid, (_, reason) in bad.items():
        assert reason in records[uid]["reason"] and "\n" not in records[uid]["reason"], (uid, records[uid])
        assert records[uid]["audio"] == f"Opencpop/segments/wavs/{uid}.wav"
    (u,) = read_manifest(tmp_path / "prepared/manifest.jsonl")
    assert u.id == "2001000001" and sum(u.durations) == u.num_frames


def test_pinyin_spellings():
    from ns2.data.recipes.opencpop import pinyin_of, read_pinyin

    cases = {("y", "van"): "yuan", ("j", "v"): "ju", ("l", "v"): "lv", ("y", "i"): "yi", ("y", "iu"): "you",
             ("y", "ia"): "ya", ("w", "ui"): "wei", ("w", "o"): "wo", ("w", "uo"): "wo", ("w", "u"): "wu",
             (None, "iu"): "you", (None, "un"): "wen", (None, "v"): "yu", (None, "er"): "er", ("zh", "i"): "zhi",
             ("x", "iong"): "xiong", ("q", "ve"): "que"}
    assert {k: pinyin_of(*k) for k in cases} == cases
    assert read_pinyin("chang2") == ("ʈʂʰ", "ˈ", "ɑ", "˧˥", "ŋ") and read_pinyin("qqq9") is None


# ------------------------------------------------------------------------------ singing_folder
def _score(path, notes, tempo=120, fmt="musicxml"):
    """notes: (pitch or None, quarter lengths, lyric or None, syllabic) -> a MusicXML / MIDI file."""
    music21 = pytest.importorskip("music21")
    s = music21.stream.Stream()
    s.append(music21.tempo.MetronomeMark(number=tempo))
    for pitch, ql, lyric, syllabic in notes:
        if pitch is None:
            s.append(music21.note.Rest(quarterLength=ql))
        elif isinstance(pitch, tuple):
            s.append(music21.chord.Chord(list(pitch), quarterLength=ql))
        else:
            n = music21.note.Note(pitch, quarterLength=ql)
            if lyric:
                n.lyrics = [music21.note.Lyric(text=lyric, syllabic=syllabic)]
            s.append(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    s.write(fmt, fp=str(path))
    return path


def _sing(path, notes, tempo=120, stretch=1.0, sr=22050):
    """Sine tones at the notes (silence in rests), the score's timing times ``stretch``."""
    from ns2.audio.f0 import midi_to_hz

    spq = 60.0 / tempo * stretch
    out = []
    for pitch, ql, *_ in notes:
        n = int(round(ql * spq * sr))
        t = np.arange(n) / sr
        if pitch is None:
            out.append(np.zeros(n))
        else:
            import music21

            hz = midi_to_hz(music21.pitch.Pitch(pitch if isinstance(pitch, str) else pitch[0]).ps)
            out.append(0.3 * np.sin(2 * np.pi * hz * t) * np.minimum(1, np.minimum(t, t[::-1]) / 0.01))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.concatenate(out).astype(np.float32), sr)


HELLO = [("C4", 1, "hel", "begin"), ("E4", 1, "lo", "end"), (None, 1, None, None), ("G4", 1, "world", "single"),
         ("A4", 1, None, None)]  # the last note: a melisma on "world"
TWINKLE = [("C4", 1, None, None), ("C4", 1, None, None), ("G4", 1, None, None), ("G4", 1, None, None),
           ("A4", 2, None, None)]


@pytest.fixture()
def songs(tmp_path):
    pytest.importorskip("music21")
    d = tmp_path / "songs"
    _score(d / "a.musicxml", HELLO)
    _sing(d / "a.wav", HELLO, stretch=1.06)  # sung 6 % slower than written: stretched
    _score(d / "alice/b.mid", TWINKLE, fmt="midi")
    (d / "alice/b.txt").write_text("twin-kle twin-kle\nstar\n")
    _sing(d / "alice/b.wav", TWINKLE)
    _score(d / "broken.musicxml", [("C4", 1, "la", "single"), (("E4", "G4"), 1, None, None)])
    _sing(d / "broken.wav", [("C4", 2)])
    _score(d / "long.musicxml", HELLO)
    _sing(d / "long.wav", HELLO, stretch=1.5)  # 7.5 s of audio for a 5 s score
    _sing(d / "lonely.wav", [("C4", 2)])  # no score at all
    return d


def test_singing_folder_prepares_scores_and_quarantines_the_rest(songs, compose):
    from ns2.cli.prep import run_prep

    cfg = compose("prep", ["data=singing_folder", f"data.corpus.root={songs}"])
    summary = run_prep(cfg)
    assert summary["utterances"] == 2 and summary["singing"] == 2 and summary["speakers"] == 2
    assert summary["quarantine_reasons"] == {"bad score": 1, "score length mismatch": 1, "no score": 1}
    prepared = songs.parent / "data/singing_folder/prepared"
    reasons = {r["id"]: r["reason"] for r in map(json.loads, (prepared / "quarantine.jsonl").read_text().splitlines())}
    assert "chord of 2 notes" in reasons["broken"] and "broken.musicxml" in reasons["broken"]
    assert reasons["long"].startswith("score length mismatch: long.musicxml lasts 2.50 s but long.wav 3.75 s")
    assert "tolerance of 15%" in reasons["long"] and "no score: put lonely.musicxml" in reasons["lonely"]
    assert not (songs / "raw.jsonl").exists() and not list(songs.rglob("*.npy"))  # nothing written beside the songs

    utts = {u.id: u for u in read_manifest(prepared / "manifest.jsonl")}
    a, b = utts["a"], utts["alice_b"]
    assert (a.speaker, b.speaker) == ("singer", "alice") and {a.split, b.split} == {"train", "valid"}
    assert a.text == "hello world" and b.text == "twinkle twinkle star"
    for u, notes, stretch in ((a, HELLO, 1.06), (b, TWINKLE, 1.0)):
        assert u.kind == "singing" and u.language == "en-us" and sum(u.durations) == u.num_frames
        assert u.durations == times_to_durations(u.phoneme_times, u.num_frames, FR)
        assert u.extra["stretch"] == pytest.approx(stretch, abs=0.01)
        assert u.extra["score_seconds"] == pytest.approx(sum(n[1] for n in notes) * 0.5)
        assert [n["start"] for n in u.score] == pytest.approx([0.5 * stretch * k for k in (0, 1, 2, 3, 4)], abs=0.02)
        # the score's F0 and the F0 measured in the recording agree on the sung frames
        score_f0 = np.load(u.feature_path("score_f0", prepared))
        f0 = np.load(u.feature_path("f0", prepared))
        assert score_f0.shape == f0.shape == (u.num_frames,)
        both = (score_f0 > 0) & (f0 > 0)
        assert both.mean() > 0.6
        assert np.median(np.abs(1200 * np.log2(f0[both] / score_f0[both]))) < 20  # cents
        for n in u.score:
            seg = u.phonemes[n["phoneme_start"]:n["phoneme_end"]]
            assert seg == ["<sil>"] if n["rest"] else seg and "<sil>" not in seg
            first = sum(u.durations[:n["phoneme_start"]])
            assert first == pytest.approx(n["start"] * FR, abs=1.01) or n["slur"]
    assert [(n["lyric"], n["pitch"], n["rest"], n["slur"]) for n in a.score] == [
        ("hel-", 60, False, False), ("lo", 64, False, False), ("<sil>", 0, True, False), ("world", 67, False, False),
        ("-", 69, False, True)]
    # the melisma holds "world"'s vowel; its closing consonants end the last note
    assert a.score[3]["word"] == "world" and a.phonemes[a.score[4]["phoneme_start"]] == "ɜː"
    assert a.score[4]["phoneme_start"] == a.score[3]["phoneme_end"] - 1 and a.score[4]["phoneme_end"] == len(a.phonemes)
    assert b.extra["closing_rests_dropped_s"] == pytest.approx(1.0)  # music21 pads the MIDI's last measure
    assert [n["lyric"] for n in b.score] == ["twin-", "kle", "twin-", "kle", "star"]


def test_singing_folder_options_and_folders(tmp_path):
    from ns2.data.recipes.singing_folder import SingingFolderCorpus, note_ranges

    with pytest.raises(RecipeError, match="does not exist"):
        SingingFolderCorpus(tmp_path / "nope")
    with pytest.raises(RecipeError, match="unknown options"):
        SingingFolderCorpus(tmp_path, tolerence=0.1)
    recipe = RECIPES["singing_folder"]
    assert recipe.check_subset(tmp_path, "all") == f"no .wav/.flac recordings under {tmp_path}"
    (tmp_path / "x.wav").write_bytes(b"")
    with pytest.raises(RecipeError, match="tolerance=2"):
        recipe.build_manifest(tmp_path, tmp_path / "out/raw.jsonl", tolerance=2)
    # zero-frame symbols go with the note they sit in; a note with no frames gets an empty range
    assert note_ranges([0, 3, 0, 2, 4], [(0, 3), (3, 3), (3, 9)]) == [(0, 2), (2, 2), (2, 5)]
