"""The report: test set x system x metric with mean, 95 % bootstrap CI, n and n_failed; paired differences.

Written into the evaluation's output folder (every file atomically):

- ``summary.csv``: one row per (test set, system, metric key): ``mean, ci_low, ci_high, n, n_failed,
  n_nan, n_skipped, n_unscored, n_items`` plus ``backbone``, ``fallback_for`` and ``higher_is_better``;
- ``pairs.csv``: paired-bootstrap differences ``system - baseline`` over the items both scored;
- ``report.md``: the same as tables, with notes (fallbacks, skipped metrics and why, failures);
- ``plots/<metric>.png``: one bar chart per metric key (systems x test sets, CI as error bars);
- ``provenance.json``: commit, configuration, test lists (sha256), systems, metrics with their
  backbones and checksums, seeds, versions, shards and record counts.

Counting, per (test set, system, metric) over the list's items: ``n`` finite values (averaged);
``n_failed`` items whose synthesis failed (missing output, exception, unusable audio) or whose metric
raised; ``n_nan`` values that are undefined by definition (e.g. pitch statistics of unvoiced audio);
``n_skipped`` items where an input the metric needs does not exist (reasons in the notes);
``n_unscored`` items without a record yet (an unfinished run). They add up to ``n_items``.

WER metrics give three rows per normaliser: ``<metric>/<norm>`` (mean of per-utterance WERs),
``<metric>/<norm>/corpus`` (total errors / total reference words, ratio bootstrap) and
``<metric>/<norm>/frac_gt_50`` (share of utterances above 50 %).
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ns2.eval.records import read_records, to_json
from ns2.eval.testset import TestSet
from ns2.metrics.stats import bootstrap_ci, bootstrap_ratio_ci, paired_bootstrap_ci
from ns2.utils.io import atomic_open, write_json

__all__ = ["SUMMARY_COLUMNS", "PAIR_COLUMNS", "pair_rows", "summary_rows", "write_report"]

SUMMARY_COLUMNS = ("test_set", "system", "metric", "mean", "ci_low", "ci_high", "n", "n_failed", "n_nan",
                   "n_skipped", "n_unscored", "n_items", "group", "backbone", "fallback_for", "higher_is_better")
PAIR_COLUMNS = ("test_set", "system", "baseline", "metric", "mean_diff", "ci_low", "ci_high", "n", "n_nan",
                "n_only_system", "n_only_baseline", "p_diff_gt_0", "higher_is_better", "better")
NAN = float("nan")
#: Real-time factor (synthesis seconds / output seconds, measured by the harness around ``synthesize``) as
#: one more row per system; not recorded for systems that look their outputs up (ground truth, folders).
SPEED = {"name": "speed", "keys": ["rtf"], "backbone": "wall clock of the scoring machine", "requested_as": [],
         "higher_is_better": {"rtf": False}}


# --- per-item outcome ---------------------------------------------------------------------------
def _outcome(rec: Mapping[str, Any] | None, metric: str, key: str) -> tuple[str, float]:
    """("value"|"nan"|"failed"|"skipped"|"unscored", value) of one item for one key."""
    if rec is None:
        return "unscored", NAN
    if rec.get("status") != "ok" or metric in (rec.get("metric_errors") or {}):
        return "failed", NAN
    if metric == SPEED["name"]:  # the record's own timing, not a metric's score
        v = rec.get(key)
        return ("skipped", NAN) if v is None else ("value", float(v))
    if metric in (rec.get("skipped") or {}):
        return "skipped", NAN
    vals = (rec.get("scores") or {}).get(metric)
    if vals is None or key not in vals:
        return "skipped", NAN
    v = vals[key]
    v = NAN if v is None else float(v)
    return ("value" if math.isfinite(v) else "nan"), v


def _counts(outcomes: Sequence[str]) -> dict[str, int]:
    return {
        "n": outcomes.count("value"), "n_failed": outcomes.count("failed"), "n_nan": outcomes.count("nan"),
        "n_skipped": outcomes.count("skipped"), "n_unscored": outcomes.count("unscored"), "n_items": len(outcomes),
    }


def _metric_rows(ts: TestSet, label: str, recs: Mapping[str, Mapping[str, Any]], m: Mapping[str, Any],
                 boot: Mapping[str, Any], fail_threshold: float) -> list[dict[str, Any]]:
    base = {"test_set": ts.name, "system": label, "group": m["name"], "backbone": m["backbone"],
            "fallback_for": ";".join(a for a in m.get("requested_as", []) if a != m["name"])}
    rows = []
    for key in m["keys"]:
        got = [_outcome(recs.get(it.id), m["name"], key) for it in ts.items]
        kinds = [k for k, _ in got]
        vals = np.array([v for _, v in got], dtype=np.float64)
        direction = m.get("higher_is_better", {}).get(key)
        ci = bootstrap_ci(vals, **boot)
        rows.append({**base, "metric": key, "mean": ci["mean"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"],
                     **_counts(kinds), "higher_is_better": direction})
        if not m.get("is_wer"):
            continue
        ok = [recs[it.id] for it, k in zip(ts.items, kinds) if k == "value"]
        errs = [float(r["scores"][m["name"]][f"{key}/errors"]) for r in ok]
        words = [float(r["scores"][m["name"]][f"{key}/ref_words"]) for r in ok]
        ratio = bootstrap_ratio_ci(errs, words, **boot)
        rows.append({**base, "metric": f"{key}/corpus", "mean": ratio["ratio"], "ci_low": ratio["ci_low"],
                     "ci_high": ratio["ci_high"], **_counts(kinds), "higher_is_better": False})
        over = np.where(np.isfinite(vals), (vals > fail_threshold).astype(np.float64), NAN)
        ci = bootstrap_ci(over, **boot)
        rows.append({**base, "metric": f"{key}/frac_gt_50", "mean": ci["mean"], "ci_low": ci["ci_low"],
                     "ci_high": ci["ci_high"], **_counts(kinds), "higher_is_better": False})
    return rows


def summary_rows(sets: Sequence[TestSet], labels: Sequence[str], records: Mapping[tuple[str, str], Mapping[str, Any]],
                 metrics: Sequence[Mapping[str, Any]], boot: Mapping[str, Any], fail_threshold: float = 0.5) -> list[dict]:
    """The long table (see the module docstring); ``records[(test set, label)] = {id: record}``."""
    rows: list[dict] = []
    for ts in sets:
        for label in labels:
            for m in metrics:
                rows.extend(_metric_rows(ts, label, records.get((ts.name, label), {}), m, boot, fail_threshold))
    return rows


def _per_item(ts: TestSet, recs: Mapping[str, Any], metric: str, key: str, fail_threshold: float | None) -> dict[str, float]:
    """``{id: value}`` over items the system produced (NaN kept: counted by the paired bootstrap)."""
    out = {}
    for it in ts.items:
        kind, v = _outcome(recs.get(it.id), metric, key)
        if kind in ("value", "nan"):
            out[it.id] = v if fail_threshold is None or not math.isfinite(v) else float(v > fail_threshold)
    return out


def pair_rows(sets: Sequence[TestSet], labels: Sequence[str], records: Mapping[tuple[str, str], Mapping[str, Any]],
              metrics: Sequence[Mapping[str, Any]], boot: Mapping[str, Any], pairs: str = "all",
              fail_threshold: float = 0.5) -> list[dict]:
    """Paired bootstrap of ``system - baseline`` per key (``pairs``: ``all`` ordered pairs i < j with the
    earlier system as baseline, ``first``: every system against the first, or a system's label: every
    other system against that one, e.g. ``ns2``)."""
    if pairs not in ("all", "first", "none") and pairs not in labels:
        raise ValueError(f"report.pairs: expected all, first, none or one of the systems {list(labels)}, got {pairs!r}")
    if pairs == "none" or len(labels) < 2:
        return []
    if pairs == "all":
        combos = list(combinations(labels, 2))
    else:
        base = labels[0] if pairs == "first" else pairs
        combos = [(base, b) for b in labels if b != base]
    rows = []
    for ts in sets:
        for baseline, system in combos:
            ra, rb = records.get((ts.name, system), {}), records.get((ts.name, baseline), {})
            for m in metrics:
                for key in m["keys"]:
                    variants = [(key, None)] + ([(f"{key}/frac_gt_50", fail_threshold)] if m.get("is_wer") else [])
                    for name, thr in variants:
                        res = paired_bootstrap_ci(_per_item(ts, ra, m["name"], key, thr),
                                                  _per_item(ts, rb, m["name"], key, thr), **boot)
                        hib = False if thr is not None else m.get("higher_is_better", {}).get(key)
                        better = ""
                        if hib is not None and math.isfinite(res["ci_low"]):
                            if res["ci_low"] > 0 or res["ci_high"] < 0:
                                up = res["ci_low"] > 0
                                better = system if up == bool(hib) else baseline
                            else:
                                better = "neither"
                        rows.append({
                            "test_set": ts.name, "system": system, "baseline": baseline, "metric": name,
                            "mean_diff": res["mean_diff"], "ci_low": res["ci_low"], "ci_high": res["ci_high"],
                            "n": res["n"], "n_nan": res["n_nan"], "n_only_system": res["n_only_a"],
                            "n_only_baseline": res["n_only_b"], "p_diff_gt_0": res["frac_resamples_gt_0"],
                            "higher_is_better": hib, "better": better,
                        })
    return rows


# --- writers ------------------------------------------------------------------------------------
def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "nan" if not math.isfinite(x) else f"{x:.{digits}g}"
    return str(x)


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k), 6) if isinstance(r.get(k), float) else r.get(k) for k in columns})
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it (reports travel with the repository)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _cell(r: Mapping[str, Any]) -> str:
    if not r["n"]:
        return f"– (n=0, failed {r['n_failed']}, skipped {r['n_skipped']})"
    extra = [f"failed {r['n_failed']}"] if r["n_failed"] else []
    if r["n_nan"]:
        extra.append(f"nan {r['n_nan']}")
    if r["n_skipped"]:
        extra.append(f"skipped {r['n_skipped']}")
    if r["n_unscored"]:
        extra.append(f"unscored {r['n_unscored']}")
    tail = f", {', '.join(extra)}" if extra else ""
    return f"{_fmt(r['mean'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] (n={r['n']}{tail})"


def _arrow(h: Any) -> str:
    return "↑" if h is True else "↓" if h is False else ""


def _markdown(sets: Sequence[TestSet], labels: Sequence[str], rows: Sequence[dict], prow: Sequence[dict],
              prov: Mapping[str, Any], notes: Sequence[str], confidence: float) -> str:
    pct = f"{confidence * 100:g} %"
    lines = [f"# Evaluation report: {prov['protocol']['name']}", "",
             f"Commit `{prov['commit']}`, written {prov['written']}. Systems: {', '.join(labels)}. "
             f"Cells: mean [{pct} bootstrap CI] (n = items averaged; failed, nan, skipped and unscored items "
             f"are counted, never averaged). ↑ higher is better, ↓ lower is better.", ""]
    fb = [m for m in prov["metrics"] if m["fallback"]]
    if fb:
        lines += ["**Offline fallbacks in use** (values are not comparable with published numbers): "
                  + "; ".join(f"`{m['name']}` for {', '.join('`%s`' % a for a in m['requested_as'] if a != m['name'])}"
                              for m in fb), ""]
    for ts in sets:
        lines += [f"## {ts.name}", "", f"{len(ts.items)} items"
                  + (f" (first {len(ts.items)} of {ts.total_items})" if len(ts.items) < ts.total_items else "")
                  + f", list `{_shown(ts.path)}` (sha256 {ts.sha256[:12]}).", ""]
        lines.append("| metric | backbone | " + " | ".join(labels) + " |")
        lines.append("|---|---|" + "---|" * len(labels))
        keys = list(dict.fromkeys(r["metric"] for r in rows if r["test_set"] == ts.name))
        for key in keys:
            by = {r["system"]: r for r in rows if r["test_set"] == ts.name and r["metric"] == key}
            first = next(iter(by.values()))
            lines.append(f"| {key} {_arrow(first['higher_is_better'])} | {first['backbone']} | "
                         + " | ".join(_cell(by[l]) if l in by else "" for l in labels) + " |")
        tp = [p for p in prow if p["test_set"] == ts.name]
        if tp:
            combos = list(dict.fromkeys((p["system"], p["baseline"]) for p in tp))
            lines += ["", f"Paired differences (system − baseline over items both scored, {pct} paired bootstrap CI; "
                      "**bold**: the interval excludes 0):", "",
                      "| metric | " + " | ".join(f"{s} − {b}" for s, b in combos) + " |",
                      "|---|" + "---|" * len(combos)]
            for key in dict.fromkeys(p["metric"] for p in tp):
                cells = []
                for s, b in combos:
                    p = next((p for p in tp if p["metric"] == key and p["system"] == s and p["baseline"] == b), None)
                    if p is None or not p["n"]:
                        cells.append("–")
                        continue
                    txt = f"{_fmt(p['mean_diff'])} [{_fmt(p['ci_low'])}, {_fmt(p['ci_high'])}] (n={p['n']})"
                    cells.append(f"**{txt}**" if p["better"] not in ("", "neither") else txt)
                lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Provenance", "", "`provenance.json` holds the commit, the resolved configuration, the test lists "
              "(sha256), the systems, every metric's backbone with its checksums or package version, the seeds "
              "and library versions. Per-utterance records: `records/<test set>/<system>*.jsonl`.", ""]
    bk = [f"`{b['name']}`: " + (f"pip `{b['package']}` {b.get('version', '?')}" if b.get("package")
                                 else ", ".join(f"{f} sha256 {h[:12]}" for f, h in (b.get("files") or {}).items()) or "no record")
          for b in prov["backbones"]]
    lines += ["Backbones: " + "; ".join(bk) + ".", ""]
    return "\n".join(lines)


def _plot(path: Path, key: str, rows: Sequence[dict], sets: Sequence[TestSet], labels: Sequence[str], fmt: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 1.2 + 0.9 * len(sets) * len(labels)), 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(labels))
    for j, label in enumerate(labels):
        xs, ys, lo, hi = [], [], [], []
        for i, ts in enumerate(sets):
            r = next((r for r in rows if r["test_set"] == ts.name and r["system"] == label and r["metric"] == key), None)
            if r is None or not r["n"]:
                continue
            xs.append(i + (j - (len(labels) - 1) / 2) * width)
            ys.append(r["mean"])
            lo.append(r["mean"] - r["ci_low"])
            hi.append(r["ci_high"] - r["mean"])
        if xs:
            ax.bar(xs, ys, width=width * 0.95, yerr=[lo, hi], capsize=3, label=label)
    ax.set_xticks(range(len(sets)))
    ax.set_xticklabels([ts.name for ts in sets])
    hib = next((r["higher_is_better"] for r in rows if r["metric"] == key), None)
    ax.set_title(f"{key} {_arrow(hib)}".strip(), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if len(labels) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=100)


# --- provenance ---------------------------------------------------------------------------------
def _backbones(metrics: Sequence[Mapping[str, Any]], checksums: str | None) -> list[dict[str, Any]]:
    import importlib.metadata as md

    from ns2.metrics.backbones import CHECKSUMS_PATH, get_backbone, read_checksums

    manifest = read_checksums(checksums or CHECKSUMS_PATH)
    out = []
    for name in dict.fromkeys(m["backbone"] for m in metrics):
        spec = get_backbone(name)
        entry: dict[str, Any] = {"name": name, "description": spec.description}
        if spec.bundled_in:
            entry["package"] = spec.bundled_in
            dist = {"parselmouth": "praat-parselmouth"}.get(spec.bundled_in, spec.bundled_in)
            try:
                entry["version"] = md.version(dist)
            except md.PackageNotFoundError:
                entry["version"] = None
        else:
            rec = manifest.get(name) or {}
            entry.update(source=rec.get("source") or spec.hf_repo, files=rec.get("files") or {})
        out.append(entry)
    return out


def _load_runs(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "runs").glob("shard-*.json"))]


def _notes(sets: Sequence[TestSet], labels: Sequence[str], records: Mapping, absent: Mapping[str, str]) -> list[str]:
    notes = []
    for name, why in absent.items():
        notes.append(f"optional metric `{name}` not scored: {why}")
    for ts in sets:
        for label in labels:
            recs = records.get((ts.name, label), {})
            failed = [r for r in recs.values() if r.get("status") != "ok"]
            if failed:
                shown = "; ".join(f"`{r['id']}`: {r.get('error')}" for r in failed[:3])
                notes.append(f"{ts.name} / {label}: {len(failed)} failed item(s), e.g. {shown}")
            reasons: dict[tuple[str, str], int] = {}
            for r in recs.values():
                for m, why in (r.get("skipped") or {}).items():
                    reasons[(m, why)] = reasons.get((m, why), 0) + 1
                for m, why in (r.get("metric_errors") or {}).items():
                    reasons[(m, f"error: {why}")] = reasons.get((m, f"error: {why}"), 0) + 1
            for (m, why), n in sorted(reasons.items()):
                notes.append(f"{ts.name} / {label}: `{m}` not scored on {n} item(s): {why}")
            missing = sum(1 for it in ts.items if it.id not in recs)
            if missing:
                notes.append(f"{ts.name} / {label}: {missing} item(s) not scored yet (unfinished run)")
    return notes


def write_report(out: str | Path, sets: Sequence[TestSet], labels: Sequence[str], conf: Mapping[str, Any]) -> dict[str, str]:
    """Gather the records under ``out`` and write the report files; returns ``{kind: path}``."""
    from ns2.utils.provenance import git_commit

    out = Path(out)
    rcfg = dict(conf.get("report") or {})
    confidence = float(rcfg.get("confidence", 0.95))
    boot = {"n_resamples": int(rcfg.get("n_resamples", 1000)), "confidence": confidence, "seed": int(rcfg.get("seed", 0))}
    thr = float((conf.get("wer") or {}).get("fail_threshold", 0.5))
    runs = _load_runs(out)
    if not runs:
        raise FileNotFoundError(f"{out}/runs: no run information; score first (stage=all or stage=score)")
    metrics: dict[str, dict] = {}
    absent: dict[str, str] = {}
    systems: dict[str, Any] = {}
    for r in runs:
        for m in r["metrics"]:
            metrics.setdefault(m["name"], m)
        absent.update(r.get("absent_metrics") or {})
        systems.update(r.get("systems") or {})
    absent = {k: v for k, v in absent.items() if k not in metrics}
    mlist = list(metrics.values())
    records, dups = {}, {}
    for ts in sets:
        for label in labels:
            recs, dropped = read_records(out / "records" / ts.name, label)
            wanted = {it.id for it in ts.items}
            records[(ts.name, label)] = {k: v for k, v in recs.items() if k in wanted}
            dups[f"{ts.name}/{label}"] = {"records": len(recs), "duplicates_dropped": dropped,
                                          "outside_list": len(set(recs) - wanted)}
    rows = summary_rows(sets, labels, records, mlist + [SPEED], boot, thr)
    prow = pair_rows(sets, labels, records, mlist + [SPEED], boot, str(rcfg.get("pairs", "all")), thr)
    prov = {
        "commit": git_commit(), "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "protocol": {"name": (conf.get("protocol") or {}).get("name"),
                     "audio_root": (conf.get("protocol") or {}).get("audio_root"),
                     "manifest": (conf.get("protocol") or {}).get("manifest"),
                     "lists": [{"name": ts.name, "path": _shown(ts.path), "sha256": ts.sha256, "items": len(ts.items),
                                "items_in_list": ts.total_items, "info": ts.info} for ts in sets]},
        "systems": systems, "metrics": mlist, "absent_metrics": absent,
        "backbones": _backbones(mlist, conf.get("checksums")),
        "seeds": {"seed": conf.get("seed"), "item_seed": "(seed * 1000003 + crc32(id)) mod 2^31",
                  "bootstrap": boot, "lists": {ts.name: ts.info.get("arguments", {}).get("seed") for ts in sets}},
        "fallbacks": bool(conf.get("fallbacks")), "records": dups,
        "runs": [{k: r.get(k) for k in ("shard", "commit", "started", "finished", "versions", "sim_r_codec", "aligner")}
                 for r in runs],
        "config": conf,
    }
    notes = _notes(sets, labels, records, absent)
    paths = {"summary": out / "summary.csv", "pairs": out / "pairs.csv", "markdown": out / "report.md",
             "provenance": out / "provenance.json"}
    _write_csv(paths["summary"], rows, SUMMARY_COLUMNS)
    _write_csv(paths["pairs"], prow, PAIR_COLUMNS)
    write_json(paths["provenance"], json.loads(json.dumps(to_json(prov), default=str)))
    with atomic_open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(_markdown(sets, labels, rows, prow, prov, notes, confidence))
    if rcfg.get("plots", True):
        fmt = str(rcfg.get("plot_format", "png"))
        for key in dict.fromkeys(r["metric"] for r in rows):
            _plot(out / "plots" / f"{key.replace('/', '__')}.{fmt}", key, rows, sets, labels, fmt)
        paths["plots"] = out / "plots"
    return {k: str(v) for k, v in paths.items()}
