"""Lookup systems (ground truth, folder) and instantiating systems from their configs."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ns2.eval.protocol import ProtocolItem
from ns2.eval.runner import make_system, system_labels
from ns2.inference.synthesizer import SynthesisError
from ns2.inference.systems import FolderSystem, GroundTruthSystem

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
