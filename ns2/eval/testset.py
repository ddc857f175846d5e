"""A protocol config -> its test sets (lists of items + where their audio and alignments live).

A protocol config (``configs/eval/protocol/*.yaml``) names one or more lists::

    name: synthetic
    audio_root: data/synthetic-small/prepared     # relative item paths are resolved here
    manifest: data/synthetic-small/prepared/manifest.jsonl   # phoneme durations for prosody (or null)
    lists:
      - {name: synthetic-small, path: eval/protocols/synthetic-small.jsonl}
    build: {builder: synthetic, manifest: ..., name: synthetic-small, seed: 0}   # how to make a missing list

A list entry may override ``audio_root``, ``manifest`` and ``build`` (protocols spanning corpora).

A list that does not exist is built with :func:`ns2.eval.protocols.build_lists` from ``build`` when
its manifest exists, else the error says which command builds it.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ns2.data.manifest import Utterance
from ns2.eval.protocol import ProtocolError, ProtocolItem, info_path, read_protocol, write_protocol

__all__ = ["TestSet", "load_test_sets"]

log = logging.getLogger(__name__)


@dataclass
class TestSet:
    """One test list with where its audio and alignments live."""

    __test__ = False  # not a pytest test class

    name: str
    path: Path
    items: list[ProtocolItem]
    audio_root: Path | None
    manifest: dict[str, Utterance] | None = None
    manifest_path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    total_items: int = 0  # before ``max_items``


def _build_missing(build: Mapping[str, Any], target: Path) -> None:
    from ns2.eval.protocols import build_lists

    args = {k: v for k, v in dict(build).items() if k != "builder"}
    if args.get("prompt_seconds") is not None and not isinstance(args["prompt_seconds"], (list, tuple)):
        args["prompt_seconds"] = [args["prompt_seconds"]]
    src = args.get("manifest") or args.get("meta")
    if not src or not Path(src).is_file():
        raise ProtocolError(
            f"test list {target} does not exist and its source {src} is missing: prepare the corpus first "
            f"(e.g. `ns2 prep data=synthetic data.size=small`) or build the list with `python -m ns2.eval.protocols`"
        )
    for name, (items, info) in build_lists(build["builder"], **args).items():
        path = target.parent / f"{name}.jsonl"
        write_protocol(path, items, info)
        log.info("built test list %s (%d items)", path, len(items))


def _manifest(path: Path | None, cache: dict[Path, Any]) -> dict[str, Utterance] | None:
    if path is None:
        return None
    if path not in cache:
        if path.is_file():
            from ns2.data.manifest import read_manifest

            cache[path] = {u.id: u for u in read_manifest(path)}
        else:
            log.warning("manifest %s not found: prosody needs phoneme durations (or prosody.aligner)", path)
            cache[path] = None
    return cache[path]


def load_test_sets(protocol: Mapping[str, Any], max_items: int | None = None) -> list[TestSet]:
    """Read (building when missing) every list of a protocol config; ``max_items`` keeps each list's first N.

    A list entry may set its own ``audio_root``, ``manifest`` and ``build`` (a protocol spanning corpora).
    """
    lists = protocol.get("lists") or []
    if not lists:
        raise ProtocolError(f"protocol {protocol.get('name')!r}: expected a non-empty 'lists' entry")
    cache: dict[Path, Any] = {}
    out, names = [], set()
    for entry in lists:
        name, path = str(entry["name"]), Path(entry["path"])
        if name in names:
            raise ProtocolError(f"protocol {protocol.get('name')!r}: list name {name!r} appears twice")
        names.add(name)
        root = entry.get("audio_root", protocol.get("audio_root"))
        mpath = entry.get("manifest", protocol.get("manifest"))
        build = entry.get("build", protocol.get("build"))
        if not path.is_file() and build:
            _build_missing(build, path)
        items = read_protocol(path)
        total = len(items)
        if max_items is not None:
            items = items[: int(max_items)]
        ipath = info_path(path)
        info = json.loads(ipath.read_text(encoding="utf-8")) if ipath.is_file() else {}
        mp = Path(mpath) if mpath else None
        out.append(TestSet(name, path, items, Path(root) if root else None, _manifest(mp, cache), mp, info,
                           hashlib.sha256(path.read_bytes()).hexdigest(), total))
    return out
