"""load_codec: official-format files, clear one-line errors, the release cache, download and offline."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from ns2.codec import CodecLoadError, RVQCodec, cached_path, load_codec, save_codec
from ns2.codec import load as codec_load

DAC_TINY = Path(__file__).resolve().parent / "fixtures" / "dac_tiny_16k.pth"  # see conftest.py


def one_line_error(source, **kwargs) -> str:
    with pytest.raises(CodecLoadError) as info:
        load_codec(source, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


@pytest.fixture(scope="module")
def official():
    return torch.load(DAC_TINY, map_location="cpu", weights_only=True)


def test_bad_files_give_one_clear_line(tmp_path, official):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    msg = one_line_error(junk)
    assert str(junk) in msg and "official DAC weight file" in msg

    no_state = tmp_path / "no_state.pth"
    torch.save({"metadata": official["metadata"]}, no_state)
    msg = one_line_error(no_state)
    assert str(no_state) in msg and "no 'state_dict'" in msg

    no_meta = tmp_path / "no_meta.pth"
    torch.save({"state_dict": official["state_dict"]}, no_meta)
    assert "'kwargs'" in one_line_error(no_meta)

    a_list = tmp_path / "list.pth"
    torch.save([1, 2, 3], a_list)
    assert "got a list" in one_line_error(a_list)

    bad_shape = tmp_path / "bad_shape.pth"
    state = dict(official["state_dict"])
    state["quantizer.quantizers.0.codebook.weight"] = torch.zeros(32, 8)
    torch.save({"state_dict": state, "metadata": official["metadata"]}, bad_shape)
    msg = one_line_error(bad_shape)
    assert "quantizer.quantizers.0.codebook.weight" in msg and "(32, 8)" in msg and "(64, 8)" in msg
    state = dict(official["state_dict"])
    state["decoder.model.0.weight_v"] = torch.zeros(3, 3, 3)
    torch.save({"state_dict": state, "metadata": official["metadata"]}, bad_shape)
    assert "decoder.model.0.weight_v has shape (3, 3, 3), expected (64, 64, 7)" in one_line_error(bad_shape)

    other_kwargs = tmp_path / "other_kwargs.pth"  # the weights of one model under another's kwargs
    meta = {"kwargs": {**official["metadata"]["kwargs"], "n_codebooks": 5}}
    torch.save({"state_dict": official["state_dict"], "metadata": meta}, other_kwargs)
    assert "missing ['quantizer.quantizers.4" in one_line_error(other_kwargs)

    unknown = tmp_path / "unknown.pth"
    meta = {"kwargs": {**official["metadata"]["kwargs"], "causal": True}}
    torch.save({"state_dict": official["state_dict"], "metadata": meta}, unknown)
    assert "unknown kwargs ['causal']" in one_line_error(unknown)

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(DAC_TINY.read_bytes()[:100_000])
    assert str(truncated) in one_line_error(truncated)

    assert "no such file" in one_line_error(tmp_path / "missing.pth")
    assert "dac_24khz" in one_line_error("dac_99khz")


def test_unsafe_pickles_are_refused(tmp_path, official):
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": official["state_dict"], "metadata": {"kwargs": official["metadata"]["kwargs"],
                                                                      "obj": io.BytesIO()}}, evil)
    msg = one_line_error(evil)
    assert "weights_only=True" in msg and "BytesIO" in msg and "weights_only=False" not in msg


def test_numpy_scalars_in_metadata_are_allowed(tmp_path, official):
    path = tmp_path / "with_logs.pth"
    logs = {"loss": np.float64(1.5), "step": np.int64(3), "curve": np.arange(3.0)}
    meta = {"kwargs": official["metadata"]["kwargs"], "logs": logs}
    torch.save({"state_dict": official["state_dict"], "metadata": meta}, path)
    assert isinstance(load_codec(path), RVQCodec)


def test_save_and_load_round_trip(tmp_path, tiny_codec):
    path = save_codec(tiny_codec, tmp_path / "sub" / "codec.pth")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert any(k.endswith("weight_g") for k in raw["state_dict"])  # official names on disk
    loaded = load_codec(path)
    wav = torch.randn(1, 1, 200)
    with torch.no_grad():
        assert torch.equal(loaded.encode(wav), tiny_codec.encode(wav))
        z = tiny_codec.encode_latent(wav)
        assert torch.allclose(loaded.decode(z), tiny_codec.decode(z), atol=1e-6)
    assert not list(path.parent.glob("*.part-*"))


# --- releases -----------------------------------------------------------------------------------
@pytest.fixture()
def fake_release(monkeypatch):
    """Point dac_24khz at the tiny fixture's bytes (its real sha256), served by a fake urlopen."""
    payload = DAC_TINY.read_bytes()
    rel = dataclasses.replace(codec_load.PRETRAINED["dac_24khz"], sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(codec_load.PRETRAINED, "dac_24khz", rel)
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(codec_load, "urlopen", fake_urlopen)
    return calls


def test_download_once_verified_and_atomic(tmp_path, fake_release):
    codec = load_codec("dac_24khz", cache_dir=tmp_path, freeze=True)
    assert codec.frozen and not any(p.requires_grad for p in codec.parameters())
    dest = cached_path("dac_24khz", tmp_path)
    assert dest.is_file() and dest.name == "dac_24khz-0.0.4.pth"
    assert fake_release == [codec_load.PRETRAINED["dac_24khz"].url]
    load_codec("dac_24khz", cache_dir=tmp_path, verify=True)
    assert len(fake_release) == 1  # cached: no second download
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


def test_checksum_mismatch_keeps_nothing(tmp_path, fake_release, monkeypatch):
    rel = dataclasses.replace(codec_load.PRETRAINED["dac_24khz"], sha256="0" * 64)
    monkeypatch.setitem(codec_load.PRETRAINED, "dac_24khz", rel)
    msg = one_line_error("dac_24khz", cache_dir=tmp_path)
    assert "sha256" in msg and "0" * 64 in msg
    assert not list(tmp_path.iterdir())


def test_offline_says_what_to_download_and_where(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(codec_load, "urlopen", offline)
    monkeypatch.setenv("NS2_CACHE", str(tmp_path / "env_cache"))
    msg = one_line_error("dac_16khz")
    dest = tmp_path / "env_cache" / "codec" / "dac_16khz-0.0.5.pth"
    assert codec_load.PRETRAINED["dac_16khz"].url in msg and str(dest) in msg
    assert "name resolution" in msg
    assert not dest.exists() and not list(dest.parent.glob("*.part-*"))


def test_a_file_in_the_cache_is_used_without_network(tmp_path, monkeypatch):
    def no_network(url, timeout=None):
        raise AssertionError("must not download")

    monkeypatch.setattr(codec_load, "urlopen", no_network)
    dest = cached_path("dac_44khz", tmp_path)
    shutil.copy(DAC_TINY, dest)
    assert load_codec("dac_44khz", cache_dir=tmp_path).sample_rate == 16000  # a fake: the tiny model
    assert "sha256" in one_line_error("dac_44khz", cache_dir=tmp_path, verify=True)
