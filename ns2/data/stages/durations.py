"""The ``durations`` stage: phoneme durations in frames from corpus times, MFA TextGrids or the aligner."""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ns2.data.features.durations import times_to_durations
from ns2.data.features.textgrid import TextGridError, find_textgrid, mfa_alignment, read_textgrid
from ns2.data.manifest import Utterance
from ns2.data.stages.base import Quarantine, StageContext, StageError, frames_of, on_grid, one_line, require_model_rate
from ns2.data.stages.phonemes import symbol_set
from ns2.utils.io import sha256_file, write_json

__all__ = ["DURATION_SOURCES", "DurationsStage"]

log = logging.getLogger(__name__)

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
