"""Exporting a codec: any codec source written as one standalone codec file.

A source is a :class:`~ns2.lit.codec.CodecLit` checkpoint (``.ckpt``, with its discriminator and optimiser
states), a file written by :func:`~ns2.codec.load.save_codec`, an official DAC weight file, or a release
name (``dac_16khz``, ``dac_24khz``, ``dac_44khz``). The export is the generator alone in the official DAC
format (what :func:`~ns2.codec.load.load_codec` and the official package read), written atomically and
checked by reading it back: the same weights, hence the same codes.

From the shell: ``python -m ns2.codec.export SOURCE OUT`` prints the codec's sizes and the SHA-256 of ``OUT``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from ns2.codec.base import Codec
from ns2.codec.load import PRETRAINED, CodecLoadError, _one_line, load_any_codec, load_codec, save_codec
from ns2.utils.io import sha256_file

__all__ = ["codec_card", "export_codec", "load_codec_source", "main", "sha256_file"]

SOURCES = f"a CodecLit checkpoint (.ckpt), a codec file (save_codec or official DAC format) or one of {sorted(PRETRAINED)}"


def load_codec_source(source: str | os.PathLike) -> Codec:
    """The codec of ``source`` (eval mode; see the module docstring for what a source is).

    Raises :class:`~ns2.codec.load.CodecLoadError` with one line naming the source on any failure.
    """
    text = str(source)
    if text in PRETRAINED:
        return load_codec(text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise CodecLoadError(f"{path}: no such file; expected {SOURCES}")
    try:
        return load_any_codec(path)
    except CodecLoadError:
        raise
    except ValueError as e:  # a readable file of the wrong kind: the message names it already
        raise CodecLoadError(" ".join(str(e).split())) from None
    except Exception as e:  # noqa: BLE001 - a corrupt or foreign file becomes one line
        raise CodecLoadError(f"{path}: expected {SOURCES}; not readable as one ({_one_line(e)})") from None


def codec_card(codec: Codec, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Parameter count, rates and quantiser sizes of ``codec`` (plus path and SHA-256 of its file)."""
    card: dict[str, Any] = {
        "class": type(codec).__name__,
        "parameters": sum(p.numel() for p in codec.parameters()),
        "sample_rate": int(codec.sample_rate),
        "hop_length": int(codec.hop_length),
        "frame_rate": codec.sample_rate / codec.hop_length,
        "n_q": int(codec.n_q),
        "codebook_size": int(codec.codebook_size),
        "latent_dim": int(codec.latent_dim),
    }
    if path is not None:
        card.update({"path": str(path), "bytes": Path(path).stat().st_size, "sha256": sha256_file(path)})
    return card


def export_codec(source: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the codec of ``source`` to ``out`` with :func:`save_codec` (atomically); return ``out``.

    The written file is read back with :func:`load_codec` and must hold exactly the source's weights.
    """
    codec = load_codec_source(source)
    if not hasattr(codec, "kwargs"):
        raise CodecLoadError(f"{source}: a {type(codec).__name__} has no constructor arguments to save; expected an RVQCodec")
    path = save_codec(codec, Path(out).expanduser())
    back = load_codec(path)
    ours, theirs = codec.state_dict(), back.state_dict()
    if ours.keys() != theirs.keys():
        raise CodecLoadError(f"{path}: reads back with other parameters than {source}")
    for key, value in ours.items():
        if not torch.equal(value.cpu(), theirs[key]):
            raise CodecLoadError(f"{path}: {key} reads back different from {source}")
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m ns2.codec.export SOURCE OUT``: export a codec and print its card."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m ns2.codec.export", description=export_codec.__doc__)
    ap.add_argument("source", help=SOURCES)
    ap.add_argument("out", help="the codec file to write (official DAC format; read by load_codec)")
    args = ap.parse_args(argv)
    try:
        path = export_codec(args.source, args.out)
        card = codec_card(load_codec(path), path)
    except CodecLoadError as e:
        print(f"ns2.codec.export: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    card["source"] = str(args.source)
    width = max(map(len, card))
    print("\n".join(f"{k:<{width}}  {f'{v:,}' if k in ('parameters', 'bytes') else v}" for k, v in card.items()))
    return card


if __name__ == "__main__":
    main()
