"""``python -m ns2.data.aligner plot``: look at a trained aligner.

    python -m ns2.data.aligner plot CKPT MANIFEST UTT_ID --out fig.png

``plot`` draws one utterance's mel above the soft attention with the hard path (and prints its
durations). Scoring an aligner (boundary errors against the manifest's reference durations, with the
uniform baseline) is a study: ``python -m ns2.eval.studies.aligner CKPT MANIFEST --split test``.
"""
from __future__ import annotations

import sys
from typing import Any, Sequence

USAGE = ("usage: python -m ns2.data.aligner plot CKPT MANIFEST UTT_ID --out fig.png\n"
         "(scoring: python -m ns2.eval.studies.aligner CKPT MANIFEST [--split test] [--out results.json])")


def plot_main(argv: Sequence[str]) -> list[int]:
    """Draw one utterance of a manifest; return its durations."""
    import argparse
    from pathlib import Path

    from ns2.data.aligner.plot import plot_utterance
    from ns2.data.manifest import read_manifest

    ap = argparse.ArgumentParser(prog="python -m ns2.data.aligner plot",
                                 description="Draw an utterance's alignment: mel, soft attention and the hard path.")
    ap.add_argument("checkpoint", help="an aligner checkpoint (AlignerLit .ckpt or save_aligner file)")
    ap.add_argument("manifest", help="a manifest with phonemes (audio paths relative to its folder)")
    ap.add_argument("utt_id", help="the utterance's id")
    ap.add_argument("--out", required=True, help="the PNG file to write")
    ap.add_argument("--dpi", type=int, default=100)
    args = ap.parse_args(list(argv))
    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise SystemExit(f"manifest not found: {manifest}")
    utts = [u for u in read_manifest(manifest) if u.id == args.utt_id]
    if not utts:
        raise SystemExit(f"utterance {args.utt_id!r} is not in {manifest}")
    try:
        _, durations = plot_utterance(args.checkpoint, utts[0], manifest.parent, path=args.out, dpi=args.dpi)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"plot: {e}") from None
    print(f"wrote {args.out}")
    print(" ".join(f"{p}:{d}" for p, d in zip(utts[0].phonemes, durations)))
    return durations


def main(argv: Sequence[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return None
    command, rest = argv[0], argv[1:]
    if command == "plot":
        return plot_main(rest)
    print(f"python -m ns2.data.aligner: unknown command {command!r}; expected plot\n{USAGE}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
