"""Your own voice: a folder of clips of one speaker (e.g. 20–30 sentences recorded on a laptop).

::

    ns2 prep data=my_voice data.corpus.root=~/recordings +data.prep.options.aligner=<aligner ckpt>

The folder holds ``.wav`` / ``.flac`` / ``.ogg`` clips (sub-folders are searched too). A clip's
transcript is, in this order: ``<clip>.txt`` or ``<clip>.lab`` beside it; its line in a
``metadata.csv`` at the top of the folder (LJSpeech style, ``<clip name without extension>|<text>``);
otherwise the configured offline recogniser's transcription (PocketSphinx by default). A recognised
transcript whose confidence (the recogniser's mean word posterior) is under ``min_confidence`` is
quarantined with the words it heard, so the summary and ``quarantine.jsonl`` say which clips need a
``.txt``; ``low_confidence=keep`` keeps them, flagged in the manifest (``extra.transcript_confidence``).

Nothing is written into the clip folder: ``raw.jsonl`` and the prepared corpus go under
``data.root`` (``data/my_voice`` by default), with audio paths pointing back at the clips.
The last ``valid_clips`` clips (by name) are held out as ``valid``, ``test_clips`` before them as
``test``; the rest are ``train``.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ns2.data.recipes.base import Archive, Entry, Quarantined, Recipe, RecipeError, one_line, read_text

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
LOW_CONFIDENCE = ("quarantine", "keep")


def read_metadata(path: Path) -> dict[str, str]:
    """``metadata.csv`` (``id|text`` or LJSpeech's ``id|text|normalised text``) -> {id: text}."""
    texts: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 2 or not parts[0].strip():
            raise RecipeError(f"{path}:{n}: expected '<clip name>|<text>', got {line[:60]!r}")
        texts[parts[0].strip()] = " ".join(parts[-1].split()) if len(parts) > 2 and parts[-1].strip() else " ".join(parts[1].split())
    return texts


class MyVoice(Recipe):
    name = "my_voice"
    title = "your recordings"
    homepage = ""
    dirnames = ("",)
    subsets = ("all",)
    default_subsets = ("all",)

    def archives(self, subsets: Sequence[str]) -> list[Archive]:
        return []

    def download(self, root: str | os.PathLike, subsets: Sequence[str] | str | None = None) -> Path:
        raise RecipeError("my_voice: your own recordings cannot be downloaded; put the clips in a folder and pass data.corpus.root=<folder>")

    def how_to_get(self, root: Path, subsets: Sequence[str]) -> str:
        return f"put {'/'.join(AUDIO_EXTENSIONS)} clips of one speaker in {root} (pass data.corpus.root=<folder>)"

    def subset_dir(self, tree: Path, subset: str) -> Path:
        return tree

    def clips(self, tree: Path) -> list[Path]:
        return sorted(p for p in tree.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                      and "prepared" not in p.relative_to(tree).parts)

    def check_subset(self, tree: Path, subset: str) -> str | None:
        if not tree.is_dir():
            return f"missing folder {tree}"
        return None if self.clips(tree) else f"no {'/'.join(AUDIO_EXTENSIONS)} clips under {tree}"

    def count_audio(self, tree: Path, subset: str) -> int:
        return len(self.clips(tree))

    def find_tree(self, root: str | os.PathLike) -> Path | None:
        root = Path(root).expanduser()
        return root if self.check_subset(root, "all") is None else None

    def walk(self, tree: Path, subsets: Sequence[str], *, speaker: str = "me", recogniser: Callable[[], Any] | None = None,
             min_confidence: float = 0.5, low_confidence: str = "quarantine", valid_clips: int = 1,
             test_clips: int = 0) -> Iterator[Entry | Quarantined]:
        if low_confidence not in LOW_CONFIDENCE:
            raise RecipeError(f"my_voice: low_confidence={low_confidence!r}; expected one of {list(LOW_CONFIDENCE)}")
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise RecipeError(f"my_voice: min_confidence={min_confidence}; expected a probability in [0, 1]")
        clips = self.clips(tree)
        if int(valid_clips) + int(test_clips) >= len(clips):
            raise RecipeError(f"my_voice: {len(clips)} clips under {tree}, too few to hold out {valid_clips} valid + "
                              f"{test_clips} test clips and train on the rest")
        meta_path = tree / "metadata.csv"
        metadata = read_metadata(meta_path) if meta_path.is_file() else {}
        n_train = len(clips) - int(valid_clips) - int(test_clips)
        splits = ["train"] * n_train + ["test"] * int(test_clips) + ["valid"] * int(valid_clips)
        asr = None
        for clip, split in zip(clips, splits):
            uid = clip.relative_to(tree).with_suffix("").as_posix().replace("/", "_")
            extra: dict[str, Any] = {}
            side = next((clip.with_suffix(ext) for ext in (".txt", ".lab") if clip.with_suffix(ext).is_file()), None)
            if side is not None:
                text, extra["transcript"] = read_text(side), side.suffix.lstrip(".")
            elif clip.stem in metadata:
                text, extra["transcript"] = metadata[clip.stem], "metadata.csv"
            elif recogniser is None:
                yield self.quarantine(uid, clip, f"no transcript: write {clip.stem}.txt beside it (no recogniser is configured)")
                continue
            else:
                if asr is None:
                    asr = recogniser()
                try:
                    text, confidence = transcribe(asr, clip)
                except Exception as e:  # noqa: BLE001 - one unreadable clip is quarantined
                    yield self.quarantine(uid, clip, f"unreadable audio: {one_line(e)}")
                    continue
                extra.update(transcript="asr", transcript_confidence=None if confidence is None else round(confidence, 4))
                if not text.strip():
                    yield self.quarantine(uid, clip, f"no transcript: the recogniser heard no words; write {clip.stem}.txt beside it")
                    continue
                if confidence is not None and confidence < float(min_confidence):
                    msg = (f"low-confidence transcript: {confidence:.2f} < {float(min_confidence):g} for {text!r}; "
                           f"write {clip.stem}.txt beside it")
                    if low_confidence == "quarantine":
                        yield self.quarantine(uid, clip, msg)
                        continue
                    extra["low_confidence"] = True
                    log.warning("my_voice %s: %s (kept: low_confidence=keep)", uid, msg)
            yield Entry(uid, clip, str(speaker), text, split, extra=extra)


def transcribe(asr: Any, clip: Path) -> tuple[str, float | None]:
    """A clip's transcript by ``asr`` (16 kHz mono input) and its confidence (None when the recogniser
    gives none: only recognisers with ``transcribe_scored`` report one)."""
    import numpy as np
    import soundfile as sf
    import soxr

    x, sr = sf.read(str(clip), dtype="float32", always_2d=True)
    wav = np.ascontiguousarray(x.mean(axis=1))
    if sr != 16000:
        wav = soxr.resample(wav, sr, 16000).astype(np.float32)
    if callable(getattr(asr, "transcribe_scored", None)):
        text, confidence = asr.transcribe_scored(wav)
        return str(text), float(confidence)
    return str(asr.transcribe(wav)), None


class MyVoiceCorpus:
    """The ``data.corpus`` of ``data=my_voice``: ``build(out_root)`` walks the clip folder ``root`` and
    writes ``<out_root>/raw.jsonl`` (and ``quarantine.jsonl``) there, never into the clip folder.
    ``recogniser``: a zero-argument factory of a recogniser (Hydra ``_partial_``), or None to require
    transcripts; the other keywords are :meth:`MyVoice.walk`'s."""

    def __init__(self, root: str | os.PathLike | None = None, **options: Any) -> None:
        self.recipe = MyVoice()
        self.name = self.recipe.name
        self.root = None if root in (None, "") else Path(root).expanduser()
        if self.root is not None and not self.root.is_dir():
            why = "is a file" if self.root.exists() else "does not exist"
            raise RecipeError(f"my_voice: data.corpus.root={self.root} {why}; expected the folder of your clips")
        self.options = self.recipe.check_options(options)

    def build(self, root: str | os.PathLike | None = None, num_workers: int = 1) -> Path:
        if self.root is None:
            raise RecipeError("my_voice: pass the folder of your clips: data.corpus.root=<folder of wav clips>")
        out = Path(root).expanduser() if root is not None else self.root
        self.recipe.verify(self.root, None, checksums=False, count=False)
        raw = out / "raw.jsonl"
        self.recipe.build_manifest(self.root, raw, subsets=["all"], num_workers=num_workers, **self.options)
        return raw

    def __repr__(self) -> str:
        return f"MyVoiceCorpus(root={str(self.root)!r})"
