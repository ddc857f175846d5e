"""Test lists: one schema for every protocol, read and written only through this module.

A test list is a JSONL file, one :class:`ProtocolItem` per line, plus a sidecar ``<list>.info.json``
that says how it was built (builder, manifest, seed, counts). Lists hold paths, never audio: audio
paths are relative to the list's *audio root* (the folder of the corpus manifest it was built from,
given again at evaluation time by the protocol config), or absolute.

Fields
------
id            unique item id (the target utterance's id; ``<id>`` names a system's output file)
text          the target text to synthesize
prompt_wav    the speech prompt's audio file
speaker       speaker id of the prompt (and target)
prompt_text   transcript of the prompt *as cropped*; null when unknown (a crop without word timings)
prompt_start  crop start in seconds into ``prompt_wav`` (null: 0)
prompt_end    crop end in seconds (null: end of file)
gt_wav        optional ground-truth recording of ``text`` by ``speaker``
language      phonemizer language code
mode          ``cross_sentence`` (prompt from another utterance) or ``continuation`` (prompt = the
              start of the target utterance itself; ``text`` is then the whole utterance's transcript)
prompt_id     manifest id of the prompt's source utterance (for its phoneme alignment), optional
gt_id         manifest id of the ground truth (defaults to ``id`` when ``gt_wav`` is set), optional
extra         free-form (nominal prompt length, source text of a cropped prompt, ...)

Tab-separated files with a header row naming these fields are read too (``.tsv``), and Seed-TTS-eval
``meta.lst`` files (``id|prompt text|prompt wav|target text[|gt wav]``, see :func:`read_seedtts_meta`).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ns2.utils.io import atomic_open, write_json
from ns2.utils.schema import check_fields

__all__ = [
    "MODES",
    "ProtocolError",
    "ProtocolItem",
    "info_path",
    "load_item_audio",
    "read_protocol",
    "read_seedtts_meta",
    "write_protocol",
]

MODES = ("cross_sentence", "continuation")


class ProtocolError(ValueError):
    """A test list (or one of its lines) that does not follow the schema."""


@dataclass(frozen=True)
class ProtocolItem:
    id: str
    text: str
    prompt_wav: str
    speaker: str
    prompt_text: str | None = None
    prompt_start: float | None = None
    prompt_end: float | None = None
    gt_wav: str | None = None
    language: str = "en-us"
    mode: str = "cross_sentence"
    prompt_id: str | None = None
    gt_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "ProtocolItem":
        def bad(name: str, expected: str) -> ProtocolError:
            return ProtocolError(f"item {self.id!r}: field {name!r} {expected}")

        if not isinstance(self.id, str) or not self.id or "/" in self.id or self.id.strip() != self.id:
            raise ProtocolError(f"item id: expected a non-empty string without '/' or edge spaces, got {self.id!r}")
        for name in ("text", "prompt_wav", "speaker"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise bad(name, "must be a non-empty string")
        for name in ("prompt_text", "gt_wav", "prompt_id", "gt_id"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise bad(name, f"must be a string or null, got {type(v).__name__}")
        for name in ("prompt_start", "prompt_end"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise bad(name, f"must be a number of seconds >= 0 or null, got {v!r}")
        if self.prompt_end is not None and self.prompt_end <= (self.prompt_start or 0.0):
            raise bad("prompt_end", f"must be after prompt_start ({self.prompt_start}), got {self.prompt_end}")
        if self.mode not in MODES:
            raise bad("mode", f"must be one of {MODES}, got {self.mode!r}")
        if not isinstance(self.extra, dict):
            raise bad("extra", "must be an object")
        return self

    @property
    def reference_id(self) -> str | None:
        """Manifest id of the ground truth: ``gt_id``, else ``id`` when a ground truth exists."""
        return self.gt_id or (self.id if self.gt_wav else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; null optional fields and the defaults of ``language``/``mode`` are kept explicit."""
        out = dataclasses.asdict(self)
        if not out["extra"]:
            del out["extra"]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProtocolItem":
        check_fields(d, cls, ("id", "text", "prompt_wav", "speaker"), ProtocolError, "item", "item")
        d = {k: v for k, v in d.items() if not (k in ("language", "mode") and v is None)}
        return cls(**d).validate()

    def path(self, name: str, audio_root: str | os.PathLike | None) -> Path | None:
        """Absolute path of ``prompt_wav`` or ``gt_wav`` (relative ones resolved against ``audio_root``)."""
        value = getattr(self, name)
        if value is None:
            return None
        p = Path(value).expanduser()
        if p.is_absolute() or audio_root is None:
            return p
        return Path(audio_root) / p


def info_path(list_path: str | os.PathLike) -> Path:
    """``<list>.info.json`` beside a list (``foo.jsonl`` -> ``foo.info.json``)."""
    p = Path(list_path)
    return p.with_name(p.name.rsplit(".", 1)[0] + ".info.json")


