import json

import pytest

from ns2.data.manifest import ManifestError, Utterance, read_manifest, summarize, write_manifest


def utt(**kw):
    base = dict(id="a", audio="a.wav", sample_rate=16000, duration=1.0, speaker="s1", text="hello world")
    base.update(kw)
    return Utterance(**base)


def test_round_trip_keeps_every_field(tmp_path):
    u = utt(
        phonemes=["h", "ə", "|", "l"], word_index=[0, 0, -1, 1], phoneme_times=[[0, 0.1], [0.1, 0.2], [0.2, 0.2], [0.2, 1.0]],
        durations=[8, 8, 0, 64], frame_rate=80.0, num_frames=80, kind="singing", split="test",
        score=[{"lyric": "he", "pitch": 60.0, "start": 0.0, "duration": 0.2, "phoneme_start": 0, "phoneme_end": 2}],
        features={"f0": "f0/a.npy"}, extra={"chapter": "1"},
    )
    path = tmp_path / "m.jsonl"
    write_manifest(path, [u, utt(id="b")])
    back = read_manifest(path)
    assert back[0] == u and back[1].id == "b"
    assert back[0].feature_path("f0", tmp_path) == tmp_path / "f0/a.npy"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(kind="rap"), "kind"),
        (dict(split="dev"), "split"),
        (dict(sample_rate=0), "sample_rate"),
        (dict(duration=float("nan")), "duration"),
        (dict(durations=[1, 2]), "phonemes"),
        (dict(phonemes=["a", "b"], durations=[1, 2], num_frames=4, frame_rate=80.0), "sum to 3"),
        (dict(phonemes=["a"], word_index=[0, 1]), "one entry per phoneme"),
        (dict(phonemes=["a"], score=[{"lyric": "a", "pitch": 60, "start": 0, "duration": 0.1, "phoneme_start": 0, "phoneme_end": 2}]), "outside"),
    ],
)
def test_invalid_records_name_the_field(change, message):
    with pytest.raises(ManifestError, match=message):
        utt(**change).validate()


def test_read_errors_name_file_and_line(tmp_path):
    path = tmp_path / "m.jsonl"
    good = json.dumps(utt().to_dict())
    path.write_text(good + "\n{not json\n")
    with pytest.raises(ManifestError, match=r"m.jsonl:2: not valid JSON"):
        read_manifest(path)
    path.write_text(good + "\n" + json.dumps({**utt().to_dict(), "colour": 1}) + "\n")
    with pytest.raises(ManifestError, match=r":2: .*unknown fields \['colour'\]"):
        read_manifest(path)
    path.write_text(good + "\n" + good + "\n")
    with pytest.raises(ManifestError, match="duplicate"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "missing.jsonl")


def test_write_is_atomic_on_invalid_record(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, [utt()])
    before = path.read_text()
    with pytest.raises(ManifestError):
        write_manifest(path, [utt(id="x"), utt(id="y", kind="bad")])
    assert path.read_text() == before
    assert list(tmp_path.iterdir()) == [path]


def test_summarize_counts():
    us = [utt(id="a", duration=1800), utt(id="b", speaker="s2", duration=1800, kind="singing", split="test")]
    s = summarize(us)
    assert s["hours"] == 1.0 and s["speakers"] == 2 and s["singing"] == 1
    assert s["splits"]["test"]["utterances"] == 1
