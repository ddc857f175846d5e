"""`python -m ns2.codec.export SOURCE OUT`: any codec source to one codec file that encodes identically."""
from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import pytest
import torch

from ns2.codec import load_codec
from ns2.codec.export import export_codec, main
from ns2.codec.load import CodecLoadError
from ns2.lit import CodecLit

DAC_TINY = Path(__file__).resolve().parent / "fixtures" / "dac_tiny_16k.pth"  # see conftest.py


def save_lit_checkpoint(codec, path) -> None:
    """A Lightning checkpoint of an (untrained) CodecLit, as ModelCheckpoint writes it."""
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(CodecLit(codec, None, num_audio_examples=0))
    trainer.save_checkpoint(path)


def test_export_of_a_codeclit_checkpoint_encodes_identically(tiny_codec, tmp_path, capsys):
    with torch.no_grad():  # weights a fresh codec would not have: a trained one's stand-in
        for p in tiny_codec.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_lit_checkpoint(tiny_codec, tmp_path / "last.ckpt")
    card = main([str(tmp_path / "last.ckpt"), str(tmp_path / "out" / "codec.pth")])
    path = tmp_path / "out" / "codec.pth"
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["parameters"] == sum(p.numel() for p in tiny_codec.parameters())
    assert (card["sample_rate"], card["hop_length"], card["n_q"], card["codebook_size"], card["latent_dim"]) == (
        8000, 10, 3, 32, 16)
    printed = capsys.readouterr().out
    for key in ("parameters", "sample_rate", "hop_length", "n_q", "codebook_size", "latent_dim", card["sha256"]):
        assert key in printed
    assert not list(path.parent.glob("*.part-*"))  # the atomic write left nothing behind

    back = load_codec(path)
    x = torch.randn(2, 1, 8000)
    with torch.no_grad():
        assert torch.equal(back.encode(x), tiny_codec.encode(x))
        codes = tiny_codec.encode(x)
        assert torch.equal(back.codes_to_latent(codes), tiny_codec.codes_to_latent(codes))


def test_export_of_a_dac_file_round_trips(dac_tiny, tmp_path):
    path = export_codec(DAC_TINY, tmp_path / "dac.pth")
    again = export_codec(path, tmp_path / "dac2.pth")  # an export is itself a source
    first, second = (torch.load(p, map_location="cpu", weights_only=True) for p in (path, again))
    assert first["metadata"] == second["metadata"] and first["state_dict"].keys() == second["state_dict"].keys()
    assert all(torch.equal(v, second["state_dict"][k]) for k, v in first["state_dict"].items())
    x = torch.randn(1, 1, 4000)
    with torch.no_grad():
        assert torch.equal(load_codec(again).encode(x), dac_tiny.encode(x))


@pytest.mark.parametrize("source, expected", [("missing.ckpt", "no such file"), ("junk.ckpt", "not readable"),
                                              ("junk.pth", "expected an official DAC weight file")])
def test_bad_source_is_one_line(tmp_path, capsys, source, expected):
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    (tmp_path / "junk.pth").write_bytes(b"not a codec")
    with pytest.raises(CodecLoadError, match=expected):
        export_codec(tmp_path / source, tmp_path / "out.pth")
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / source), str(tmp_path / "out.pth")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and str(tmp_path / source) in err
    assert not (tmp_path / "out.pth").exists()
