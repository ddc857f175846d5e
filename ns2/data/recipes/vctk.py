"""VCTK 0.92 (Edinburgh DataShare 10283/3443): 110 English speakers, 48 kHz FLAC, two microphones.

Tree (the zip has no top folder; it is unpacked into ``VCTK-Corpus-0.92/``)::

    wav48_silence_trimmed/<spk>/<spk>_<n>_mic1.flac   (and _mic2)
    txt/<spk>/<spk>_<n>.txt

Utterance ids drop the microphone (``p225_001``). VCTK has no official split: ``test_speakers``
and ``valid_speakers`` (counts, chosen with ``seed``, or explicit lists) are held out; everyone else
is train. p315 ships without transcripts, so its files are quarantined.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

from ns2.data.recipes.base import Archive, Entry, Quarantined, Recipe, held_out_speakers, read_text


class VCTK(Recipe):
    name = "vctk"
    title = "VCTK 0.92"
    homepage = "https://datashare.ed.ac.uk/handle/10283/3443"
    url = "https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip"
    dirnames = ("VCTK-Corpus-0.92",)
    subsets = ("all",)
    default_subsets = ("all",)
    audio_glob = "wav48_silence_trimmed/*/*.flac"
    # md5 published by DataShare for the bitstream (also torchaudio.datasets.VCTK_092).
    CHECKSUMS = ("md5:8a6ba2946b36fcbef0212cad601f4bfa",)

    def archives(self, subsets: Sequence[str]) -> list[Archive]:
        return [Archive("VCTK-Corpus-0.92.zip", self.url, self.CHECKSUMS, extract_to="VCTK-Corpus-0.92")]

    def subset_dir(self, tree: Path, subset: str) -> Path:
        return tree

    def required(self, subset: str) -> tuple[str, ...]:
        return ("wav48_silence_trimmed", "txt")

    def walk(self, tree: Path, subsets: Sequence[str], *, mic: str = "mic1", seed: int = 0,
             test_speakers: int | Sequence[str] = 8, valid_speakers: int | Sequence[str] = 4) -> Iterator[Entry | Quarantined]:
        if mic not in ("mic1", "mic2"):
            raise ValueError(f"vctk: mic must be 'mic1' or 'mic2', got {mic!r}")
        found = []
        for flac in sorted((tree / "wav48_silence_trimmed").glob(f"*/*_{mic}.flac")):
            uid = flac.name[: -len(f"_{mic}.flac")]
            found.append((flac, uid, flac.parent.name, tree / "txt" / flac.parent.name / f"{uid}.txt"))
        with_text = {speaker for _, _, speaker, txt in found if txt.exists()}
        splits = held_out_speakers(with_text, seed, valid_speakers, test_speakers)
        for flac, uid, speaker, txt in found:
            if speaker not in splits or not txt.exists():
                yield self.quarantine(uid, flac, f"missing transcript txt/{speaker}/{txt.name}")
                continue
            yield Entry(uid, flac, speaker, read_text(txt), splits[speaker], extra={"mic": mic})
