"""LibriTTS (openslr 60) and LibriTTS-R (openslr 141): 24 kHz read English speech.

Tree: ``LibriTTS[_R]/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.wav`` with
``.normalized.txt`` (used as ``text``) and ``.original.txt`` (kept in ``extra["text_original"]``).
Splits: ``train-*`` -> train, ``dev-*`` -> valid, ``test-*`` -> test.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from ns2.data.recipes.base import Archive, Entry, Quarantined, Recipe, read_text

LIBRI_SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100", "train-clean-360", "train-other-500")


def libri_split(subset: str) -> str:
    """``train-*`` -> train, ``dev-*`` -> valid, ``test-*`` -> test."""
    return {"train": "train", "dev": "valid", "test": "test"}[subset.split("-")[0]]


class LibriTTS(Recipe):
    name = "libritts"
    title = "LibriTTS"
    homepage = "https://www.openslr.org/60/"
    base_url = "https://www.openslr.org/resources/60"
    dirnames = ("LibriTTS",)
    subsets = LIBRI_SUBSETS
    default_subsets = ("dev-clean", "test-clean", "train-clean-100")
    audio_glob = "*/*/*.wav"
    # md5 from openslr's md5sum.txt as carried by torchaudio.datasets.LIBRITTS (<=0.10); torchaudio's
    # later sha256 for the three small archives is accepted as well.
    CHECKSUMS: dict[str, tuple[str, ...]] = {
        "dev-clean": ("md5:0c3076c1e5245bb3f0af7d82087ee207",
                      "sha256:da0864e1bd26debed35da8a869dd5c04dfc27682921936de7cff9c8a254dbe1a"),
        "dev-other": ("md5:815555d8d75995782ac3ccd7f047213d",
                      "sha256:d413eda26f3a152ac7c9cf3658ef85504dfb1b625296e5fa83727f5186cca79c"),
        "test-clean": ("md5:7bed3bdb047c4c197f1ad3bc412db59f",
                       "sha256:234ea5b25859102a87024a4b9b86641f5b5aaaf1197335c95090cde04fe9a4f5"),
        "test-other": ("md5:ae3258249472a13b5abef2a816f733e4",),
        "train-clean-100": ("md5:4a8c202b78fe1bc0c47916a98f3a2ea8",),
        "train-clean-360": ("md5:a84ef10ddade5fd25df69596a2767b2d",),
        "train-other-500": ("md5:7b181dd5ace343a5f38427999684aa6f",),
    }

    def archive_name(self, subset: str) -> str:
        return f"{subset}.tar.gz"

    def archives(self, subsets: Sequence[str]) -> list[Archive]:
        return [Archive(self.archive_name(s), f"{self.base_url}/{self.archive_name(s)}", self.CHECKSUMS.get(s, ()))
                for s in subsets]

    def walk(self, tree: Path, subsets: Sequence[str]) -> Iterator[Entry | Quarantined]:
        for subset in subsets:
            for wav in sorted(self.subset_dir(tree, subset).glob(self.audio_glob)):
                uid, speaker, chapter = wav.stem, wav.parent.parent.name, wav.parent.name
                norm, orig = wav.with_suffix(".normalized.txt"), wav.with_suffix(".original.txt")
                if not norm.exists():
                    yield self.quarantine(uid, wav, f"missing transcript {norm.name}")
                    continue
                extra = {"subset": subset, "chapter": chapter}
                if orig.exists():
                    extra["text_original"] = read_text(orig)
                yield Entry(uid, wav, speaker, read_text(norm), libri_split(subset), extra=extra)


class LibriTTSR(LibriTTS):
    """LibriTTS-R: the same layout, archives named ``dev_clean.tar.gz`` ..., unpacked into ``LibriTTS_R/``."""

    name = "libritts_r"
    title = "LibriTTS-R"
    homepage = "https://www.openslr.org/141/"
    base_url = "https://www.openslr.org/resources/141"
    dirnames = ("LibriTTS_R",)
    # md5 as published for openslr 141 (carried by ml-explore/mlx-data's libritts_r loader).
    CHECKSUMS = {
        "dev-clean": ("md5:2c1f5312914890634cc2d15783032ff3",),
        "dev-other": ("md5:62d3a80ad8a282b6f31b3904f0507e4f",),
        "test-clean": ("md5:4d373d453eb96c0691e598061bbafab7",),
        "test-other": ("md5:dbc0959d8bdb6d52200595cabc9995ae",),
        "train-clean-100": ("md5:6df668d8f5f33e70876bfa33862ad02b",),
        "train-clean-360": ("md5:382eb3e64394b3da6a559f864339b22c",),
        "train-other-500": ("md5:a37a8e9f4fe79d20601639bf23d1add8",),
    }

    def archive_name(self, subset: str) -> str:
        return f"{subset.replace('-', '_')}.tar.gz"
