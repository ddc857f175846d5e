"""Backbone cache: the missing-backbone message, checksum records and their verification, download flow."""
from __future__ import annotations

import json
import types

import pytest

from ns2.metrics import BackboneChecksumError, MissingBackboneError, build_metrics
from ns2.metrics import backbones as bb


def _fake_backbone(cache, name="wavlm_base_plus_sv"):
    folder = bb.backbone_dir(name, cache)
    folder.mkdir(parents=True)
    for f in ("config.json", "preprocessor_config.json", "model.safetensors"):
        (folder / f).write_text(f"content of {f}")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock").write_text("hub bookkeeping, not recorded")
    return folder


def test_missing_backbone_one_line_message(tmp_path):
    with pytest.raises(MissingBackboneError) as e:
        build_metrics(["sim_wavlm_tdnn"], tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "sim_wavlm_tdnn" in msg and "wavlm_base_plus_sv" in msg
    assert f"huggingface-cli download microsoft/wavlm-base-plus-sv --local-dir {tmp_path}/backbones/wavlm_base_plus_sv" in msg
    assert "python -m ns2.metrics download wavlm_base_plus_sv" in msg
    assert "allow fallbacks to report sim_resemblyzer" in msg


def test_cache_root_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NS2_CACHE", str(tmp_path))
    assert bb.backbone_dir("utmos22_strong") == tmp_path / "backbones" / "utmos22_strong"
    monkeypatch.delenv("NS2_CACHE")
    assert bb.cache_root().name == "ns2"


def test_record_then_verify_then_detect_tampering(tmp_path, checksums):
    folder = _fake_backbone(tmp_path)
    with pytest.raises(BackboneChecksumError, match="no checksums recorded"):
        bb.require("wavlm_base_plus_sv", tmp_path, checksums=checksums)
    hashes = bb.record("wavlm_base_plus_sv", tmp_path, checksums=checksums)
    assert sorted(hashes) == ["config.json", "model.safetensors", "preprocessor_config.json"]  # hidden files skipped
    data = json.loads(checksums.read_text())
    assert data["version"] == 1 and data["backbones"]["wavlm_base_plus_sv"]["files"] == hashes
    assert bb.require("wavlm_base_plus_sv", tmp_path, checksums=checksums) == folder
    (folder / "model.safetensors").write_text("tampered")
    with pytest.raises(BackboneChecksumError, match="checksum mismatch for .*model.safetensors") as e:
        bb.require("wavlm_base_plus_sv", tmp_path, checksums=checksums)
    assert "\n" not in str(e.value)
    (folder / "model.safetensors").unlink()
    with pytest.raises(MissingBackboneError, match="model.safetensors or pytorch_model.bin or model.safetensors.index.json not found"):
        bb.require("wavlm_base_plus_sv", tmp_path, checksums=checksums)


def test_record_refuses_file_differing_from_published_checksum(tmp_path, checksums):
    folder = bb.backbone_dir("utmos22_strong", tmp_path)
    folder.mkdir(parents=True)
    (folder / "utmos22_strong_step7459_v1.pt").write_bytes(b"not the release")
    with pytest.raises(BackboneChecksumError, match="published release"):
        bb.record("utmos22_strong", tmp_path, checksums=checksums)
    assert not checksums.exists()
    bb.record("utmos22_strong", tmp_path, checksums=checksums, force=True)
    assert "utmos22_strong" in bb.read_checksums(checksums)


def test_bundled_backbones_need_no_folder(tmp_path):
    assert bb.require("resemblyzer", tmp_path) is None
    with pytest.raises(ValueError, match="ships inside"):
        bb.record("pocketsphinx_en_us", tmp_path)


def test_package_manifest_is_valid():
    entries = bb.read_checksums()
    assert set(entries) <= set(bb.BACKBONES)
    for entry in entries.values():
        assert all(len(h) == 64 for h in entry["files"].values())


def test_hf_file_selection():
    spec = bb.get_backbone("whisper_large_v3")
    files = ["config.json", "model.safetensors", "pytorch_model.bin", "flax_model.msgpack", "model.fp32.index.json",
             "tokenizer.json", "merges.txt", "subdir/config.json"]
    assert bb._hf_allow_patterns(spec, files) == ["config.json", "tokenizer.json", "merges.txt", "model.safetensors"]
    assert bb._hf_allow_patterns(spec, ["config.json", "pytorch_model.bin"])[-1] == "pytorch_model.bin"
    sharded = bb._hf_allow_patterns(spec, ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors"])
    assert sharded[-2:] == ["model.safetensors.index.json", "model-*-of-*.safetensors"]
    assert bb._hf_allow_patterns(bb.get_backbone("wavlm_large_ecapa"), []) == ["speaker_similarity/wavlm_large_finetune.pth"]


def test_download_records_then_verifies(tmp_path, checksums, monkeypatch):
    """The download flow with the hub replaced by a local stand-in (no network here)."""
    import huggingface_hub

    calls = []

    class FakeApi:
        def model_info(self, repo, revision=None):
            names = ["config.json", "preprocessor_config.json", "model.safetensors", "pytorch_model.bin"]
            return types.SimpleNamespace(sha="abc123", siblings=[types.SimpleNamespace(rfilename=n) for n in names])

    def fake_snapshot(repo, revision, local_dir, allow_patterns):
        calls.append((repo, revision, allow_patterns))
        for f in allow_patterns:
            (local_dir / f).write_text(f"{repo} {f}")

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    folder = bb.download("wavlm_base_plus_sv", tmp_path, checksums=checksums)
    assert calls == [("microsoft/wavlm-base-plus-sv", "abc123", ["config.json", "preprocessor_config.json", "model.safetensors"])]
    entry = bb.read_checksums(checksums)["wavlm_base_plus_sv"]
    assert entry["source"] == "hf:microsoft/wavlm-base-plus-sv@abc123" and len(entry["files"]) == 3
    assert bb.download("wavlm_base_plus_sv", tmp_path, checksums=checksums) == folder  # second time: verified
    (folder / "config.json").write_text("changed upstream")

    def tampering_snapshot(repo, revision, local_dir, allow_patterns):
        (local_dir / "config.json").write_text("changed upstream")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", tampering_snapshot)
    with pytest.raises(BackboneChecksumError, match="checksum mismatch"):
        bb.download("wavlm_base_plus_sv", tmp_path, checksums=checksums)


def test_cli(tmp_path, checksums, capsys):
    _fake_backbone(tmp_path)
    args = ["--cache-dir", str(tmp_path), "--checksums", str(checksums)]
    assert bb.main(["verify", "wavlm_base_plus_sv", *args]) == 1
    assert bb.main(["record", "wavlm_base_plus_sv", *args]) == 0
    assert bb.main(["verify", "wavlm_base_plus_sv", *args]) == 0
    assert bb.main(["list", *args]) == 0
    out = capsys.readouterr().out
    assert "wavlm_base_plus_sv: ok" in out and "pip:resemblyzer" in out
