"""Preparation stages and the runner that drives them: parallel, resumable, and never stopped by one bad file.

A stage has a ``name`` and ``process(utt, ctx) -> Utterance`` (or ``(Utterance, info_dict)``); it raises
:class:`Quarantine` for an item that must leave the corpus. :func:`run_stage` runs a stage over a list
of utterances:

* in worker processes (``num_workers > 1``; spawn-safe, items sent in chunks) or in-process;
* resumably: each finished item (kept or quarantined) is appended to ``<prepared>/stages/<name>.jsonl``
  with the full resulting utterance, keyed by a hash of its input record and the stage's settings.
  A re-run skips every item whose key is already in the journal, so an interrupted run redoes
  nothing that finished, and a change of input or settings redoes exactly the items it touches;
* fault-tolerantly: an unexpected exception in one item quarantines that item with the exception's
  one-line message; a worker process that dies is replaced, and the items it may have been
  working on are retried one at a time, so only an item that kills its worker is quarantined.

A stage whose ``in_process`` attribute is true always runs in the calling process (cheap stages).
Worker processes are spawned: a script that calls this with ``num_workers > 1`` must guard its
top level with ``if __name__ == "__main__":``.

A stage's ``version`` (default 1) is part of the resume key: bumping it redoes every item.

Optional stage hooks: ``setup(ctx)`` (checks its configuration in the main process, raising
:class:`StageError`), ``config() -> dict`` (settings that go into the resume key; dataclass fields
by default) and ``finalize(records, ctx)`` (after a run, with every current journal record).

Stages here: ``audio`` (check, downmix, resample), ``phonemes`` (text front end), ``durations``
(``corpus`` times, MFA ``textgrid``, or the ``aligner``) and ``f0`` (Praat pitch on the frame grid).
Each sets ``frame_rate`` and ``num_frames = ceil(samples / hop_length)`` at the model sample rate.
"""
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np
import soundfile as sf

from ns2.audio.f0 import compute_f0, log_f0_moments, moments_to_stats
from ns2.audio.frames import num_frames
from ns2.data.audio import (AudioPolicy, BadAudio, check_audio, check_format, load_audio, resample, to_mono,
                            wav_truncation, write_audio)
from ns2.data.features.durations import times_to_durations
from ns2.data.features.textgrid import TextGridError, find_textgrid, mfa_alignment, read_textgrid
from ns2.data.manifest import Utterance
from ns2.utils.io import atomic_open, read_jsonl, sha256_file, write_json, write_jsonl

log = logging.getLogger(__name__)

JOURNAL_DIR = "stages"


