"""Multilingual LibriSpeech, English part (openslr 94): 16 kHz FLAC, or the 48 kHz Opus variant.

Tree: ``mls_english[_opus]/{train,dev,test}/transcripts.txt`` (``<spk>_<book>_<n>\\t<text>`` lines)
and ``.../audio/<spk>/<book>/<spk>_<book>_<n>.flac`` (``.opus``). One archive holds all three
subsets (2.4 TB for FLAC, 651 GB for Opus); ``subsets`` chooses which enter the manifest.
Splits: train -> train, dev -> valid, test -> test. No checksum is published: the tree is checked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from ns2.data.recipes.base import Archive, Entry, Quarantined, Recipe

SPLITS = {"train": "train", "dev": "valid", "test": "test"}


class MLSEnglish(Recipe):
    name = "mls_english"
    title = "MLS English"
    homepage = "https://www.openslr.org/94/"
    subsets = ("train", "dev", "test")
    default_subsets = ("dev", "test")

    def __init__(self, opus: bool = False):
        self.opus = opus
        self.ext = "opus" if opus else "flac"
        stem = "mls_english_opus" if opus else "mls_english"
        if opus:
            self.name, self.title = "mls_english_opus", "MLS English (opus)"
        self.dirnames = (stem,)
        self.url = f"https://dl.fbaipublicfiles.com/mls/{stem}.tar.gz"
        self.audio_glob = f"audio/*/*/*.{self.ext}"

    def archives(self, subsets: Sequence[str]) -> list[Archive]:
        return [Archive(self.url.rsplit("/", 1)[1], self.url)]

    def required(self, subset: str) -> tuple[str, ...]:
        return ("transcripts.txt", "audio")

    def walk(self, tree: Path, subsets: Sequence[str]) -> Iterator[Entry | Quarantined]:
        for subset in subsets:
            d = self.subset_dir(tree, subset)
            for line in (d / "transcripts.txt").read_text(encoding="utf-8").splitlines():
                uid, _, text = line.strip().partition("\t")
                if not uid:
                    continue
                parts = uid.split("_")
                if len(parts) != 3:
                    yield self.quarantine(uid, d / "transcripts.txt", "id is not <speaker>_<book>_<n>")
                    continue
                speaker, book, _ = parts
                audio = d / "audio" / speaker / book / f"{uid}.{self.ext}"
                if not audio.exists():
                    yield self.quarantine(uid, audio, "audio file listed in transcripts.txt is missing")
                    continue
                yield Entry(uid, audio, speaker, " ".join(text.split()), SPLITS[subset],
                            extra={"subset": subset, "book": book})
