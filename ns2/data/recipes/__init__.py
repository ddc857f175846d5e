"""Recipes for real corpora: download, verify and turn an extracted tree into ``raw.jsonl``.

``RECIPES[name]`` has ``.download(root, subsets)``, ``.verify(root, subsets)`` and
``.build_manifest(root, out_path, subsets, num_workers, **options)``; :class:`RecipeCorpus` wraps one
for the ``data.corpus`` node of the Hydra configs (``ns2 prep data=libritts``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ns2.data.recipes.base import Archive, BuildResult, Entry, Quarantined, Recipe, RecipeError, plain
from ns2.data.recipes.librispeech import LibriSpeech
from ns2.data.recipes.libritts import LibriTTS, LibriTTSR
from ns2.data.recipes.mls import MLSEnglish
from ns2.data.recipes.my_voice import MyVoice, MyVoiceCorpus
from ns2.data.recipes.opencpop import Opencpop, build_score, note_to_midi, parse_transcription
from ns2.data.recipes.singing_folder import SingingFolder, SingingFolderCorpus
from ns2.data.recipes.vctk import VCTK

RECIPES: dict[str, Recipe] = {
    "libritts": LibriTTS(),
    "libritts_r": LibriTTSR(),
    "librispeech": LibriSpeech(),
    "vctk": VCTK(),
    "mls_english": MLSEnglish(),
    "mls_english_opus": MLSEnglish(opus=True),
    "opencpop": Opencpop(),
    "my_voice": MyVoice(),
    "singing_folder": SingingFolder(),
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown corpus recipe {name!r}; expected one of {sorted(RECIPES)}")
    return RECIPES[name]


class RecipeCorpus:
    """A real corpus for ``ns2 prep``: ``build(root)`` writes and returns ``<root>/raw.jsonl``.

    ``download=True`` fetches the archives first (needs internet); otherwise the extracted tree must
    already be under ``root`` and a clear error says how to get it. Extra keyword ``options`` go to
    the recipe's walk (e.g. VCTK ``test_speakers=8, seed=0``; Opencpop ``num_valid=50``).
    """

    def __init__(self, name: str, root: str | os.PathLike | None = None, subsets: Sequence[str] | str | None = None,
                 download: bool = False, **options: Any):
        self.recipe = get_recipe(name)
        self.name = name
        self.root = Path(root) if root is not None else None
        self.subsets = plain(subsets)
        self.download = bool(download)
        self.options = self.recipe.check_options(options)

    def build(self, root: str | os.PathLike | None = None, num_workers: int = 1) -> Path:
        root = Path(root) if root is not None else self.root
        if root is None:
            raise ValueError(f"RecipeCorpus({self.name!r}).build needs a root folder (none given here or at construction)")
        root = root.expanduser()
        if self.download:
            self.recipe.download(root, self.subsets)
        report = self.recipe.verify(root, self.subsets, checksums=False, count=False)
        subsets = list(report["subsets"])
        out = root / "raw.jsonl"
        self.recipe.build_manifest(root, out, subsets=subsets, num_workers=num_workers, **self.options)
        return out

    def __repr__(self) -> str:
        return f"RecipeCorpus(name={self.name!r}, subsets={self.subsets!r}, download={self.download})"


__all__ = ["RECIPES", "RecipeCorpus", "get_recipe", "Recipe", "RecipeError", "Archive", "Entry", "Quarantined",
           "BuildResult", "MyVoice", "MyVoiceCorpus", "SingingFolder", "SingingFolderCorpus", "LibriTTS", "LibriTTSR", "LibriSpeech", "VCTK", "MLSEnglish", "Opencpop",
           "note_to_midi", "parse_transcription", "build_score"]