class Quarantine(Exception):
    """Raised by a stage for an item that must leave the corpus; ``reason`` is one line."""

    def __init__(self, reason: str, info: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.info = info


class StageError(RuntimeError):
    """A stage that cannot run at all (bad settings, missing inputs); stops the preparation."""


@dataclass(frozen=True)
class StageContext:
    """Where a stage reads and writes: relative paths in utterances resolve against ``prepared``."""

    prepared: str
    root: str
    sample_rate: int = 16000
    hop_length: int = 200

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def prepared_dir(self) -> Path:
        return Path(self.prepared)

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the prepared folder, POSIX-style (the manifest's convention)."""
        return Path(os.path.relpath(Path(path), self.prepared_dir)).as_posix()


@runtime_checkable
class Stage(Protocol):
    name: str

    def process(self, utt: Utterance, ctx: StageContext) -> Utterance | tuple[Utterance, dict]: ...


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def safe_name(utt_id: str) -> str:
    """An utterance id usable as a file name."""
    return utt_id.replace("/", "_").replace("\\", "_")


# ---------------------------------------------------------------------------------------- runner
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


# ---------------------------------------------------------------------------------------- helpers
def require_text(utt: Utterance) -> None:
    if not utt.text or not utt.text.strip():
        raise Quarantine("empty text")


def require_model_rate(utt: Utterance, ctx: StageContext) -> None:
    if utt.sample_rate != ctx.sample_rate:
        raise Quarantine(f"audio is at {utt.sample_rate} Hz, not the model's {ctx.sample_rate} Hz; run the audio stage first")


def frames_of(utt: Utterance, ctx: StageContext) -> int:
    """``num_frames`` on the model's grid, from the manifest or (when stale) the audio header."""
    if utt.num_frames is not None and utt.frame_rate == ctx.frame_rate:
        return utt.num_frames
    require_model_rate(utt, ctx)
    return num_frames(sf.info(str(utt.audio_path(ctx.prepared))).frames, ctx.hop_length)


def on_grid(utt: Utterance, ctx: StageContext, frames: int) -> Utterance:
    """``utt`` with ``frame_rate``/``num_frames`` set; durations that no longer fit the grid are dropped."""
    keep = utt.durations is not None and utt.frame_rate == ctx.frame_rate and sum(utt.durations) == frames
    return utt.replace(frame_rate=ctx.frame_rate, num_frames=frames, durations=utt.durations if keep else None)


# ---------------------------------------------------------------------------------------- audio
@dataclass
class AudioStage:
    """Check each file, downmix and resample it to the model rate into ``<prepared>/audio/<rel>.wav``.

    ``<rel>`` is the source path relative to the corpus root (``_external/<speaker>/<id>`` otherwise).
    An output that already exists with the right rate and length is reused (its level is checked
    again, and the source's header for rate, channels and truncation). Empty text is quarantined here.
    """

    name: ClassVar[str] = "audio"
    version: ClassVar[int] = 1  # bump when the output for the same input changes
    expected_rates: list[int] | None = None
    strict_rate: bool = True
    strict_channels: bool = True
    min_duration: float = 0.1
    silence_db: float = -60.0
    max_clipped_fraction: float | None = None
    duration_tolerance: float = 0.05
    check_declared_duration: bool = True
    subtype: str = "PCM_16"

    def __post_init__(self) -> None:
        if self.expected_rates is not None:
            rates = [self.expected_rates] if isinstance(self.expected_rates, int) else self.expected_rates
            self.expected_rates = [int(r) for r in rates]

    @property
    def policy(self) -> AudioPolicy:
        return AudioPolicy.create(self.expected_rates, strict_rate=self.strict_rate, strict_channels=self.strict_channels,
                                  min_duration=self.min_duration, silence_db=self.silence_db,
                                  max_clipped_fraction=self.max_clipped_fraction,
                                  duration_tolerance=self.duration_tolerance)

    def output_path(self, src: Path, utt: Utterance, ctx: StageContext) -> Path:
        try:
            rel = src.resolve().relative_to(Path(ctx.root).resolve())
        except ValueError:
            rel = Path("_external") / utt.speaker / safe_name(utt.id)
        return ctx.prepared_dir / "audio" / rel.with_suffix(".wav")

    def _reuse(self, out: Path, src: Path, utt: Utterance, ctx: StageContext) -> np.ndarray | None:
        try:
            info = sf.info(str(out))
        except Exception:  # noqa: BLE001 - a broken output is simply redone
            return None
        if info.samplerate != ctx.sample_rate or info.channels != 1 or info.frames <= 0 \
                or abs(info.frames / info.samplerate - utt.duration) > self.duration_tolerance:
            return None
        reason = wav_truncation(src)
        if reason:
            raise BadAudio(reason)
        head = sf.info(str(src))
        check_format(head.samplerate, head.channels, self.policy)
        x, sr = load_audio(out)
        check_audio(x, sr, dataclasses.replace(self.policy, expected_rates=None))
        return x[0]

    def process(self, utt: Utterance, ctx: StageContext) -> Utterance:
        require_text(utt)
        src = utt.audio_path(ctx.prepared)
        out = self.output_path(src, utt, ctx)
        try:
            y = self._reuse(out, src, utt, ctx) if out.exists() else None
            extra = dict(utt.extra)
            if y is None:
                reason = wav_truncation(src)
                if reason:
                    raise BadAudio(reason)
                x, source_rate = load_audio(src)
                declared = utt.duration if self.check_declared_duration and utt.duration > 0 else None
                check_audio(x, source_rate, self.policy, declared)
                if x.shape[0] > 1:
                    extra["source_channels"] = int(x.shape[0])  # downmixed (strict_channels=false)
                extra["source_sample_rate"] = source_rate
                y = resample(to_mono(x), source_rate, ctx.sample_rate)
                write_audio(out, y, ctx.sample_rate, self.subtype)
        except BadAudio as e:
            raise Quarantine(e.reason) from None
        extra.setdefault("source_audio", utt.audio)
        extra.setdefault("source_sample_rate", utt.sample_rate)
        new = utt.replace(audio=ctx.relative(out), sample_rate=ctx.sample_rate, duration=len(y) / ctx.sample_rate,
                          extra=extra)
        return on_grid(new, ctx, num_frames(len(y), ctx.hop_length))


# ---------------------------------------------------------------------------------------- phonemes
_TOKENIZERS: dict[str, Any] = {}


def get_tokenizer(language: str) -> Any:
    """One ``ns2.text.Tokenizer`` per language and process."""
    if language not in _TOKENIZERS:
        from ns2.text import Tokenizer

        _TOKENIZERS[language] = Tokenizer(language)
    return _TOKENIZERS[language]


def symbol_set() -> frozenset[str]:
    """The symbols of ``ns2.text.DEFAULT_SYMBOLS``."""
    from ns2.text import DEFAULT_SYMBOLS

    return frozenset(DEFAULT_SYMBOLS.symbols)


@dataclass
class PhonemesStage:
    """Fill ``phonemes``/``word_index`` with the text front end where a corpus did not provide them.

    Phonemes a corpus provides are checked against the symbol table. Front-end errors (unknown
    characters, unsupported language) quarantine the item with the front end's message.
    """

    name: ClassVar[str] = "phonemes"
    version: ClassVar[int] = 1  # bump when the output for the same input changes
    language: str = "en-us"

    def process(self, utt: Utterance, ctx: StageContext) -> Utterance:
        require_text(utt)
        if utt.phonemes is not None:
            unknown = sorted(set(utt.phonemes) - symbol_set())
            if unknown:
                raise Quarantine(f"phonemes not in the symbol table: {unknown}")
            return utt
        from ns2.text import TextFrontendError

        try:
            tok = get_tokenizer(utt.language or self.language)(utt.text)
        except TextFrontendError as e:
            raise Quarantine(one_line(e)) from None
        if not tok.phonemes:
            raise Quarantine("the text front end gave no phonemes")
        return utt.replace(phonemes=list(tok.phonemes), word_index=[int(i) for i in tok.word_index],
                           phoneme_times=None, durations=None)


# ---------------------------------------------------------------------------------------- durations
DURATION_SOURCES = ("corpus", "textgrid", "aligner")


@dataclass
class DurationsStage:
    """Phoneme durations in frames, summing exactly to ``num_frames``.

    ``source``: ``corpus`` converts ``phoneme_times`` (s) to frames; ``textgrid`` reads MFA TextGrids
    from ``textgrid_dir`` (``<dir>/<speaker>/<id>.TextGrid`` or ``<dir>/<id>.TextGrid``) and replaces the
    phonemes by the TextGrid's phones mapped to the symbol table (``phone_map`` adds or overrides
    mappings; unmapped phones quarantine the item and are counted in ``textgrid_report.json``);
    ``aligner`` runs a trained aligner (:mod:`ns2.data.aligner`) over each utterance's audio and
    phonemes: ``aligner`` is its checkpoint (an ``AlignerLit`` Lightning checkpoint or a
    :func:`~ns2.data.aligner.infer.save_aligner` file), set on the command line with
    ``data.prep.durations_source=aligner +data.prep.options.aligner=<ckpt>``. Its durations sum
    exactly to ``num_frames``; symbols without acoustics (``|``, punctuation, stress marks) get 0
    frames; ``extra["align_confidence"]`` is the mean soft-attention probability on the chosen path.
    Items it cannot align (unknown symbols, fewer frames than phonemes, unreadable audio) are
    quarantined with the reason. The checkpoint's content (its SHA-256) is part of the resume key, so
    a retrained aligner re-aligns every utterance even when written to the same path.
    ``min_frames`` (default 0) is the least number of frames a phoneme gets from ``corpus`` or
    ``textgrid`` times (see :mod:`ns2.data.features.durations`).
    """

    name: ClassVar[str] = "durations"
    version: ClassVar[int] = 1  # bump when the output for the same input changes
    in_process: ClassVar[bool] = True
    source: str = "corpus"
    textgrid_dir: str | None = None
    phone_map: dict[str, str] | None = None
    min_frames: int = 0
    word_boundaries: bool = True
    aligner: str | None = None

    def setup(self, ctx: StageContext) -> None:
        if self.source not in DURATION_SOURCES:
            raise StageError(f"durations source {self.source!r} is unknown; expected one of {DURATION_SOURCES}")
        if self.source == "textgrid":
            if not self.textgrid_dir:
                raise StageError("durations_source=textgrid needs textgrid_dir (a folder of Montreal Forced Aligner "
                                 "TextGrids: <dir>/<speaker>/<id>.TextGrid); set data.prep.textgrid_dir")
            if not Path(self.textgrid_dir).is_dir():
                raise StageError(f"textgrid_dir {self.textgrid_dir} is not a folder; run MFA first or fix the path")
        if self.source == "aligner":
            self.aligner_setup(ctx)

    def aligner_setup(self, ctx: StageContext) -> None:
        """Load the aligner checkpoint once and check that it works on the model's frame grid."""
        if not self.aligner:
            raise StageError("durations_source=aligner needs a trained aligner checkpoint: train the aligner first "
                             "(ns2 train experiment=aligner/small) and pass +data.prep.options.aligner=<ckpt>")
        path = Path(self.aligner).expanduser()
        if not path.is_file():
            raise StageError(f"aligner checkpoint {path} not found; expected an AlignerLit .ckpt or a save_aligner file")
        aligner = getattr(self, "_aligner", None)
        if aligner is None or getattr(self, "_aligner_path", None) != path:
            from ns2.data.aligner.infer import load_aligner

            try:
                aligner = load_aligner(path)
            except (ValueError, KeyError, RuntimeError) as e:
                raise StageError(f"aligner checkpoint {path} cannot be loaded: {one_line(e)}") from None
        if aligner.mel.sample_rate != ctx.sample_rate or aligner.mel.hop_length != ctx.hop_length:
            raise StageError(f"aligner {path} works at {aligner.mel.sample_rate} Hz with hop {aligner.mel.hop_length}, "
                             f"but the corpus is prepared at {ctx.sample_rate} Hz with hop {ctx.hop_length}")
        if aligner.symbols is None:
            raise StageError(f"aligner {path} carries no symbol table; save it with one (AlignerLit(symbols=...))")
        self._aligner, self._aligner_path = aligner, path
        self._aligner_sha256 = sha256_file(path)

    def config(self) -> dict[str, Any]:
        """The settings in the resume key; with the aligner, its file's content too (so retraining into
        the same path re-aligns instead of reusing the old durations)."""
        cfg = dataclasses.asdict(self)
        if self.source == "aligner":
            cfg["aligner_sha256"] = getattr(self, "_aligner_sha256", None)
        return cfg

    def aligner_durations(self, utt: Utterance, ctx: StageContext, frames: int) -> Utterance:
        """Durations of one utterance from the aligner loaded by :meth:`aligner_setup`."""
        from ns2.data.aligner.stage import align_utterance

        if getattr(self, "_aligner", None) is None:
            self.aligner_setup(ctx)
        require_model_rate(utt, ctx)
        try:
            out = align_utterance(self._aligner, utt, ctx.prepared)
        except ValueError as e:  # unknown symbols, too few frames, unreadable audio
            reason = one_line(e)
            prefix = f"utterance {utt.id!r}: "
            raise Quarantine(reason[len(prefix):] if reason.startswith(prefix) else reason) from None
        if out.num_frames != frames or sum(out.durations) != frames:
            raise Quarantine(f"aligner durations cover {sum(out.durations)} frames, the utterance has {frames}")
        return out

    def process(self, utt: Utterance, ctx: StageContext) -> Utterance | tuple[Utterance, dict]:
        frames = frames_of(utt, ctx)
        utt = on_grid(utt, ctx, frames)
        if self.source == "textgrid":
            return self._from_textgrid(utt, ctx, frames)
        if self.source == "aligner":
            return self.aligner_durations(utt, ctx, frames)
        if utt.durations is not None:
            return utt
        if utt.phonemes is None or utt.phoneme_times is None:
            raise Quarantine("no phoneme_times for durations_source=corpus (use textgrid or aligner for this corpus)")
        try:
            durations = times_to_durations(utt.phoneme_times, frames, ctx.frame_rate, self.min_frames)
        except ValueError as e:
            raise Quarantine(one_line(e)) from None
        return utt.replace(durations=durations)

    def _from_textgrid(self, utt: Utterance, ctx: StageContext, frames: int) -> tuple[Utterance, dict] | Utterance:
        path = find_textgrid(self.textgrid_dir, utt.id, utt.speaker)
        if path is None:
            raise Quarantine(f"no TextGrid for this utterance in {self.textgrid_dir} (MFA could not align it?)")
        try:
            ali = mfa_alignment(read_textgrid(path), symbol_set(), self.phone_map, self.word_boundaries)
        except (TextGridError, KeyError) as e:
            raise Quarantine(f"bad TextGrid {path.name}: {one_line(e)}") from None
        if ali.unmapped:
            shown = ", ".join(f"{p!r} x{n}" for p, n in sorted(ali.unmapped.items()))
            raise Quarantine(f"MFA phones without a mapping to the symbol table: {shown}",
                             info={"unmapped": dict(ali.unmapped)})
        if not ali.phonemes:
            raise Quarantine(f"TextGrid {path.name} has no phones")
        try:
            durations = times_to_durations(ali.times, frames, ctx.frame_rate, self.min_frames)
        except ValueError as e:
            raise Quarantine(one_line(e)) from None
        return utt.replace(phonemes=ali.phonemes, word_index=ali.word_index, phoneme_times=ali.times,
                           durations=durations, score=None)  # a score indexes the replaced phonemes

    def finalize(self, records: list[dict], ctx: StageContext) -> None:
        if self.source != "textgrid":
            return
        kept = [r for r in records if r["status"] == "kept"]
        unmapped: Counter = Counter()
        for r in records:
            unmapped.update((r.get("info") or {}).get("unmapped", {}))
        report = {"textgrid_dir": str(self.textgrid_dir), "items": len(records), "kept": len(kept),
                  "unmapped_phones": dict(unmapped.most_common())}
        write_json(ctx.prepared_dir / "textgrid_report.json", report)
        if unmapped:
            log.warning("durations: MFA phones without a mapping (items quarantined; add them to phone_map): %s",
                        ", ".join(f"{p!r} x{n}" for p, n in unmapped.most_common()))


# ---------------------------------------------------------------------------------------- f0
@dataclass
class F0Stage:
    """F0 (Hz, 0 = unvoiced) per frame into ``<prepared>/f0/<id>.npy``; per-speaker log-F0 stats into
    ``<prepared>/f0_stats.json`` (``{"speakers": {spk: {"mean", "std", "voiced_frames"}}, "all": {...}}``)."""

    name: ClassVar[str] = "f0"
    version: ClassVar[int] = 1  # bump when the output for the same input changes
    pitch_floor: float = 65.0
    pitch_ceiling: float = 800.0
    singing_pitch_ceiling: float = 1100.0
    voicing_threshold: float = 0.45

    def process(self, utt: Utterance, ctx: StageContext) -> tuple[Utterance, dict]:
        require_model_rate(utt, ctx)
        try:
            x, sr = load_audio(utt.audio_path(ctx.prepared))
        except BadAudio as e:
            raise Quarantine(e.reason) from None
        frames = num_frames(x.shape[1], ctx.hop_length)
        ceiling = self.singing_pitch_ceiling if utt.kind == "singing" else self.pitch_ceiling
        f0 = compute_f0(to_mono(x), sr, ctx.hop_length, frames, self.pitch_floor, ceiling, self.voicing_threshold)
        out = ctx.prepared_dir / "f0" / f"{safe_name(utt.id)}.npy"
        with atomic_open(out, "wb") as f:
            np.save(f, f0.astype(np.float32))
        utt = on_grid(utt, ctx, frames)
        return utt.replace(features={**utt.features, "f0": ctx.relative(out)}), {"speaker": utt.speaker, **log_f0_moments(f0)}

    def finalize(self, records: list[dict], ctx: StageContext) -> None:
        kept = (r.get("info") or {} for r in records if r["status"] == "kept")
        write_json(ctx.prepared_dir / "f0_stats.json", f0_stats(kept))


def f0_stats(infos: Iterable[dict]) -> dict[str, Any]:
    """Per-speaker and overall mean/std of log-F0 over voiced frames, from per-item moments."""
    per: dict[str, dict[str, float]] = {}
    total = {"n": 0, "sum": 0.0, "sumsq": 0.0}
    for info in infos:
        if "n" not in info:
            continue
        acc = per.setdefault(info["speaker"], {"n": 0, "sum": 0.0, "sumsq": 0.0})
        for k in total:
            acc[k] += info[k]
            total[k] += info[k]
    return {"speakers": {s: moments_to_stats(m) for s, m in sorted(per.items())}, "all": moments_to_stats(total)}


# ---------------------------------------------------------------------------------------- registry
STAGES: dict[str, type] = {"audio": AudioStage, "phonemes": PhonemesStage, "durations": DurationsStage, "f0": F0Stage}


def stage_options(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(STAGES[name])]


def make_stage(name: str, **options: Any) -> Any:
    """Build stage ``name`` from the options it takes (others are ignored; see :func:`split_options`)."""
    if name not in STAGES:
        raise StageError(f"unknown stage {name!r}; expected some of {list(STAGES)}")
    known = set(stage_options(name))
    return STAGES[name](**{k: v for k, v in options.items() if k in known})


def split_options(stages: Sequence[str], options: dict[str, Any]) -> None:
    """Raise :class:`StageError` naming options that none of ``stages`` takes."""
    known = {o for s in stages if s in STAGES for o in stage_options(s)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise StageError(f"unknown preparation options {unknown}; the stages {list(stages)} take {sorted(known)}")
