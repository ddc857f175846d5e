"""Exporting a NaturalSpeech 2 model: one self-contained ``.pt`` file for synthesis.

A training checkpoint (``last.ckpt``) carries optimiser states, the raw weights and Lightning's
bookkeeping beside the ``checkpoint["ns2"]`` record (:mod:`ns2.inference.checkpoint`). The export keeps only
that record (config, symbol table, codec with its weights, SDE, sampler, the EMA network) plus where it
came from, read back with ``torch.load(weights_only=True)`` by :func:`~ns2.inference.checkpoint.load_ns2_checkpoint`,
hence by ``ns2 synth ckpt=<file>``, ``ns2 app ckpt=<file>`` and ``NS2Synthesizer.from_checkpoint``::

    python -m ns2.lit.export outputs/ns2_tiny/<run>/checkpoints/last.ckpt my_voice.pt

The file is written atomically and checked by loading it back (same network and codec weights).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from ns2.inference.checkpoint import NS2CheckpointError, _read, load_ns2_checkpoint
from ns2.utils.io import sha256_file, torch_save_atomic

__all__ = ["export_ns2", "main"]


def export_ns2(source: str | os.PathLike, out: str | os.PathLike, *, ema: bool = True) -> dict[str, Any]:
    """Write the synthesis record of the NS2 checkpoint ``source`` to ``out``; return a short card.

    ``ema=False`` exports the raw trained weights instead of the EMA ones. Raises
    :class:`~ns2.inference.checkpoint.NS2CheckpointError` (one line) for a file that is not an NS2 checkpoint
    or an ``out`` that would overwrite it.
    """
    src, dst = Path(source).expanduser(), Path(out).expanduser()
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise NS2CheckpointError(f"{dst}: the export would overwrite its source; choose another output path")
    obj = _read(src, "cpu")
    record = dict(obj["ns2"])
    if not ema:
        sd = obj.get("state_dict") or {}
        net = {k[len("net."):]: v for k, v in sd.items() if k.startswith("net.")}
        if not net:
            raise NS2CheckpointError(f"{src}: no raw weights (state_dict['net.*']) to export; drop ema=False")
        record["ema"] = net
    step, epoch = int(obj.get("global_step", 0) or 0), int(obj.get("epoch", 0) or 0)
    torch_save_atomic({"ns2": record, "global_step": step, "epoch": epoch,
                       "exported_from": {"path": str(src), "sha256": sha256_file(src), "weights": "ema" if ema else "raw"}}, dst)
    back = load_ns2_checkpoint(dst)
    want = load_ns2_checkpoint(src, ema=ema)
    for name, a, b in (("network", want.net, back.net), ("codec", want.codec, back.codec)):
        theirs = b.state_dict()
        if any(not torch.equal(v, theirs[k]) for k, v in a.state_dict().items()):
            raise NS2CheckpointError(f"{dst}: its {name} weights read back different from {src}")
    return {"source": str(src), "out": str(dst), "bytes": dst.stat().st_size, "source_bytes": src.stat().st_size,
            "sha256": sha256_file(dst), "step": step, "epoch": epoch, "weights": "ema" if ema else "raw",
            "parameters": sum(p.numel() for p in back.net.parameters()),
            "codec_parameters": sum(p.numel() for p in back.codec.parameters()),
            "symbols": f"{back.symbols.version}:{back.symbols.checksum}", "language": back.language}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m ns2.lit.export CKPT OUT [--raw]``: export and print the card."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m ns2.lit.export", description=export_ns2.__doc__)
    ap.add_argument("ckpt", help="an NS2 training checkpoint (ns2 train experiment=ns2/...)")
    ap.add_argument("out", help="the .pt file to write (read by ns2 synth / ns2 app ckpt=...)")
    ap.add_argument("--raw", action="store_true", help="export the raw trained weights instead of the EMA ones")
    args = ap.parse_args(argv)
    try:
        card = export_ns2(args.ckpt, args.out, ema=not args.raw)
    except NS2CheckpointError as e:
        print(f"ns2.lit.export: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    width = max(map(len, card))
    print("\n".join(f"{k:<{width}}  {f'{v:,}' if 'bytes' in k or 'parameters' in k else v}" for k, v in card.items()))
    return card


if __name__ == "__main__":
    main()
