"""The ``audio`` stage: check, downmix and resample every file to the model rate."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import soundfile as sf

from ns2.audio.frames import num_frames
from ns2.data.audio import (AudioPolicy, BadAudio, check_audio, check_format, load_audio, resample, to_mono,
                            wav_truncation, write_audio)
from ns2.data.manifest import Utterance
from ns2.data.stages.base import Quarantine, StageContext, on_grid, require_text, safe_name

__all__ = ["AudioStage"]


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
