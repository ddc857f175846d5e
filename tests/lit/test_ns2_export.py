"""`python -m ns2.lit.export`: one self-contained .pt for synthesis from a training checkpoint."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from tiny_synth import save_tiny_checkpoint, tone  # noqa: E402

from ns2.inference import NS2Synthesizer  # noqa: E402
from ns2.inference.checkpoint import NS2CheckpointError  # noqa: E402
from ns2.lit.export import export_ns2, main  # noqa: E402


@pytest.fixture()
def training_ckpt(tmp_path):
    """A checkpoint laid out as Lightning writes it: the ns2 record plus raw weights and optimiser states."""
    path = save_tiny_checkpoint(tmp_path / "last.ckpt")
    obj = torch.load(path, weights_only=True)
    ema = obj["ns2"]["ema"]
    raw = {f"net.{k}": v + 0.01 if v.is_floating_point() else v.clone() for k, v in ema.items()}
    obj.update(state_dict=raw, global_step=321, epoch=4, optimizer_states=[{"state": {i: {"exp_avg": v.clone()} for i, v in enumerate(raw.values())}}],
               **{"pytorch-lightning_version": "2.6.6"})
    torch.save(obj, path)
    return path


def test_export_is_smaller_loads_weights_only_and_synthesizes_the_same(training_ckpt, tmp_path):
    card = export_ns2(training_ckpt, tmp_path / "voice.pt")
    out = Path(card["out"])
    assert card["bytes"] < card["source_bytes"] and card["step"] == 321 and card["weights"] == "ema"
    obj = torch.load(out, weights_only=True)
    assert set(obj) == {"ns2", "global_step", "epoch", "exported_from"} and obj["exported_from"]["weights"] == "ema"
    a = NS2Synthesizer.from_checkpoint(training_ckpt, steps=2)
    b = NS2Synthesizer.from_checkpoint(out, steps=2)
    wa, _ = a.synthesize("Hello there.", tone(2.0), 16000, seed=3)
    wb, _ = b.synthesize("Hello there.", tone(2.0), 16000, seed=3)
    np.testing.assert_array_equal(wa, wb)


def test_raw_weights_export_and_bad_inputs(training_ckpt, tmp_path, capsys):
    raw = export_ns2(training_ckpt, tmp_path / "raw.pt", ema=False)
    ema_w = torch.load(training_ckpt, weights_only=True)["ns2"]["ema"]
    raw_w = torch.load(raw["out"], weights_only=True)["ns2"]["ema"]
    key = next(k for k, v in ema_w.items() if v.is_floating_point())
    assert torch.allclose(raw_w[key], ema_w[key] + 0.01)
    with pytest.raises(NS2CheckpointError, match="would overwrite its source"):
        export_ns2(training_ckpt, training_ckpt)
    (tmp_path / "x.pt").write_bytes(b"junk")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x.pt"), str(tmp_path / "y.pt")])
    err = capsys.readouterr().err
    assert err.startswith("ns2.lit.export: ") and err.count("\n") == 1 and not (tmp_path / "y.pt").exists()


def test_ns2_synth_and_ns2_app_load_the_exported_file(training_ckpt, tmp_path, compose):
    import soundfile as sf

    from ns2.cli.app import load_systems
    from ns2.cli.synth import run_synth

    out = Path(export_ns2(training_ckpt, tmp_path / "voice.pt")["out"])
    sf.write(tmp_path / "prompt.wav", tone(2.0), 16000)
    summary = run_synth({"ckpt": str(out), "text": "Hello there.", "prompt": str(tmp_path / "prompt.wav"),
                         "out": str(tmp_path / "hello.wav"), "steps": 2, "device": "cpu", "seed": 3})
    wav, sr = sf.read(tmp_path / "hello.wav", dtype="float32")
    direct, _ = NS2Synthesizer.from_checkpoint(training_ckpt, steps=2).synthesize("Hello there.", tone(2.0), 16000, seed=3)
    assert summary["ok"] == 1 and sr == 16000
    np.testing.assert_allclose(wav, direct, atol=1e-4)  # the wav file's 16-bit rounding aside, the same audio
    systems = load_systems(compose("app", [f"ckpt={out}"]).systems)
    assert list(systems) == ["ns2"] and systems["ns2"].checkpoint == str(out)
