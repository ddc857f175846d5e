"""``python -m ns2.eval.protocols``: build the test lists from corpus manifests (seeded).

Examples (from the repository root)::

    # the synthetic corpus's held-out speakers (the default protocol of `ns2 eval`)
    python -m ns2.eval.protocols synthetic --manifest data/synthetic-small/prepared/manifest.jsonl \\
        --out eval/protocols/synthetic-small.jsonl
    # NaturalSpeech 2: LibriSpeech test-clean 40 x 15 and VCTK 108 x 5, prompts of 3, 5 and 10 s
    python -m ns2.eval.protocols ns2 --manifest data/librispeech/prepared/manifest.jsonl \\
        --name librispeech --speakers 40 --per-speaker 15 --out-dir eval/protocols/ns2
    python -m ns2.eval.protocols ns2 --manifest data/vctk/prepared/manifest.jsonl --split any \\
        --name vctk --speakers 108 --per-speaker 5 --out-dir eval/protocols/ns2
    # VALL-E: LibriSpeech test-clean 4-10 s, cross-sentence and continuation
    python -m ns2.eval.protocols valle --manifest data/librispeech/prepared/manifest.jsonl \\
        --out-dir eval/protocols/valle
    # Seed-TTS-eval: import a meta.lst (audio stays relative to the meta file's folder)
    python -m ns2.eval.protocols seedtts --meta seedtts_testset/en/meta.lst --out eval/protocols/seedtts-en.jsonl

Output: ``<name>.jsonl`` (one item per line, see :mod:`ns2.eval.protocol`) and ``<name>.info.json``
(builder, arguments, manifest, counts, commit). Audio paths are relative to the manifest's folder.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Sequence

from ns2.eval.builders import build_ns2, build_singing, build_synthetic, build_valle
from ns2.eval.protocol import ProtocolItem, read_seedtts_meta, write_protocol

__all__ = ["build_lists", "main"]


def _fmt_seconds(s: float) -> str:
    return f"{s:g}s"


def _info(builder: str, source: str | os.PathLike, items: list[ProtocolItem], **args: Any) -> dict[str, Any]:
    from ns2.utils.provenance import git_commit

    short = sum(1 for it in items if it.extra.get("prompt_short"))
    return {
        "builder": builder,
        "source": str(source),
        "audio_root": "the folder of `source`",
        "arguments": args,
        "prompts_shorter_than_nominal": short,
        "commit": git_commit(),
    }


def build_lists(builder: str, *, manifest: str | None = None, meta: str | None = None, seed: int = 0,
                split: str | None = "test", name: str | None = None, speakers: int = 40, per_speaker: int = 15,
                prompt_seconds: Sequence[float] = (3.0,), min_seconds: float | None = None,
                max_seconds: float | None = None, language: str = "en-us") -> dict[str, tuple[list[ProtocolItem], dict]]:
    """``{list name: (items, info)}`` for one builder (the function behind the command line)."""
    if builder == "seedtts":
        if not meta:
            raise SystemExit("seedtts: expected --meta <path of a Seed-TTS-eval meta.lst>")
        items = read_seedtts_meta(meta, language=language)
        return {name or "seedtts": (items, _info("seedtts", meta, items, language=language))}
    if not manifest:
        raise SystemExit(f"{builder}: expected --manifest <path of a corpus manifest.jsonl>")
    from ns2.data.manifest import read_manifest

    utts = read_manifest(manifest)
    if builder == "synthetic":
        secs = float(prompt_seconds[0])
        items = build_synthetic(utts, prompt_seconds=secs, seed=seed, split=split or "test")
        return {name or "synthetic": (items, _info("synthetic", manifest, items, seed=seed, split=split, prompt_seconds=secs))}
    if builder == "singing":
        secs = float(prompt_seconds[0])
        base = name or "singing"
        return {
            f"{base}-{kind}-prompt": (items, _info("singing", manifest, items, seed=seed, split=split, prompt_kind=kind,
                                                   prompt_seconds=secs))
            for kind, items in build_singing(utts, prompt_seconds=secs, seed=seed, split=split or "test").items()
        }
    if builder == "ns2":
        lists = build_ns2(utts, n_speakers=speakers, per_speaker=per_speaker, prompt_seconds=prompt_seconds,
                          seed=seed, split=split, min_seconds=min_seconds or 0.0, max_seconds=max_seconds)
        base = name or "ns2"
        return {
            f"{base}-{_fmt_seconds(s)}": (items, _info("ns2", manifest, items, seed=seed, split=split, speakers=speakers,
                                                       per_speaker=per_speaker, prompt_seconds=s,
                                                       min_seconds=min_seconds, max_seconds=max_seconds))
            for s, items in lists.items()
        }
    if builder == "valle":
        secs = float(prompt_seconds[0])
        lo = 4.0 if min_seconds is None else min_seconds
        hi = 10.0 if max_seconds is None else max_seconds
        lists = build_valle(utts, prompt_seconds=secs, min_seconds=lo, max_seconds=hi, seed=seed, split=split)
        base = name or "valle"
        return {
            f"{base}-{mode.replace('_', '-')}": (items, _info("valle", manifest, items, seed=seed, split=split, mode=mode,
                                                              prompt_seconds=secs, min_seconds=lo, max_seconds=hi))
            for mode, items in lists.items()
        }
    raise SystemExit(f"unknown builder {builder!r}; expected synthetic, singing, ns2, valle or seedtts")


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    p = argparse.ArgumentParser(prog="python -m ns2.eval.protocols", description=__doc__.split("\n\n")[0])
    p.add_argument("builder", choices=["synthetic", "singing", "ns2", "valle", "seedtts"])
    p.add_argument("--manifest", help="corpus manifest (prepared/manifest.jsonl or raw.jsonl)")
    p.add_argument("--meta", help="Seed-TTS-eval meta.lst (seedtts)")
    p.add_argument("--out", help="output list path (builders that make one list)")
    p.add_argument("--out-dir", help="output folder (one <name>-<variant>.jsonl per list)")
    p.add_argument("--name", help="list name (default: the builder's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test", help="manifest split to draw from; 'any' for all")
    p.add_argument("--speakers", type=int, default=40, help="ns2: number of speakers")
    p.add_argument("--per-speaker", type=int, default=15, help="ns2: targets per speaker")
    p.add_argument("--prompt-seconds", type=float, nargs="+", default=None,
                   help="prompt lengths (ns2 default: 3 5 10; others: 3)")
    p.add_argument("--min-seconds", type=float, default=None, help="shortest target (valle default 4)")
    p.add_argument("--max-seconds", type=float, default=None, help="longest target (valle default 10)")
    p.add_argument("--language", default="en-us", help="seedtts: language code of the items")
    a = p.parse_args(argv)
    secs = a.prompt_seconds or ([3.0, 5.0, 10.0] if a.builder == "ns2" else [3.0])
    lists = build_lists(a.builder, manifest=a.manifest, meta=a.meta, seed=a.seed,
                        split=None if a.split == "any" else a.split, name=a.name, speakers=a.speakers,
                        per_speaker=a.per_speaker, prompt_seconds=secs, min_seconds=a.min_seconds,
                        max_seconds=a.max_seconds, language=a.language)
    if a.out and len(lists) != 1:
        raise SystemExit(f"{a.builder} makes {len(lists)} lists; pass --out-dir instead of --out")
    if not a.out and not a.out_dir:
        raise SystemExit("expected --out <list.jsonl> or --out-dir <folder>")
    written = {}
    for list_name, (items, info) in lists.items():
        path = Path(a.out) if a.out else Path(a.out_dir) / f"{list_name}.jsonl"
        write_protocol(path, items, info)
        print(f"{path}: {len(items)} items, {len({i.speaker for i in items})} speakers")
        written[list_name] = path
    return written


if __name__ == "__main__":
    main()
