"""``prepare``: build a corpus's ``raw.jsonl`` and run the preparation stages into ``<root>/prepared``.

Outputs (each written atomically)::

    <root>/prepared/manifest.jsonl    the utterances that passed every stage
    <root>/prepared/quarantine.jsonl  {"id", "audio", "stage", "reason"} for every rejected item
                                      (the recipe's own <root>/quarantine.jsonl included)
    <root>/prepared/summary.json      hours, speakers, utterances, singing items, quarantine counts,
                                      per-stage timings
    <root>/prepared/stages/<stage>.jsonl  per-stage journals: a re-run skips everything finished

Audio paths of ``raw.jsonl`` (relative to ``<root>``) are rebased onto ``<root>/prepared`` before the
first stage, so every path in the prepared manifest resolves against its own folder.
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from ns2.data.manifest import Utterance, read_manifest, summarize, write_manifest
from ns2.data.stages import STAGES, StageContext, StageError, make_stage, run_stage, split_options
from ns2.utils.io import read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

DEFAULT_STAGES = ("audio", "phonemes", "durations", "f0")


def _rebase(utt: Utterance, root: Path, prepared: Path) -> Utterance:
    def move(p: str) -> str:
        return p if os.path.isabs(p) else Path(os.path.relpath(root / p, prepared)).as_posix()

    return utt.replace(audio=move(utt.audio), features={k: move(v) for k, v in utt.features.items()})


def reason_kind(reason: str) -> str:
    """The short class of a quarantine reason (the text before its first colon)."""
    return reason.split(":", 1)[0].strip()


def prepare(corpus: Any, root: str | os.PathLike, stages: Sequence[str] = DEFAULT_STAGES, sample_rate: int = 16000,
            hop_length: int = 200, num_workers: int = 1, durations_source: str = "corpus",
            textgrid_dir: str | os.PathLike | None = None, language: str = "en-us", **options: Any) -> dict[str, Any]:
    """Build ``corpus`` (``corpus.build(root, num_workers) -> raw.jsonl``; ``None`` to use an existing
    ``<root>/raw.jsonl``), run ``stages`` in order and write the prepared manifest; return the summary.

    ``options`` go to the stages that take them, e.g. ``expected_rates``, ``strict_rate``,
    ``strict_channels``, ``min_duration``, ``silence_db`` (audio), ``phone_map``, ``min_frames``
    (durations), ``pitch_floor``, ``pitch_ceiling`` (f0). An option no stage takes is an error.
    Worker processes are spawned: a script calling this with ``num_workers > 1`` needs an
    ``if __name__ == "__main__":`` guard.
    """
    t_start = time.perf_counter()
    root = Path(root).expanduser()
    prepared = root / "prepared"
    stages = [str(s) for s in stages]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise StageError(f"unknown stages {unknown}; expected some of {list(STAGES)}")
    options = {k: _plain(v) for k, v in options.items()}
    split_options(stages, options)
    if sample_rate % hop_length:
        log.warning("sample_rate %d is not a multiple of hop_length %d: frame_rate %.4f is fractional",
                    sample_rate, hop_length, sample_rate / hop_length)

    ctx = StageContext(prepared=str(prepared), root=str(root), sample_rate=int(sample_rate), hop_length=int(hop_length))
    stage_args = {"durations": {"source": durations_source, "textgrid_dir": str(textgrid_dir) if textgrid_dir else None},
                  "phonemes": {"language": language}}
    runners = [make_stage(name, **{**options, **stage_args.get(name, {})}) for name in stages]
    for stage in runners:  # settings errors surface before any work is done
        if callable(getattr(stage, "setup", None)):
            stage.setup(ctx)

    build_seconds = 0.0
    if corpus is not None:
        t0 = time.perf_counter()
        raw = Path(corpus.build(root, num_workers))
        build_seconds = time.perf_counter() - t0
    else:
        raw = root / "raw.jsonl"
        if not raw.exists():
            raise FileNotFoundError(f"no corpus given and {raw} does not exist; build the corpus first (ns2 prep data=...)")
    raw_utts = read_manifest(raw)
    raw_audio = {u.id: u.audio for u in raw_utts}
    utts = [_rebase(u, raw.parent, prepared) for u in raw_utts]
    log.info("prepare %s: %d utterances from %s, stages %s", root, len(utts), raw, stages)

    if "audio" not in stages:
        off = sorted({u.sample_rate for u in utts} - {sample_rate})
        if off:
            raise StageError(f"{raw} holds audio at {off} Hz but the model rate is {sample_rate} Hz; add the audio stage")

    quarantined: list[dict] = []
    recipe_q = raw.parent / "quarantine.jsonl"
    if recipe_q.exists():
        quarantined += [{"id": q.get("id"), "audio": q.get("audio"), "stage": q.get("stage", "recipe"),
                         "reason": q.get("reason", "")} for q in read_jsonl(recipe_q)]
    timings: dict[str, dict] = {}
    for name, stage in zip(stages, runners):
        stats: dict[str, Any] = {}
        utts, bad = run_stage(stage, utts, ctx, num_workers=num_workers, stats=stats)
        for q in bad:
            q["audio"] = raw_audio.get(q["id"], q["audio"])
        quarantined += bad
        timings[name] = stats

    manifest = prepared / "manifest.jsonl"
    write_manifest(manifest, utts)
    write_jsonl(prepared / "quarantine.jsonl", quarantined)
    summary: dict[str, Any] = {
        "root": str(root),
        "raw_manifest": str(raw),
        "manifest": str(manifest),
        "sample_rate": int(sample_rate),
        "hop_length": int(hop_length),
        "frame_rate": sample_rate / hop_length,
        **summarize(utts),
        "quarantined": len(quarantined),
        "quarantine_by_stage": dict(Counter(q["stage"] for q in quarantined)),
        "quarantine_reasons": dict(Counter(reason_kind(q["reason"]) for q in quarantined).most_common()),
        "build_seconds": round(build_seconds, 3),
        "stages": timings,
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    write_json(prepared / "summary.json", summary)
    return summary


def _plain(value: Any) -> Any:
    """Config containers (OmegaConf) to plain lists and dicts."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value


def format_summary(summary: dict[str, Any]) -> str:
    """A few readable lines about a preparation summary."""
    lines = [
        f"prepared {summary.get('manifest', '?')}",
        f"  {summary['utterances']} utterances, {summary['hours']:.3f} h, {summary['speakers']} speakers, "
        f"{summary['singing']} singing; {summary['quarantined']} quarantined",
    ]
    for split, block in (summary.get("splits") or {}).items():
        lines.append(f"  {split:>5}: {block['utterances']} utterances, {block['hours']:.3f} h, {block['speakers']} speakers")
    if summary.get("quarantine_reasons"):
        reasons = ", ".join(f"{k} x{n}" for k, n in summary["quarantine_reasons"].items())
        lines.append(f"  quarantine reasons: {reasons}")
    for name, st in (summary.get("stages") or {}).items():
        rate = f", {st['items_per_s']} items/s, {st['audio_s_per_s']} audio s/s" if st.get("items_per_s") else ""
        lines.append(f"  stage {name:>9}: {st['seconds']:.2f} s, {st['processed']} processed, {st['skipped']} skipped, "
                     f"{st['quarantined']} quarantined{rate}")
    return "\n".join(lines)
