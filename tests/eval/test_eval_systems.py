"""Lookup systems (ground truth, folder) and instantiating systems from their configs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ns2.codec.load import load_any_codec
from ns2.eval.protocol import ProtocolItem
from ns2.eval.runner import make_system, system_labels
from ns2.inference.synthesizer import SynthesisError
from ns2.inference.systems import FolderSystem, GroundTruthSystem, ResynthesisSystem

SR = 16000
PROMPT = np.zeros(SR, dtype=np.float32)


def wav(path, seconds=0.5, value=0.1):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(SR * seconds), value, dtype=np.float32), SR)
    return path


def test_groundtruth_bound_to_items(tmp_path):
    wav(tmp_path / "a.wav", 0.25)
    items = [ProtocolItem("a", "t", "p.wav", "s", gt_wav="a.wav"), ProtocolItem("b", "t", "p.wav", "s")]
    gt = GroundTruthSystem()
    gt.bind(items, tmp_path)
    x, sr = gt.synthesize("t", PROMPT, SR, utt_id="a")
    assert sr == SR and x.shape == (SR // 4,) and x.dtype == np.float32
    with pytest.raises(SynthesisError, match="no ground-truth recording"):
        gt.synthesize("t", PROMPT, SR, utt_id="b")
    with pytest.raises(SynthesisError, match="utt_id"):
        gt.synthesize("t", PROMPT, SR)
    assert gt.same_timing_as_reference and gt.describe()["items"] == 1


def test_resynthesis_is_the_codec_round_trip_of_the_ground_truth(tmp_path):
    codec_file = Path(__file__).parents[1] / "codec" / "fixtures" / "dac_tiny_16k.pth"
    t = np.arange(int(0.5 * SR)) / SR
    sf.write(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    items = [ProtocolItem("a", "t", "p.wav", "s", gt_wav="a.wav")]
    system = make_system({"_target_": "ns2.inference.systems.ResynthesisSystem", "codec": str(codec_file), "n_q": 2})
    system.bind(items, tmp_path)
    y, sr = system.synthesize("t", PROMPT, SR, utt_id="a")
    gt, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    codec = load_any_codec(codec_file).eval()
    with torch.inference_mode():
        x = torch.from_numpy(gt)[None, None]
        want = codec.decode_codes(codec.encode(x, 2), length=x.shape[-1])[0, 0].numpy()
    assert sr == SR and y.shape == gt.shape and np.allclose(y, want, atol=1e-5)
    assert not np.allclose(y, gt, atol=1e-3)  # it is the codec's copy, not the recording
    assert system.same_timing_as_reference and not system.stores_outputs
    assert system.describe()["codec"]["n_q"] == 2
    with pytest.raises(SynthesisError, match="no ground-truth recording"):
        system.synthesize("t", PROMPT, SR, utt_id="b")


def test_folder_outputs_missing_and_unreadable(tmp_path):
    wav(tmp_path / "out" / "a.wav")
    sf.write(tmp_path / "out" / "c.flac", np.zeros((SR, 2), dtype=np.float32), SR)  # stereo flac: averaged
    (tmp_path / "out" / "d.wav").write_bytes(b"not audio")
    f = FolderSystem(tmp_path / "out", name="other")
    assert f.synthesize("t", PROMPT, SR, utt_id="a")[0].shape == (SR // 2,)
    assert f.synthesize("t", PROMPT, SR, utt_id="c")[0].shape == (SR,)
    with pytest.raises(SynthesisError, match="no output for item 'b'"):
        f.synthesize("t", PROMPT, SR, utt_id="b")
    with pytest.raises(SynthesisError, match="cannot read"):
        f.synthesize("t", PROMPT, SR, utt_id="d")
    assert f.describe()["files"] == 3 and not f.same_timing_as_reference
    with pytest.raises(FileNotFoundError, match="output folder not found"):
        FolderSystem(tmp_path / "nope")


def test_systems_from_configs(compose, tmp_path, mini):
    cfg = compose("eval", ["systems=[groundtruth,folder,ns2]", f"system.folder.dir={tmp_path}",
                           "system.folder.name=f5", "system.ns2._target_=eval_helpers.ScriptedSystem.from_checkpoint",
                           f"system.ns2.path={mini}"])
    labels = system_labels(cfg)
    assert labels == {"groundtruth": "groundtruth", "folder": "f5", "ns2": "ns2"}
    assert isinstance(make_system(cfg.system.groundtruth, "groundtruth"), GroundTruthSystem)
    f = make_system(cfg.system.folder, "f5")
    assert isinstance(f, FolderSystem) and f.name == "f5"
    s = make_system(cfg.system.ns2, "ns2")
    assert type(s).__name__ == "ScriptedSystem" and s.name == "ns2"
    with pytest.raises(KeyError, match="not configured"):
        system_labels({"systems": ["nope"], "system": {}})
    with pytest.raises(ValueError, match="unique"):
        system_labels({"systems": ["a", "b"], "system": {"a": {"name": "x"}, "b": {"name": "x"}}})
