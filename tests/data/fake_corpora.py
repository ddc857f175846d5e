"""Tiny trees in the exact layouts of the real corpora, for the recipe tests.

Each ``make_*`` writes short tones with soundfile and returns ``{id: expected fields}``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def write_audio(path: Path, sr: int, seconds: float, **kwargs) -> float:
    """A quiet tone of ``seconds`` at ``sr``; returns the exact duration written."""
    n = int(round(sr * seconds))
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(n) / sr
    sf.write(str(path), (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, **kwargs)
    return n / sr


def corrupt(path: Path) -> None:
    path.write_bytes(b"this is not audio" * 8)


def make_libritts(root: Path, dirname: str = "LibriTTS",
                  subsets: tuple[str, ...] = ("train-clean-100", "dev-clean", "test-clean")) -> dict[str, dict]:
    """``<dirname>/<subset>/<spk>/<chapter>/<spk>_<chapter>_<para>_<sent>.wav`` + texts at 24 kHz."""
    split = {"train": "train", "dev": "valid", "test": "test"}
    out = {}
    for k, subset in enumerate(subsets):
        for s in range(2):
            spk, chapter = str(100 + 10 * k + s), str(5000 + k)
            for u in range(2):
                uid = f"{spk}_{chapter}_{u:06d}_{u + 1:06d}"
                d = root / dirname / subset / spk / chapter
                dur = write_audio(d / f"{uid}.wav", 24000, 0.05 * (u + 1))
                text = f"Hello number {u} from speaker {spk}."
                (d / f"{uid}.normalized.txt").write_text(text + "\n", encoding="utf-8")
                (d / f"{uid}.original.txt").write_text(text.replace("number", "No."), encoding="utf-8")
                out[uid] = {"speaker": spk, "text": text, "split": split[subset.split("-")[0]], "sample_rate": 24000,
                            "duration": dur, "subset": subset}
    return out


def make_librispeech(root: Path, subsets: tuple[str, ...] = ("test-clean", "dev-clean")) -> dict[str, dict]:
    """``LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<n>.flac`` + ``<spk>-<chapter>.trans.txt``."""
    split = {"train": "train", "dev": "valid", "test": "test"}
    out = {}
    for k, subset in enumerate(subsets):
        for s in range(2):
            spk, chapter = str(1000 + 10 * k + s), str(7000 + k)
            d = root / "LibriSpeech" / subset / spk / chapter
            lines = []
            for u in range(3):
                uid = f"{spk}-{chapter}-{u:04d}"
                dur = write_audio(d / f"{uid}.flac", 16000, 0.04 * (u + 1))
                text = f"HE SAID {u} TIMES"
                lines.append(f"{uid} {text}")
                out[uid] = {"speaker": spk, "text": text, "split": split[subset.split("-")[0]], "sample_rate": 16000,
                            "duration": dur}
            (d / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def make_vctk(root: Path, speakers: tuple[str, ...] = tuple(f"p{i}" for i in range(225, 238)),
              utts: int = 2, textless: str | None = "p315") -> dict[str, dict]:
    """``VCTK-Corpus-0.92/wav48_silence_trimmed/<spk>/<spk>_<n>_mic{1,2}.flac`` + ``txt/<spk>/<spk>_<n>.txt``."""
    base = root / "VCTK-Corpus-0.92"
    out = {}
    for spk in speakers + ((textless,) if textless else ()):
        for u in range(1, utts + 1):
            uid = f"{spk}_{u:03d}"
            for mic in ("mic1", "mic2"):
                dur = write_audio(base / "wav48_silence_trimmed" / spk / f"{uid}_{mic}.flac", 48000, 0.03 * u)
            if spk == textless:
                continue
            text = f"Please call Stella number {u}."
            (base / "txt" / spk).mkdir(parents=True, exist_ok=True)
            (base / "txt" / spk / f"{uid}.txt").write_text(text + "\n", encoding="utf-8")
            out[uid] = {"speaker": spk, "text": text, "sample_rate": 48000, "duration": dur}
    (base / "speaker-info.txt").write_text("ID  AGE  GENDER  ACCENTS  REGION COMMENTS\n", encoding="utf-8")
    return out


def make_mls(root: Path, opus: bool = False, subsets: tuple[str, ...] = ("train", "dev", "test")) -> dict[str, dict]:
    """``mls_english[_opus]/<subset>/transcripts.txt`` + ``audio/<spk>/<book>/<spk>_<book>_<n>.flac|opus``."""
    base = root / ("mls_english_opus" if opus else "mls_english")
    split = {"train": "train", "dev": "valid", "test": "test"}
    out = {}
    for k, subset in enumerate(subsets):
        lines = []
        for s in range(2):
            spk, book = str(2000 + 10 * k + s), str(300 + k)
            for u in range(2):
                uid = f"{spk}_{book}_{u:06d}"
                path = base / subset / "audio" / spk / book / f"{uid}.{'opus' if opus else 'flac'}"
                if opus:
                    dur = write_audio(path, 48000, 0.1, format="OGG", subtype="OPUS")
                else:
                    dur = write_audio(path, 16000, 0.05 * (u + 1))
                text = f"the {subset} book {book} line {u}"
                lines.append(f"{uid}\t{text}")
                out[uid] = {"speaker": spk, "text": text, "split": split[subset],
                            "sample_rate": 48000 if opus else 16000, "duration": dur}
        (base / subset).mkdir(parents=True, exist_ok=True)
        (base / subset / "transcripts.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# id|text|phones|note pitches|note durations|phone durations|slur
OPENCPOP_LINES = [
    "2001000001|感受停在|g an sh ou t ing z ai AP|D#4/Eb4 D#4/Eb4 D4 D4 C4 C4 A4 A4 rest|"
    "0.25 0.25 0.3 0.3 0.2 0.2 0.5 0.5 0.4|0.05 0.2 0.05 0.25 0.04 0.16 0.1 0.4 0.4|0 0 0 0 0 0 0 0 0",
    "2001000002|我|SP w o o|rest C4 C4 D4|0.1 0.3 0.3 0.2|0.1 0.05 0.25 0.2|0 0 0 1",
    "2002000001|啊啊|a a|E4 E4|0.2 0.2|0.2 0.2|0 0",
    "2044000001|你|n i SP|A4 A4 rest|0.4 0.4 0.2|0.1 0.3 0.2|0 0 0",
]
OPENCPOP_TEST = {"2044000001"}


def make_opencpop(root: Path, lines: list[str] = OPENCPOP_LINES) -> dict[str, dict]:
    """``Opencpop/segments/{transcriptions,train,test}.txt`` + ``segments/wavs/<id>.wav`` at 44.1 kHz."""
    seg = root / "Opencpop" / "segments"
    out = {}
    for ln in lines:
        f = ln.split("|")
        dur = write_audio(seg / "wavs" / f"{f[0]}.wav", 44100, sum(float(x) for x in f[5].split()))
        out[f[0]] = {"text": f[1], "phones": f[2].split(), "sample_rate": 44100, "duration": dur}
    (seg / "transcriptions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (seg / "train.txt").write_text("\n".join(ln for ln in lines if ln[:10] not in OPENCPOP_TEST) + "\n", encoding="utf-8")
    (seg / "test.txt").write_text("\n".join(ln for ln in lines if ln[:10] in OPENCPOP_TEST) + "\n", encoding="utf-8")
    return out
