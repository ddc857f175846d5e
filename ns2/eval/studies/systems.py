"""What an ``ns2 eval`` / ``ns2 compare`` report does not tabulate: completion, length and speed per system.

Read from the per-utterance records of an evaluation's output folder (``records/<test set>/<system>``)::

    python -m ns2.eval.studies.systems <eval out dir> --out results.json [--reference groundtruth]

Per test set and system, over the list's items:

- ``completed``: share of items synthesized (``status: ok``); ``failures``: the failed items counted by
  reason (the error's text up to its first ``:``, e.g. ``no EOS`` for a VALL-E item whose AR reached its
  length guard); ``eos_rate``: share of items *not* failed with ``no EOS`` (1.0 for systems without an
  end token);
- length against the reference system's output of the same item (the ground truth by default), over
  the items both completed: ``length_ratio`` (mean of output/reference seconds), ``length_abs_log_ratio``
  (mean |ln(output/reference)|: 0.1 = about 10 % off either way), ``length_ratio_median`` / ``_min`` /
  ``_max``, ``length_within_20pct`` (share of pairs with output/reference in [1/1.2, 1.2]) and
  ``length_mae_s`` (mean |difference|);
- ``rtf``: mean and median of the synthesis real-time factor (wall seconds / output seconds) the
  records carry (look-up systems such as the ground truth have none).

The report's own table rows (``summary.csv``) and paired differences (``pairs.csv``) are copied under
``summary`` and ``pairs`` so one file holds the study; ``provenance`` keeps the report's commit,
systems and backbones.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ns2.eval.records import read_records
from ns2.utils.provenance import emit_results, git_commit

__all__ = ["system_stats", "study"]

NO_EOS = "no EOS"


def _reason(error: Any) -> str:
    text = str(error or "unknown")
    return text.split(":", 1)[0].strip() or "unknown"


def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def system_stats(records: Mapping[str, Mapping[str, Any]], reference: Mapping[str, Mapping[str, Any]] | None,
                 n_items: int) -> dict[str, Any]:
    """Completion, length against ``reference`` (records by id) and RTF of one system's ``records`` (by id)."""
    if n_items <= 0:
        raise ValueError(f"n_items={n_items}; expected the number of items of the test list (> 0)")
    ok = {k: r for k, r in records.items() if r.get("status") == "ok"}
    failures = Counter(_reason(r.get("error")) for r in records.values() if r.get("status") != "ok")
    out: dict[str, Any] = {"n_items": n_items, "n_records": len(records), "n_completed": len(ok),
                           "completed": len(ok) / n_items, "failures": dict(failures),
                           "eos_rate": 1.0 - failures.get(NO_EOS, 0) / n_items}
    ratios, diffs = [], []
    for k, r in ok.items():
        ref = (reference or {}).get(k)
        if not ref or ref.get("status") != "ok":
            continue
        a, b = r.get("output_seconds"), ref.get("output_seconds")
        if a and b and a > 0 and b > 0:
            ratios.append(a / b)
            diffs.append(abs(a - b))
    out.update(n_length_pairs=len(ratios), length_ratio=_mean(ratios),
               length_abs_log_ratio=_mean([abs(math.log(x)) for x in ratios]),
               length_ratio_median=float(np.median(ratios)) if ratios else None,
               length_ratio_min=min(ratios, default=None), length_ratio_max=max(ratios, default=None),
               length_within_20pct=_mean([float(abs(math.log(x)) <= math.log(1.2)) for x in ratios]),
               length_mae_s=_mean(diffs))
    rtf = [float(r["rtf"]) for r in ok.values() if r.get("rtf") is not None]
    out.update(rtf_mean=_mean(rtf), rtf_median=float(np.median(rtf)) if rtf else None)
    return out


def _csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def study(out_dir: str | Path, reference: str = "groundtruth") -> dict[str, Any]:
    """The study's results of the evaluation in ``out_dir`` (module docstring)."""
    out = Path(out_dir)
    prov_file = out / "provenance.json"
    if not prov_file.is_file():
        raise FileNotFoundError(f"{out}: no provenance.json; expected the output folder of a finished `ns2 eval` / `ns2 compare`")
    prov = json.loads(prov_file.read_text())
    lists = (prov.get("protocol") or {}).get("lists") or []
    systems = list(prov.get("systems") or {})
    if not lists or not systems:
        raise ValueError(f"{prov_file}: no test lists or no systems recorded; expected the provenance of an `ns2 eval` report")
    per_set: dict[str, Any] = {}
    for ts in lists:
        recs = {label: read_records(out / "records" / ts["name"], label)[0] for label in systems}
        ref = recs.get(reference)
        per_set[ts["name"]] = {label: system_stats(r, ref if label != reference else None, int(ts["items"]))
                               for label, r in recs.items()}
    return {"eval_dir": str(out), "reference": reference, "commit": git_commit(), "report_commit": prov.get("commit"),
            "systems": systems, "per_test_set": per_set, "summary": _csv(out / "summary.csv"),
            "pairs": _csv(out / "pairs.csv"), "provenance": prov}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ns2.eval.studies.systems", description=__doc__.splitlines()[0])
    ap.add_argument("eval_dir", help="the output folder of a finished `ns2 eval` or `ns2 compare`")
    ap.add_argument("--out", default=None, help="results.json to write")
    ap.add_argument("--reference", default="groundtruth", help="the system whose output lengths are the reference")
    a = ap.parse_args(argv)
    try:
        res = study(a.eval_dir, a.reference)
    except (FileNotFoundError, ValueError, json.JSONDecodeError) as e:
        raise SystemExit(f"error: {e}") from None
    flat = {f"{ts}/{sys}/{k}": v for ts, d in res["per_test_set"].items() for sys, s in d.items()
            for k, v in s.items() if not isinstance(v, dict)}
    emit_results(flat)
    if a.out:
        from ns2.utils.io import write_json

        write_json(a.out, res)


if __name__ == "__main__":
    main()
