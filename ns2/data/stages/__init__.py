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

Stages, one module each: ``audio`` (check, downmix, resample), ``phonemes`` (text front end),
``durations`` (``corpus`` times, MFA ``textgrid``, or the ``aligner``) and ``f0`` (Praat pitch on the
frame grid). Each sets ``frame_rate`` and ``num_frames = ceil(samples / hop_length)`` at the model
sample rate. :mod:`.base` holds what they share (context, :class:`Quarantine`, grid helpers),
:mod:`.runner` the runner; this package's namespace is the registry (:data:`STAGES`, :func:`make_stage`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from ns2.data.stages.audio import AudioStage
from ns2.data.stages.base import (Quarantine, Stage, StageContext, StageError, frames_of, on_grid, one_line,
                                  require_model_rate, require_text, safe_name)
from ns2.data.stages.durations import DURATION_SOURCES, DurationsStage
from ns2.data.stages.f0 import F0Stage, f0_stats
from ns2.data.stages.phonemes import PhonemesStage, get_tokenizer, symbol_set
from ns2.data.stages.runner import JOURNAL_DIR, run_stage, stage_config, stage_key

__all__ = [
    "DURATION_SOURCES", "JOURNAL_DIR", "STAGES", "AudioStage", "DurationsStage", "F0Stage", "PhonemesStage",
    "Quarantine", "Stage", "StageContext", "StageError", "f0_stats", "frames_of", "get_tokenizer", "make_stage",
    "on_grid", "one_line", "require_model_rate", "require_text", "run_stage", "safe_name", "split_options",
    "stage_config", "stage_key", "stage_options", "symbol_set",
]

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
