"""Code extraction: shards, index, int16 round trip, load_codes, resuming after an interruption."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec_train_helpers import tiny_codec
from ns2.data.codes import CodecEncoder, extract_codes, load_codes, read_shard, shard_shapes, write_shard
from ns2.data.manifest import read_manifest


@pytest.fixture()
def prepared(prepared_corpus, tmp_path) -> Path:
    """A private copy of the prepared folder (extraction writes into it)."""
    dst = tmp_path / "prepared"
    shutil.copytree(prepared_corpus / "data" / "synthetic-mini" / "prepared", dst)
    return dst


def test_int16_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"a": rng.integers(0, 32768, (16, 7)).astype(np.int16), "file": np.zeros((2, 0), np.int16),
              "spk/utt-1": np.array([[0, 1023, 32767]], dtype=np.int16)}
    write_shard(tmp_path / "s.npz", arrays)
    back = read_shard(tmp_path / "s.npz")
    assert set(back) == set(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == np.int16 and np.array_equal(back[k], v)
    assert shard_shapes(tmp_path / "s.npz") == {"a": (16, 7), "file": (2, 0), "spk/utt-1": (1, 3)}
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert shard_shapes(tmp_path / "bad.npz") is None


def test_extract_and_load_codes(prepared, tmp_path):
    from ns2.codec import save_codec
    from ns2.data.codes import main

    codec = tiny_codec().eval()
    path = save_codec(codec, tmp_path / "codec.pth")  # through the command line, from a saved codec
    summary = main([str(path), str(prepared / "manifest.jsonl"), "--shard-size", "5", "--batch-frames", "0",
                    "--accelerator", "cpu", "--num-workers", "0"])
    utts = read_manifest(prepared / "manifest.jsonl")
    assert summary["utterances"] == len(utts) == 18 and summary["shards"] == summary["shards_written"] == 4
    assert summary["n_q"] == 4 and summary["audio_seconds_per_second"] > 0
    index = json.loads((prepared / "codes" / "index.json").read_text())
    assert sorted(index["shards"]) == [f"shard-0000{i}.npz" for i in range(4)]
    for u in utts:
        assert u.features["codes"] == index["ids"][u.id] and u.features["codes"].startswith("codes/shard-")
        codes = load_codes(u, prepared)
        assert codes.dtype == torch.long and codes.shape == (4, u.num_frames) == (4, index["frames"][u.id])
        assert 0 <= int(codes.min()) and int(codes.max()) < codec.codebook_size
    with torch.no_grad():  # batch_frames=0: exactly the codes of the utterance encoded alone
        for u in utts[:3]:
            x, _ = sf.read(u.audio_path(prepared), dtype="float32")
            assert torch.equal(codec.encode(torch.from_numpy(x)[None, None])[0], load_codes(u, prepared))
        z = codec.codes_to_latent(load_codes(utts[0], prepared)[None])
        assert z.shape == (1, codec.latent_dim, utts[0].num_frames)


def test_batched_encoding_matches_but_for_the_tail(prepared):
    codec = tiny_codec().eval()
    utts = read_manifest(prepared / "manifest.jsonl")[:6]
    audio = [torch.from_numpy(sf.read(u.audio_path(prepared), dtype="float32")[0]) for u in utts]
    with torch.no_grad():
        out = CodecEncoder(codec, batch_frames=10_000).predict_step({"ids": [u.id for u in utts], "audio": audio})
        for a, c in zip(audio, out["codes"]):
            alone = codec.encode(a[None, None])[0].numpy()
            assert c.dtype == np.int16 and c.shape == alone.shape
            assert np.array_equal(c[:, :-8], alone[:, :-8])  # padding reaches only the last few frames
    assert out["seconds"] == pytest.approx(sum(len(a) for a in audio) / 16000)


def test_resume_after_interruption_redoes_only_unfinished_shards(prepared, monkeypatch):
    codec = tiny_codec()
    utts = read_manifest(prepared / "manifest.jsonl")
    calls = {"n": 0}
    original = CodecEncoder.predict_step

    def flaky(self, batch, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("power cut")
        return original(self, batch, *args, **kwargs)

    monkeypatch.setattr(CodecEncoder, "predict_step", flaky)
    with pytest.raises((KeyboardInterrupt, SystemExit, RuntimeError)):
        extract_codes(codec, utts, prepared, shard_size=5)
    out = prepared / "codes"
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "shard-00000.npz"]  # no partial files
    first = (out / "shard-00000.npz").stat().st_mtime_ns

    monkeypatch.setattr(CodecEncoder, "predict_step", original)
    summary = extract_codes(codec, utts, prepared, shard_size=5)
    assert summary["shards_skipped"] == 1 and summary["shards_written"] == 3
    assert (out / "shard-00000.npz").stat().st_mtime_ns == first
    again = extract_codes(codec, utts, prepared, shard_size=5)
    assert again["shards_written"] == 0 and again["shards_skipped"] == 4

    (out / "shard-00002.npz").write_bytes(b"torn")  # a damaged shard is redone
    assert extract_codes(codec, utts, prepared, shard_size=5)["shards_written"] == 1


def test_refuses_codes_of_another_codec_and_wrong_frame_rates(prepared):
    utts = read_manifest(prepared / "manifest.jsonl")[:4]
    extract_codes(tiny_codec(seed=0), utts, prepared, shard_size=4)
    with pytest.raises(ValueError, match="another codec"):
        extract_codes(tiny_codec(seed=1), utts, prepared, shard_size=4)
    assert extract_codes(tiny_codec(seed=1), utts, prepared, shard_size=4, overwrite=True)["shards_written"] == 1
    bad = [u.replace(frame_rate=50.0) for u in utts]
    with pytest.raises(ValueError, match="frame_rate 50.0"):
        extract_codes(tiny_codec(seed=1), bad, prepared, shard_size=4)
    with pytest.raises(KeyError, match="has no feature 'codes'"):
        load_codes(read_manifest(prepared / "manifest.jsonl")[0], prepared)


@pytest.mark.slow
def test_two_processes(prepared):
    codec = tiny_codec()
    utts = read_manifest(prepared / "manifest.jsonl")
    summary = extract_codes(codec, utts, prepared, shard_size=4, devices=2, accelerator="cpu")
    assert summary["shards_written"] == 5
    for u in utts:
        assert load_codes(u, prepared).shape[1] == u.num_frames