def _check_unique(items: list[ProtocolItem], where: str) -> list[ProtocolItem]:
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise ProtocolError(f"{where}: duplicate item id {it.id!r}")
        seen.add(it.id)
    return items


def read_seedtts_meta(path: str | os.PathLike, language: str = "en-us") -> list[ProtocolItem]:
    """Items of a Seed-TTS-eval ``meta.lst``: ``id|prompt text|prompt wav|target text[|gt wav]`` per line.

    Audio paths stay as written (relative to the meta file's folder, the audio root to use). The
    speaker is unknown in this format: the prompt file's stem stands for it.
    """
    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"Seed-TTS-eval meta list not found: {path}")
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        f = line.rstrip("\r").split("|")
        if len(f) not in (4, 5):
            raise ProtocolError(
                f"{path}:{lineno}: expected 4 or 5 '|'-separated fields (id|prompt text|prompt wav|target text[|gt wav]), got {len(f)}"
            )
        gt = f[4].strip() if len(f) == 5 and f[4].strip() else None
        try:
            items.append(
                ProtocolItem(
                    id=f[0].strip(), text=f[3].strip(), prompt_wav=f[2].strip(), speaker=Path(f[2].strip()).stem,
                    prompt_text=f[1].strip() or None, gt_wav=gt, language=language,
                ).validate()
            )
        except ProtocolError as e:
            raise ProtocolError(f"{path}:{lineno}: {e}") from None
    return _check_unique(items, str(path))


def _read_tsv(path: Path) -> list[ProtocolItem]:
    items = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f, delimiter="\t"), 2):
            d: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items() if k is not None}
            for k in ("prompt_start", "prompt_end"):
                if d.get(k) is not None:
                    d[k] = float(d[k])
            if d.get("extra"):
                d["extra"] = json.loads(d["extra"])
            else:
                d.pop("extra", None)
            try:
                items.append(ProtocolItem.from_dict(d))
            except (ProtocolError, TypeError) as e:
                raise ProtocolError(f"{path}:{lineno}: {e}") from None
    return items


def read_protocol(path: str | os.PathLike) -> list[ProtocolItem]:
    """Read and validate a test list (``.jsonl``, ``.tsv`` or a Seed-TTS-eval ``.lst``)."""
    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"test list not found: {path} (build it with `python -m ns2.eval.protocols`)")
    if path.suffix == ".lst":
        return read_seedtts_meta(path)
    if path.suffix == ".tsv":
        return _check_unique(_read_tsv(path), str(path))
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ProtocolError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); expected a test list "
                            "(.jsonl, .tsv or .lst)") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(ProtocolItem.from_dict(json.loads(line)))
        except json.JSONDecodeError as e:
            raise ProtocolError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        except (ProtocolError, TypeError) as e:
            raise ProtocolError(f"{path}:{lineno}: {e}") from None
    return _check_unique(items, str(path))


def write_protocol(path: str | os.PathLike, items: Iterable[ProtocolItem], info: dict[str, Any] | None = None) -> Path:
    """Validate and write a list atomically (JSONL), and its ``.info.json`` sidecar when ``info`` is given."""
    items = _check_unique([it.validate() for it in items], str(path))
    with atomic_open(path, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it.to_dict(), ensure_ascii=False) + "\n")
    if info is not None:
        write_json(info_path(path), {**info, "items": len(items), "speakers": len({it.speaker for it in items})})
    return Path(path)


def load_item_audio(
    item: ProtocolItem, name: str, audio_root: str | os.PathLike | None
) -> tuple[np.ndarray, int]:
    """The ``prompt`` (cropped to ``prompt_start``/``prompt_end``) or ``gt`` audio of an item: ``([S] float32, sr)``.

    Multi-channel files are averaged to mono. Raises ``FileNotFoundError`` / ``ProtocolError`` (one line).
    """
    import soundfile as sf

    field_name = {"prompt": "prompt_wav", "gt": "gt_wav"}[name]
    path = item.path(field_name, audio_root)
    if path is None:
        raise ProtocolError(f"item {item.id!r}: no {field_name}")
    if not path.is_file():
        raise FileNotFoundError(f"item {item.id!r}: {field_name} not found: {path}")
    info = sf.info(str(path))
    start, stop = 0, info.frames
    if name == "prompt":
        if item.prompt_start is not None:
            start = int(round(item.prompt_start * info.samplerate))
        if item.prompt_end is not None:
            stop = min(info.frames, int(round(item.prompt_end * info.samplerate)))
        if stop <= start:
            raise ProtocolError(
                f"item {item.id!r}: prompt crop [{item.prompt_start}, {item.prompt_end}] s is outside {path} "
                f"({info.frames / info.samplerate:.2f} s)"
            )
    x, sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.mean(axis=1)), int(sr)
