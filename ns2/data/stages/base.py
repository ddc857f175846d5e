"""What every preparation stage shares: the context it runs in, how it sets an item aside, and the
frame-grid helpers (see :mod:`ns2.data.stages` for the stage protocol)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import soundfile as sf

from ns2.audio.frames import num_frames
from ns2.data.manifest import Utterance

__all__ = ["Quarantine", "Stage", "StageContext", "StageError", "frames_of", "on_grid", "one_line", "require_model_rate",
           "require_text", "safe_name"]


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
