"""LibriSpeech (openslr 12): 16 kHz read English speech (ASR corpus, used for zero-shot evaluation).

Tree: ``LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac`` with one
``<speaker>-<chapter>.trans.txt`` per chapter (``<id> <TEXT>`` lines, upper case).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from ns2.data.recipes.base import Archive, Entry, Quarantined, Recipe
from ns2.data.recipes.libritts import LIBRI_SUBSETS, libri_split


class LibriSpeech(Recipe):
    name = "librispeech"
    title = "LibriSpeech"
    homepage = "https://www.openslr.org/12/"
    base_url = "https://www.openslr.org/resources/12"
    dirnames = ("LibriSpeech",)
    subsets = LIBRI_SUBSETS
    default_subsets = ("test-clean",)
    audio_glob = "*/*/*.flac"
    # openslr's md5sum.txt for resource 12 (the same values are carried by PaddlePaddle DeepSpeech2's
    # data/librispeech.py and several other loaders); utterance counts from the same source.
    CHECKSUMS: dict[str, tuple[str, ...]] = {
        "dev-clean": ("md5:42e2234ba48799c1f50f24a7926300a1",),
        "dev-other": ("md5:c8d0bcc9cca99d4f8b62fcc847357931",),
        "test-clean": ("md5:32fa31d27d2e1cad72775fee3f4849a9",),
        "test-other": ("md5:fb5a50374b501bb3bac4815ee91d3135",),
        "train-clean-100": ("md5:2a93770f6d5c6c964bc36631d331a522",),
        "train-clean-360": ("md5:c0e676e450a7ff2f54aeade5171606fa",),
        "train-other-500": ("md5:d1a0fd59409feb2c614ce4d30c387708",),
    }
    expected_counts = {"dev-clean": 2703, "dev-other": 2864, "test-clean": 2620, "test-other": 2939,
                       "train-clean-100": 28539, "train-clean-360": 104014, "train-other-500": 148688}

    def archives(self, subsets: Sequence[str]) -> list[Archive]:
        return [Archive(f"{s}.tar.gz", f"{self.base_url}/{s}.tar.gz", self.CHECKSUMS.get(s, ())) for s in subsets]

    def walk(self, tree: Path, subsets: Sequence[str]) -> Iterator[Entry | Quarantined]:
        for subset in subsets:
            for chapter in sorted(p for p in self.subset_dir(tree, subset).glob("*/*") if p.is_dir()):
                speaker = chapter.parent.name
                trans = chapter / f"{speaker}-{chapter.name}.trans.txt"
                texts: dict[str, str] = {}
                if trans.exists():
                    for line in trans.read_text(encoding="utf-8").splitlines():
                        uid, _, text = line.strip().partition(" ")
                        if uid:
                            texts[uid] = " ".join(text.split())
                flacs = {p.stem: p for p in chapter.glob("*.flac")}
                for uid in sorted(set(texts) | set(flacs)):
                    if uid not in flacs:
                        yield self.quarantine(uid, chapter / f"{uid}.flac", "audio file listed in the transcript is missing")
                    elif uid not in texts:
                        yield self.quarantine(uid, flacs[uid], f"no line in {trans.name}")
                    else:
                        yield Entry(uid, flacs[uid], speaker, texts[uid], libri_split(subset),
                                    extra={"subset": subset, "chapter": chapter.name})
