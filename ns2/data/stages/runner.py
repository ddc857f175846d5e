"""The stage runner: a stage over a list of utterances, in worker processes, resumably, never stopped by
one bad file (the behaviour is described in :mod:`ns2.data.stages`)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Sequence

from ns2.data.manifest import Utterance
from ns2.data.stages.base import Quarantine, StageContext, StageError, one_line
from ns2.utils.io import read_jsonl, write_jsonl

__all__ = ["JOURNAL_DIR", "run_stage", "stage_config", "stage_key"]

log = logging.getLogger(__name__)

JOURNAL_DIR = "stages"


def stage_config(stage: Any) -> dict[str, Any]:
    if callable(getattr(stage, "config", None)):
        return stage.config()
    if dataclasses.is_dataclass(stage):
        return dataclasses.asdict(stage)
    return {}


def stage_key(stage: Any, ctx: StageContext, utt: Utterance) -> str:
    """Resume key: a hash of the input record, the stage's settings and the frame grid."""
    blob = json.dumps([stage.name, getattr(stage, "version", 1), stage_config(stage), ctx.sample_rate,
                       ctx.hop_length, utt.to_dict()], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def _run_one(stage: Any, ctx: StageContext, d: dict) -> dict:
    uid = d.get("id")
    try:
        out = stage.process(Utterance.from_dict(d), ctx)
        info = None
        if isinstance(out, tuple):
            out, info = out
        if not isinstance(out, Utterance):
            raise TypeError(f"stage {stage.name!r} returned {type(out).__name__}, expected an Utterance")
        if out.id != uid:
            raise ValueError(f"stage {stage.name!r} changed the id {uid!r} to {out.id!r}")
        rec: dict[str, Any] = {"id": uid, "status": "kept", "utt": out.validate().to_dict()}
        if info:
            rec["info"] = info
    except Quarantine as q:
        rec = {"id": uid, "status": "quarantined", "reason": q.reason}
        if q.info:
            rec["info"] = q.info
    except Exception as e:  # noqa: BLE001 - one item never stops the run
        rec = {"id": uid, "status": "quarantined", "reason": f"{type(e).__name__}: {one_line(e)}"}
    return rec


def _run_chunk(stage: Any, ctx: StageContext, items: list[dict]) -> list[dict]:
    """Top-level (spawn-safe) worker entry: process a chunk of utterance dicts."""
    return [_run_one(stage, ctx, d) for d in items]


def _run_parallel(stage: Any, ctx: StageContext, chunks: list[list[dict]], num_workers: int,
                  emit: Callable[[list[dict]], None]) -> None:
    """Chunks in a spawn process pool. When a worker dies, the items that were in flight are
    retried one at a time in a fresh pool, so only the item that kills its worker is quarantined."""
    queue: deque[list[dict]] = deque(chunks)
    suspects: deque[dict] = deque()
    mp = multiprocessing.get_context("spawn")
    ex: ProcessPoolExecutor | None = None
    try:
        while queue or suspects:
            if ex is None:
                ex = ProcessPoolExecutor(max_workers=num_workers, mp_context=mp)
            if suspects:
                d = suspects.popleft()
                try:
                    emit(ex.submit(_run_chunk, stage, ctx, [d]).result())
                except BrokenProcessPool:
                    emit([{"id": d["id"], "status": "quarantined", "reason": "worker process died while processing this item"}])
                    ex.shutdown(wait=False, cancel_futures=True)
                    ex = None
                continue
            inflight: dict[Any, list[dict]] = {}
            broken = False
            while queue or inflight:
                while queue and len(inflight) < 2 * num_workers:
                    chunk = queue.popleft()
                    try:
                        inflight[ex.submit(_run_chunk, stage, ctx, chunk)] = chunk
                    except BrokenProcessPool:  # a worker died since the last wait: this chunk never ran
                        queue.appendleft(chunk)
                        broken = True
                        break
                done = set() if broken else wait(list(inflight), return_when=FIRST_COMPLETED)[0]
                for fut in done:
                    chunk = inflight.pop(fut)
                    try:
                        emit(fut.result())
                    except BrokenProcessPool:
                        broken = True
                        suspects.extend(chunk)
                if broken:
                    for fut, chunk in inflight.items():
                        if fut.done() and fut.exception() is None:
                            emit(fut.result())
                        else:
                            suspects.extend(chunk)
                    log.warning("stage %s: a worker process died; retrying its %d items one at a time",
                                stage.name, len(suspects))
                    ex.shutdown(wait=False, cancel_futures=True)
                    ex = None
                    break
    finally:
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def run_stage(stage: Any, utts: Sequence[Utterance], ctx: StageContext, num_workers: int = 1,
              chunk_size: int | None = None, stats: dict | None = None) -> tuple[list[Utterance], list[dict]]:
    """Run ``stage`` over ``utts``; return ``(kept utterances in input order, quarantine records)``.

    Quarantine records are ``{"id", "audio", "stage", "reason"}``. Finished items are journalled in
    ``<ctx.prepared>/stages/<stage.name>.jsonl`` and skipped on a re-run. ``stats`` (when given) is
    filled with ``seconds``, ``processed``, ``skipped``, ``kept``, ``quarantined``, ``items_per_s`` and
    ``audio_s_per_s``.
    """
    t0 = time.perf_counter()
    if getattr(stage, "in_process", False):  # too cheap per item to be worth worker processes
        num_workers = 1
    if callable(getattr(stage, "setup", None)):
        stage.setup(ctx)
    journal = ctx.prepared_dir / JOURNAL_DIR / f"{stage.name}.jsonl"
    keys = {u.id: stage_key(stage, ctx, u) for u in utts}
    if len(keys) != len(utts):
        dup = [k for k, n in Counter(u.id for u in utts).items() if n > 1][:5]
        raise StageError(f"stage {stage.name}: duplicate utterance ids {dup}")
    by_id = {u.id: u for u in utts}
    done: dict[str, dict] = {}
    journal_lines = read_jsonl(journal)
    if journal.exists() and journal.stat().st_size and not _ends_with_newline(journal):
        write_jsonl(journal, journal_lines)  # drop a torn last line before appending after it
    for rec in journal_lines:
        if isinstance(rec, dict) and keys.get(rec.get("id")) == rec.get("key"):
            done[rec["id"]] = rec
    todo = [u for u in utts if u.id not in done]
    skipped = len(utts) - len(todo)
    todo_seconds = sum(u.duration for u in todo)
    if skipped:
        log.info("stage %s: %d of %d items already done (journal %s)", stage.name, skipped, len(utts), journal)

    progress = {"n": 0, "audio": 0.0, "last": time.perf_counter(), "bad": 0}
    journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal, "a", encoding="utf-8") as jf:

        def emit(records: list[dict]) -> None:
            for rec in records:
                utt = by_id[rec["id"]]
                rec["key"], rec["stage"], rec["audio"] = keys[utt.id], stage.name, utt.audio
                done[utt.id] = rec
                jf.write(json.dumps(rec, ensure_ascii=False) + "\n")
                progress["n"] += 1
                progress["audio"] += utt.duration
                progress["bad"] += rec["status"] != "kept"
            jf.flush()
            now = time.perf_counter()
            if now - progress["last"] > 10.0:
                progress["last"] = now
                dt = max(now - t0, 1e-9)
                log.info("stage %s: %d/%d items (%d quarantined), %.1f items/s, %.1f audio s/s", stage.name,
                         progress["n"], len(todo), progress["bad"], progress["n"] / dt, progress["audio"] / dt)

        if todo:
            dicts = [u.to_dict() for u in todo]
            size = chunk_size or max(1, min(32, len(dicts) // (max(num_workers, 1) * 8) or 1))
            chunks = [dicts[i:i + size] for i in range(0, len(dicts), size)]
            if num_workers <= 1:
                for chunk in chunks:
                    emit(_run_chunk(stage, ctx, chunk))
            else:
                _run_parallel(stage, ctx, chunks, num_workers, emit)

    records = [done[u.id] for u in utts]
    if todo or len(journal_lines) != len(records):
        write_jsonl(journal, records)  # compact: one current record per item
    kept = [Utterance.from_dict(r["utt"]) for r in records if r["status"] == "kept"]
    quarantined = [{"id": r["id"], "audio": r["audio"], "stage": stage.name, "reason": r["reason"]}
                   for r in records if r["status"] != "kept"]
    if callable(getattr(stage, "finalize", None)):
        stage.finalize(records, ctx)
    seconds = time.perf_counter() - t0
    result = {"seconds": round(seconds, 3), "processed": len(todo), "skipped": skipped, "kept": len(kept),
              "quarantined": len(quarantined),
              "items_per_s": round(len(todo) / seconds, 2) if todo else None,
              "audio_s_per_s": round(todo_seconds / seconds, 2) if todo else None}
    log.info("stage %s: %d kept, %d quarantined, %d processed (%s items/s, %s audio s/s), %d skipped, %.1f s",
             stage.name, len(kept), len(quarantined), len(todo), result["items_per_s"], result["audio_s_per_s"],
             skipped, seconds)
    if stats is not None:
        stats.update(result)
    return kept, quarantined
