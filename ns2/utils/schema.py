"""The field check shared by every one-JSON-object-per-line schema (manifests, test lists)."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence


def check_fields(d: Any, cls: type, required: Sequence[str], error: type[Exception], what: str, unit: str) -> None:
    """Raise ``error`` (one line) unless ``d`` is a dict holding every ``required`` field of dataclass ``cls``
    and no field it lacks. ``what`` names a record ("utterance"), ``unit`` a line of the file ("line")."""
    if not isinstance(d, dict):
        raise error(f"expected a JSON object per {unit}, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise error(f"{what} {d.get('id')!r}: unknown fields {unknown}; expected a subset of {sorted(known)}")
    missing = [k for k in required if k not in d]
    if missing:
        raise error(f"{what} {d.get('id')!r}: missing required fields {missing}")
