"""Corpus recipes on fake trees in the real layouts: verify, build_manifest, quarantine, download."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fake_corpora import (OPENCPOP_TEST, corrupt, make_librispeech, make_libritts, make_mls, make_opencpop,
                          make_vctk)

from ns2.data.manifest import read_manifest
from ns2.data.recipes import RECIPES, RecipeCorpus, RecipeError, build_score, note_to_midi, parse_transcription
from ns2.data.recipes.base import held_out_speakers

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def check_manifest(root: Path, expected: dict[str, dict], utts) -> None:
    """Every expected id is present with its fields, and the written manifest reads back equal."""
    assert sorted(u.id for u in utts) == sorted(expected)
    for u in utts:
        e = expected[u.id]
        for key in ("speaker", "text", "split", "sample_rate"):
            if key in e:
                assert getattr(u, key) == e[key], (u.id, key)
        assert u.duration == pytest.approx(e["duration"], abs=1e-6)
        assert not Path(u.audio).is_absolute() and u.audio_path(root).exists()
    assert [u.to_dict() for u in read_manifest(root / "raw.jsonl")] == [u.to_dict() for u in utts]


# ------------------------------------------------------------------------------ speech corpora
@pytest.mark.parametrize("name,dirname", [("libritts", "LibriTTS"), ("libritts_r", "LibriTTS_R")])
def test_libritts_layouts(tmp_path, name, dirname):
    expected = make_libritts(tmp_path, dirname)
    recipe = RECIPES[name]
    report = recipe.verify(tmp_path)
    assert set(report["subsets"]) == {"train-clean-100", "dev-clean", "test-clean"}
    assert report["subsets"]["dev-clean"]["files"] == 4
    utts = recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl")
    check_manifest(tmp_path, expected, utts)
    u = next(u for u in utts if u.split == "valid")
    assert u.language == "en-us" and u.kind == "speech" and u.extra["subset"] == "dev-clean"
    assert "No." in u.extra["text_original"] and u.extra["num_samples"] == round(u.duration * 24000)
    assert utts.quarantined == [] and (tmp_path / "quarantine.jsonl").read_text() == ""
    only = recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl", subsets=["test-clean"])
    assert {u.split for u in only} == {"test"} and len(only) == 4


def test_librispeech(tmp_path):
    expected = make_librispeech(tmp_path)
    recipe = RECIPES["librispeech"]
    report = recipe.verify(tmp_path, ["test-clean"])
    assert report["subsets"]["test-clean"] == {"files": 6, "expected": 2620}
    assert report["warnings"] and "2620" in report["warnings"][0]
    with pytest.raises(RecipeError, match="2620"):
        recipe.verify(tmp_path, ["test-clean"], strict=True)
    utts = recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl", num_workers=2)
    check_manifest(tmp_path, expected, utts)
    assert {u.split for u in utts} == {"test", "valid"}


def test_librispeech_transcript_and_audio_mismatches_are_quarantined(tmp_path):
    expected = make_librispeech(tmp_path, subsets=("test-clean",))
    chapter = tmp_path / "LibriSpeech/test-clean/1000/7000"
    (chapter / "1000-7000-0001.flac").unlink()
    trans = chapter / "1000-7000.trans.txt"
    trans.write_text(trans.read_text().replace("1000-7000-0002 HE SAID 2 TIMES\n", ""))
    utts = RECIPES["librispeech"].build_manifest(tmp_path, tmp_path / "raw.jsonl")
    assert sorted(u.id for u in utts) == sorted(set(expected) - {"1000-7000-0001", "1000-7000-0002"})
    reasons = {q.id: q.reason for q in utts.quarantined}
    assert "missing" in reasons["1000-7000-0001"] and "no line" in reasons["1000-7000-0002"]


def test_vctk_speakers_held_out_deterministically(tmp_path):
    expected = make_vctk(tmp_path)
    recipe = RECIPES["vctk"]
    recipe.verify(tmp_path)
    utts = recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl", test_speakers=2, valid_speakers=1, seed=3)
    for u in utts:
        expected[u.id]["split"] = u.split
    check_manifest(tmp_path, expected, utts)
    assert all(u.audio.endswith("_mic1.flac") for u in utts) and "p225_001" in expected
    splits = {u.speaker: u.split for u in utts}
    assert sorted(splits.values()).count("test") == 2 and list(splits.values()).count("valid") == 1
    again = recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl", test_speakers=2, valid_speakers=1, seed=3)
    assert [u.split for u in again] == [u.split for u in utts]
    # p315 has no transcripts in VCTK 0.92: quarantined, not fatal
    assert {q.id for q in utts.quarantined} == {"p315_001", "p315_002"}
    explicit = recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl", test_speakers=["p226"], valid_speakers=[], mic="mic2")
    assert {u.speaker for u in explicit if u.split == "test"} == {"p226"} and explicit[0].audio.endswith("_mic2.flac")
    with pytest.raises(RecipeError, match="p999"):
        recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl", test_speakers=["p999"])


def test_held_out_speakers_is_seeded():
    spk = [f"p{i}" for i in range(30)]
    a, b = held_out_speakers(spk, 0, 3, 5), held_out_speakers(reversed(spk), 0, 3, 5)
    assert a == b and list(a.values()).count("test") == 5 and list(a.values()).count("valid") == 3
    assert held_out_speakers(spk, 1, 3, 5) != a


@pytest.mark.parametrize("opus", [False, True])
def test_mls_english(tmp_path, opus):
    expected = make_mls(tmp_path, opus=opus)
    recipe = RECIPES["mls_english_opus" if opus else "mls_english"]
    recipe.verify(tmp_path, ["train", "dev", "test"])
    utts = recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl", subsets=["train", "dev", "test"])
    check_manifest(tmp_path, expected, utts)
    assert {u.split for u in utts} == {"train", "valid", "test"}
    assert utts[0].extra["book"] and utts[0].extra["subset"]


# ------------------------------------------------------------------------------ failures
@pytest.mark.parametrize("name,maker,victim", [
    ("libritts", make_libritts, "*/*/*/*/*.wav"),
    ("librispeech", make_librispeech, "*/*/*/*/*.flac"),
    ("vctk", make_vctk, "*/wav48_silence_trimmed/p226/*_mic1.flac"),
    ("mls_english", make_mls, "*/dev/audio/*/*/*.flac"),
    ("opencpop", make_opencpop, "*/segments/wavs/2002000001.wav"),
])
def test_corrupt_audio_is_quarantined_and_the_rest_kept(tmp_path, name, maker, victim):
    expected = maker(tmp_path)
    bad = sorted(tmp_path.glob(victim))[0]
    corrupt(bad)
    subsets = ["train", "dev", "test"] if name == "mls_english" else None
    utts = RECIPES[name].build_manifest(tmp_path, tmp_path / "raw.jsonl", subsets=subsets)
    assert len(utts) == len([k for k in expected]) - 1
    (q,) = [q for q in utts.quarantined if "unreadable" in q.reason]
    assert q.audio == str(bad.relative_to(tmp_path)) and q.stage == "recipe"
    lines = [json.loads(x) for x in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
    assert {"id": q.id, "audio": q.audio, "stage": "recipe", "reason": q.reason} in lines
    assert q.id not in {u.id for u in read_manifest(tmp_path / "raw.jsonl")}


@pytest.mark.parametrize("name", ["libritts", "libritts_r", "librispeech", "vctk", "mls_english", "opencpop"])
def test_missing_tree_gives_one_clear_line(tmp_path, name):
    recipe = RECIPES[name]
    for call in (lambda: recipe.verify(tmp_path / "nothing"), lambda: recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl")):
        with pytest.raises(RecipeError) as err:
            call()
        msg = str(err.value)
        assert "\n" not in msg and "not found under" in msg
        assert ("wenet.org.cn" in msg) if name == "opencpop" else ("data.corpus.download=true" in msg and "https://" in msg)


def test_missing_subset_names_the_folder(tmp_path):
    make_libritts(tmp_path, subsets=("dev-clean",))
    with pytest.raises(RecipeError, match=r"missing folder .*test-clean.*resources/60/test-clean\.tar\.gz"):
        RECIPES["libritts"].verify(tmp_path, ["dev-clean", "test-clean"])
    with pytest.raises(RecipeError, match="unknown subsets"):
        RECIPES["libritts"].verify(tmp_path, ["train-clean-999"])
    make_opencpop(tmp_path)
    (tmp_path / "Opencpop/segments/transcriptions.txt").unlink()
    (tmp_path / "Opencpop/segments/train.txt").unlink()
    (tmp_path / "Opencpop/segments/test.txt").unlink()
    with pytest.raises(RecipeError, match="transcriptions.txt"):
        RECIPES["opencpop"].verify(tmp_path)


# ------------------------------------------------------------------------------ download
@pytest.mark.parametrize("name,url", [
    ("libritts", "https://www.openslr.org/resources/60/test-clean.tar.gz"),
    ("libritts_r", "https://www.openslr.org/resources/141/test_clean.tar.gz"),
    ("librispeech", "https://www.openslr.org/resources/12/test-clean.tar.gz"),
    ("vctk", "https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip"),
    ("mls_english", "https://dl.fbaipublicfiles.com/mls/mls_english.tar.gz"),
])
def test_download_offline_is_one_clear_line(tmp_path, monkeypatch, name, url):
    def offline(*a, **k):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    subsets = None if name == "vctk" else ["test"] if name == "mls_english" else ["test-clean"]
    with pytest.raises(RecipeError) as err:
        RECIPES[name].download(tmp_path, subsets)
    msg = str(err.value)
    assert "\n" not in msg and url in msg and "by hand" in msg and str(tmp_path / "downloads") in msg
    assert msg.startswith(f"cannot download {url} (") and "name resolution" in msg
    assert not list((tmp_path / "downloads").glob("*.gz")) and not list((tmp_path / "downloads").glob("*.zip"))


def test_opencpop_download_explains_the_manual_request(tmp_path):
    with pytest.raises(RecipeError) as err:
        RECIPES["opencpop"].download(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "wenet.org.cn/opencpop" in msg and str(tmp_path / "Opencpop") in msg


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, status: int):
        super().__init__(data)
        self.status, self.headers = status, {"Content-Length": str(len(data))}

    def getcode(self):
        return self.status


def fake_server(blob: bytes, calls: list):
    def urlopen(req, timeout=None):
        rng = req.get_header("Range")
        calls.append((req.full_url, rng))
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            return FakeResponse(blob[start:], 206)
        return FakeResponse(blob, 200)

    return urlopen


def tarball(src: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src / "LibriSpeech", arcname="LibriSpeech")
    return buf.getvalue()


def test_download_resumes_checks_md5_and_extracts(tmp_path, monkeypatch):
    src, root = tmp_path / "src", tmp_path / "corpus"
    expected = make_librispeech(src, subsets=("test-clean",))
    blob = tarball(src)
    recipe = RECIPES["librispeech"]
    monkeypatch.setitem(recipe.CHECKSUMS, "test-clean", ("md5:" + hashlib.md5(blob).hexdigest(),))
    calls: list = []
    monkeypatch.setattr(urllib.request, "urlopen", fake_server(blob, calls))
    part = root / "downloads" / "test-clean.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(blob[:1000])  # an interrupted earlier download
    tree = recipe.download(root, ["test-clean"])
    assert calls == [("https://www.openslr.org/resources/12/test-clean.tar.gz", "bytes=1000-")]
    assert tree == root / "LibriSpeech" and not part.exists()
    assert (root / "downloads" / "test-clean.tar.gz").read_bytes() == blob
    assert recipe.verify(root, ["test-clean"])["archives"] == {"test-clean.tar.gz": "ok"}
    recipe.download(root, ["test-clean"])  # already unpacked: nothing fetched again
    assert len(calls) == 1
    utts = recipe.build_manifest(root, root / "raw.jsonl")
    check_manifest(root, expected, utts)


def test_download_with_a_wrong_checksum_fails_clearly(tmp_path, monkeypatch):
    src = tmp_path / "src"
    make_librispeech(src, subsets=("test-clean",))
    blob = tarball(src)
    monkeypatch.setattr(urllib.request, "urlopen", fake_server(blob, []))
    with pytest.raises(RecipeError, match=r"corrupt or incomplete: md5 \w+ does not match the published md5:32fa31d2"):
        RECIPES["librispeech"].download(tmp_path / "c", ["test-clean"])
    assert not (tmp_path / "c" / "LibriSpeech").exists()


def test_a_server_that_ignores_range_restarts_cleanly(tmp_path, monkeypatch):
    from ns2.data.recipes.base import fetch

    blob = bytes(range(256)) * 50
    part = tmp_path / "x.bin.part"
    part.write_bytes(b"junk")

    def no_range(req, timeout=None):
        return FakeResponse(blob, 200)

    monkeypatch.setattr(urllib.request, "urlopen", no_range)
    assert fetch("https://example.org/x.bin", tmp_path / "x.bin").read_bytes() == blob


def test_vctk_zip_download_and_tree_locations(tmp_path, monkeypatch):
    import zipfile

    src = tmp_path / "src"
    expected = make_vctk(src, speakers=tuple(f"p{i}" for i in range(225, 238)), textless=None)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # the real zip has no top folder
        for f in sorted((src / "VCTK-Corpus-0.92").rglob("*")):
            zf.write(f, f.relative_to(src / "VCTK-Corpus-0.92"))
    blob = buf.getvalue()
    recipe = RECIPES["vctk"]
    monkeypatch.setattr(recipe, "CHECKSUMS", ("md5:" + hashlib.md5(blob).hexdigest(),))
    monkeypatch.setattr(urllib.request, "urlopen", fake_server(blob, []))
    root = tmp_path / "vctk"
    assert recipe.download(root) == root / "VCTK-Corpus-0.92"
    assert sorted(u.id for u in recipe.build_manifest(root)) == sorted(expected)
    # a tree placed by hand one folder deeper, or directly under root, is found too
    nested = tmp_path / "nested" / "VCTK-Corpus-0.92" / "VCTK-Corpus-0.92"
    nested.parent.mkdir(parents=True)
    (src / "VCTK-Corpus-0.92").rename(nested)
    assert recipe.find_tree(tmp_path / "nested") == nested
    flat = tmp_path / "flat"
    make_libritts(flat, dirname="", subsets=("dev-clean",))
    assert RECIPES["libritts"].find_tree(flat) == flat and len(RECIPES["libritts"].build_manifest(flat)) == 4


# ------------------------------------------------------------------------------ Opencpop score
def test_note_names_to_midi():
    assert note_to_midi("A4") == 69 and note_to_midi("C4") == 60 and note_to_midi("C-1") == 0
    assert note_to_midi("D#4/Eb4") == 63 == note_to_midi("Eb4") and note_to_midi("B3") == 59
    assert note_to_midi("rest") is None and note_to_midi("A#5/Bb5") == 82
    with pytest.raises(ValueError, match="note name"):
        note_to_midi("H2")


def test_opencpop_score_groups_syllables_slurs_and_rests():
    item = parse_transcription("2001000002|我|SP w o o|rest C4 C4 D4|0.1 0.3 0.3 0.2|0.1 0.05 0.25 0.2|0 0 0 1")
    notes = build_score(item)
    assert [(n["lyric"], n["pitch"], n["phoneme_start"], n["phoneme_end"], n["rest"], n["slur"]) for n in notes] == [
        ("SP", 0, 0, 1, True, False), ("我", 60, 1, 3, False, False), ("-", 62, 3, 4, False, True)]
    assert [n["start"] for n in notes] == pytest.approx([0.0, 0.1, 0.4])
    assert [n["duration"] for n in notes] == pytest.approx([0.1, 0.3, 0.2])
    # two vowel-only syllables on the same pitch stay two notes
    same = build_score(parse_transcription("x|啊啊|a a|E4 E4|0.2 0.2|0.2 0.2|0 0"))
    assert [(n["lyric"], n["pitch"], n["phoneme_start"]) for n in same] == [("啊", 64, 0), ("啊", 64, 1)]
    # lyric falls back to pinyin when the characters do not line up with the syllables
    odd = build_score(parse_transcription("x|我们你|w o|C4 C4|0.3 0.3|0.1 0.2|0 0"))
    assert odd[0]["lyric"] == "wo"
    with pytest.raises(ValueError, match="one entry per phone"):
        parse_transcription("x|我|w o|C4|0.3 0.3|0.1 0.2|0 0")


def test_opencpop_manifest(tmp_path):
    expected = make_opencpop(tmp_path)
    recipe = RECIPES["opencpop"]
    report = recipe.verify(tmp_path)
    assert report["subsets"]["all"]["files"] == 4 and report["warnings"]  # 4 of the real 3756
    utts = recipe.build_manifest(tmp_path, tmp_path / "raw.jsonl", num_valid=1)
    for u in utts:
        expected[u.id].update(speaker="opencpop", split="test" if u.id in OPENCPOP_TEST else u.split)
    check_manifest(tmp_path, expected, utts)
    splits = {u.id: u.split for u in utts}
    assert splits == {"2001000001": "train", "2001000002": "train", "2002000001": "valid", "2044000001": "test"}
    u = utts[0]
    assert u.kind == "singing" and u.language == "cmn" and u.text == "感受停在"
    assert u.phonemes[:5] == ["k", "ˈ", "a", "˨˩˦", "n"] and len(u.phoneme_times) == len(u.phonemes)  # the front end's
    assert u.extra["corpus_phones"] == expected[u.id]["phones"] and u.extra["song"] == "2001"
    assert [n["lyric"] for n in u.score] == ["感", "受", "停", "在", "AP"]
    assert [n["pitch"] for n in u.score] == [63, 62, 60, 69, 0]
    assert sum(u.extra["corpus_phone_durations"]) == pytest.approx(u.duration, abs=1e-3)
    # the note ranges index the front end's phonemes (and, as corpus_phone_*, the corpus's own phones)
    assert [(n["phoneme_start"], n["phoneme_end"]) for n in u.score] == [(0, 5), (5, 10), (10, 16), (16, 21), (21, 22)]
    assert [(n["corpus_phone_start"], n["corpus_phone_end"]) for n in u.score] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
    assert read_manifest(tmp_path / "raw.jsonl")[0].score == u.score


def test_opencpop_bad_line_is_quarantined(tmp_path):
    lines = ["2001000001|我|w o|C4 C4|0.3 0.3|0.1 0.2|0 0", "2001000002|你|n i|C4|0.3 0.3|0.1 0.2|0 0"]
    make_opencpop(tmp_path, lines[:1])
    (tmp_path / "Opencpop/segments/transcriptions.txt").write_text("\n".join(lines) + "\n")
    utts = RECIPES["opencpop"].build_manifest(tmp_path, tmp_path / "raw.jsonl")
    assert [u.id for u in utts] == ["2001000001"]
    assert utts.quarantined[0].id == "2001000002" and "one entry per phone" in utts.quarantined[0].reason


# ------------------------------------------------------------------------------ RecipeCorpus
def test_recipe_corpus_builds_raw_manifest(tmp_path):
    expected = make_libritts(tmp_path)
    corpus = RecipeCorpus("libritts", subsets=["dev-clean", "test-clean"])
    out = corpus.build(tmp_path, num_workers=2)
    assert out == tmp_path / "raw.jsonl"
    utts = read_manifest(out)
    assert {u.id for u in utts} == {k for k, v in expected.items() if v["subset"] != "train-clean-100"}
    assert RecipeCorpus("libritts", root=tmp_path).build() == out and len(read_manifest(out)) == len(expected)


def test_recipe_corpus_errors(tmp_path):
    with pytest.raises(RecipeError) as err:
        RecipeCorpus("librispeech", subsets=["test-clean"]).build(tmp_path)
    assert "\n" not in str(err.value) and "data.corpus.download=true" in str(err.value)
    with pytest.raises(ValueError, match="unknown corpus recipe 'timit'"):
        RecipeCorpus("timit")
    with pytest.raises(RecipeError, match="unknown options"):
        RecipeCorpus("libritts", test_speakers=3)
    with pytest.raises(ValueError, match="needs a root"):
        RecipeCorpus("vctk").build()


def test_recipe_corpus_options_reach_the_recipe(tmp_path):
    make_vctk(tmp_path)
    out = RecipeCorpus("vctk", subsets=None, test_speakers=["p225", "p230"], valid_speakers=0).build(tmp_path)
    assert {u.speaker for u in read_manifest(out) if u.split == "test"} == {"p225", "p230"}


def test_data_configs_instantiate_recipe_corpora():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    found = 0
    for path in sorted((CONFIGS / "data").glob("*.yaml")):
        node = OmegaConf.load(path).get("corpus")
        if node is None or node.get("_target_") != "ns2.data.recipes.RecipeCorpus":
            continue
        corpus = instantiate(node)
        assert isinstance(corpus, RecipeCorpus) and corpus.download is False
        corpus.recipe.resolve_subsets(corpus.subsets)  # names its corpus actually has
        found += 1
    assert found >= 1
