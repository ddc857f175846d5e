"""The test-list schema: round trip, validation, TSV and Seed-TTS-eval meta.lst import, prompt crops."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ns2.eval.protocol import (ProtocolError, ProtocolItem, info_path, load_item_audio, read_protocol,
                               read_seedtts_meta, write_protocol)


def item(**kw) -> ProtocolItem:
    base = dict(id="a_1", text="Hello there.", prompt_wav="audio/a_2.wav", speaker="a")
    return ProtocolItem(**{**base, **kw})


def test_round_trip_and_sidecar(tmp_path):
    items = [item(), item(id="a_3", prompt_start=0.5, prompt_end=3.5, gt_wav="audio/a_3.wav", prompt_id="a_2",
                      extra={"prompt_seconds": 3.0})]
    path = write_protocol(tmp_path / "l.jsonl", items, {"builder": "test", "seed": 1})
    assert read_protocol(path) == items
    info = json.loads(info_path(path).read_text())
    assert info["items"] == 2 and info["speakers"] == 1 and info["seed"] == 1
    assert items[1].reference_id == "a_3" and items[0].reference_id is None


@pytest.mark.parametrize("kw, match", [
    (dict(id=""), "item id"), (dict(id="a/b"), "item id"), (dict(text=" "), "'text'"),
    (dict(prompt_start=2.0, prompt_end=1.0), "prompt_end"), (dict(prompt_start=-1.0), "prompt_start"),
    (dict(mode="other"), "mode"),
])
def test_invalid_items_name_the_field(kw, match):
    with pytest.raises(ProtocolError, match=match):
        item(**kw).validate()


def test_read_errors_name_file_and_line(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text(json.dumps(item().to_dict()) + "\n" + json.dumps({**item().to_dict(), "bogus": 1}) + "\n")
    with pytest.raises(ProtocolError, match=r"l.jsonl:2: .*unknown fields \['bogus'\]"):
        read_protocol(p)
    p.write_text(json.dumps(item().to_dict()) + "\n" + json.dumps(item().to_dict()) + "\n")
    with pytest.raises(ProtocolError, match="duplicate item id 'a_1'"):
        read_protocol(p)
    with pytest.raises(ProtocolError, match="not found"):
        read_protocol(tmp_path / "missing.jsonl")


def test_tsv(tmp_path):
    p = tmp_path / "l.tsv"
    p.write_text("id\ttext\tprompt_wav\tspeaker\tprompt_start\tprompt_end\tgt_wav\n"
                 "x_1\tHi.\tp.wav\tx\t0.5\t3.5\t\n", encoding="utf-8")
    (it,) = read_protocol(p)
    assert it.prompt_start == 0.5 and it.prompt_end == 3.5 and it.gt_wav is None and it.mode == "cross_sentence"


def test_seedtts_meta(tmp_path):
    p = tmp_path / "meta.lst"
    p.write_text("u1|Prompt one.|prompt-wavs/p1.wav|Target one.\n"
                 "u2|Prompt two.|prompt-wavs/p2.wav|Target two.|wavs/u2.wav\n", encoding="utf-8")
    a, b = read_seedtts_meta(p)
    assert (a.id, a.prompt_text, a.prompt_wav, a.text, a.gt_wav, a.speaker) == (
        "u1", "Prompt one.", "prompt-wavs/p1.wav", "Target one.", None, "p1")
    assert b.gt_wav == "wavs/u2.wav" and b.reference_id == "u2"
    assert read_protocol(p) == [a, b]
    p.write_text("u1|only|three\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match=r"meta.lst:1: expected 4 or 5"):
        read_seedtts_meta(p)


def test_prompt_crop_and_gt(tmp_path):
    sr = 16000
    x = np.arange(4 * sr, dtype=np.float32) / (4 * sr)
    sf.write(tmp_path / "p.wav", np.stack([x, x], 1), sr, subtype="FLOAT")  # stereo: averaged
    it = item(prompt_wav="p.wav", prompt_start=1.0, prompt_end=2.5, gt_wav=str(tmp_path / "p.wav"))
    wav, got = load_item_audio(it, "prompt", tmp_path)
    assert got == sr and wav.shape == (int(1.5 * sr),) and wav[0] == pytest.approx(x[sr])
    gt, _ = load_item_audio(it, "gt", None)  # absolute path
    assert gt.shape == (4 * sr,)
    with pytest.raises(ProtocolError, match="outside"):
        load_item_audio(item(prompt_wav="p.wav", prompt_start=5.0), "prompt", tmp_path)
    with pytest.raises(FileNotFoundError, match="prompt_wav not found"):
        load_item_audio(item(prompt_wav="nope.wav"), "prompt", tmp_path)
