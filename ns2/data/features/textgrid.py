"""Praat TextGrids (long and short text formats) and Montreal Forced Aligner phone tiers.

:func:`read_textgrid` parses both text formats Praat writes (MFA writes the long one), UTF-8 or
UTF-16. :func:`mfa_alignment` turns an MFA TextGrid into our phoneme sequence with times: MFA phones
(ARPAbet from ``english_us_arpa``, with stress digits, or IPA from ``english_mfa``) are mapped to the
symbol table; empty intervals and ``sil``/``sp``/``spn`` become ``<sil>`` (consecutive silences merge);
a zero-length word boundary ``|`` is put between two words that touch. Phones without a mapping
are counted in ``Alignment.unmapped``.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Container, Mapping

SILENCE = "<sil>"
WORD_BOUNDARY = "|"
SILENCE_PHONES = frozenset({"", "sil", "sp", "spn", "<eps>", "<sil>", "sil_s", "sil_e"})

# ARPAbet (stress digits stripped, except where stress changes the vowel) -> IPA as espeak-ng writes it.
ARPABET_TO_IPA: dict[str, tuple[str, ...]] = {
    "AA": ("ɑː", "ɑ"), "AE": ("æ",), "AH": ("ʌ",), "AH0": ("ə",), "AO": ("ɔː", "ɔ"), "AW": ("aʊ",),
    "AY": ("aɪ",), "B": ("b",), "CH": ("tʃ",), "D": ("d",), "DH": ("ð",), "EH": ("ɛ",),
    "ER": ("ɜː", "ɝ"), "ER0": ("ɚ",), "EY": ("eɪ",), "F": ("f",), "G": ("ɡ",), "HH": ("h",),
    "IH": ("ɪ",), "IY": ("iː", "i"), "JH": ("dʒ",), "K": ("k",), "L": ("l",), "M": ("m",), "N": ("n",),
    "NG": ("ŋ",), "OW": ("oʊ",), "OY": ("ɔɪ",), "P": ("p",), "R": ("ɹ",), "S": ("s",), "SH": ("ʃ",),
    "T": ("t",), "TH": ("θ",), "UH": ("ʊ",), "UW": ("uː", "u"), "V": ("v",), "W": ("w",), "Y": ("j",),
    "Z": ("z",), "ZH": ("ʒ",),
}

# MFA's english_mfa IPA phones that espeak-ng spells differently (identical symbols map to themselves).
MFA_IPA_TO_IPA: dict[str, tuple[str, ...]] = {
    "ɑ": ("ɑː", "ɑ"), "ɒ": ("ɑː", "ɒ"), "ɔ": ("ɔː", "ɔ"), "i": ("iː", "i"), "iː": ("iː", "i"),
    "u": ("uː", "u"), "uː": ("uː", "u"), "ʉ": ("uː", "u"), "ʉː": ("uː", "u"), "ɝ": ("ɜː", "ɝ"),
    "ɜ": ("ɜː",), "ɜː": ("ɜː",), "ej": ("eɪ",), "e": ("eɪ", "e"), "ow": ("oʊ",), "o": ("oʊ", "o"),
    "aj": ("aɪ",), "aw": ("aʊ",), "ɔj": ("ɔɪ",), "ɫ": ("l",), "ɫ̩": ("əl", "l"), "l̩": ("əl", "l"),
    "n̩": ("ən", "n"), "m̩": ("əm", "m"), "ɹ̩": ("ɚ",), "ɾ̃": ("ɾ", "n"), "ʔ": ("ʔ", "t"),
    "tʷ": ("t",), "kʷ": ("k",), "ɡʷ": ("ɡ",), "pʷ": ("p",), "dʲ": ("d",), "tʲ": ("t",), "c": ("k",),
    "cʰ": ("k",), "ɟ": ("ɡ",), "kʰ": ("k",), "pʰ": ("p",), "tʰ": ("t",), "ç": ("h",), "ʎ": ("l",),
    "ɲ": ("n",), "ɐ": ("ə",), "ɚ": ("ɚ",), "g": ("ɡ",), "r": ("ɹ",), "ʍ": ("w",), "ɱ": ("m",),
}

_STRESS = re.compile(r"^([A-Z]+)([012])$")
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(?<![\[\w])(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?![\w\]])|<(exists|absent)>')


class TextGridError(ValueError):
    """A file that is not a readable Praat TextGrid; the message names the file."""


@dataclass(frozen=True)
class Interval:
    xmin: float
    xmax: float
    text: str


@dataclass
class Tier:
    name: str
    kind: str  # "IntervalTier" or "TextTier"
    xmin: float
    xmax: float
    intervals: list[Interval] = field(default_factory=list)  # for a TextTier: points as Interval(t, t, mark)


@dataclass
class TextGrid:
    xmin: float
    xmax: float
    tiers: list[Tier]

    def tier(self, *names: str) -> Tier:
        """The first tier whose name equals one of ``names`` (case-insensitive), else one containing it."""
        lowered = [t.name.lower() for t in self.tiers]
        for name in names:
            if name.lower() in lowered:
                return self.tiers[lowered.index(name.lower())]
        for name in names:
            for t in self.tiers:
                if name.lower() in t.name.lower():
                    return t
        raise KeyError(f"no tier named {list(names)} (tiers: {[t.name for t in self.tiers]})")


def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def parse_textgrid(text: str, source: str = "<string>") -> TextGrid:
    """Parse the long or short Praat text format (values are read in order, labels are ignored)."""
    tokens: list[str | float | bool] = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            tokens.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            tokens.append(float(m.group(2)))
        else:
            tokens.append(m.group(3) == "exists")
    pos = 0

    def take(kind: type, what: str):
        nonlocal pos
        if pos >= len(tokens):
            raise TextGridError(f"{source}: ends early while reading {what}")
        tok = tokens[pos]
        pos += 1
        if kind is float and isinstance(tok, float) or kind is str and isinstance(tok, str) or kind is bool and isinstance(tok, bool):
            return tok
        raise TextGridError(f"{source}: expected {what}, found {tok!r}")

    if len(tokens) < 2 or tokens[0] != "ooTextFile" or tokens[1] != "TextGrid":
        raise TextGridError(f'{source}: not a Praat TextGrid (expected File type = "ooTextFile", Object class = "TextGrid")')
    pos = 2
    xmin, xmax = take(float, "xmin"), take(float, "xmax")
    if pos < len(tokens) and isinstance(tokens[pos], bool):
        if not take(bool, "<exists>"):
            return TextGrid(xmin, xmax, [])
    tiers = []
    for t in range(int(take(float, "number of tiers"))):
        kind = take(str, f"tier {t + 1} class")
        name = take(str, f"tier {t + 1} name")
        tier = Tier(name, kind, take(float, "tier xmin"), take(float, "tier xmax"))
        count = int(take(float, f"tier {name!r} size"))
        for _ in range(count):
            if kind == "IntervalTier":
                a, b = take(float, "interval xmin"), take(float, "interval xmax")
                tier.intervals.append(Interval(a, b, take(str, "interval text")))
            elif kind == "TextTier":
                tp = take(float, "point time")
                tier.intervals.append(Interval(tp, tp, take(str, "point mark")))
            else:
                raise TextGridError(f"{source}: unknown tier class {kind!r}")
        tiers.append(tier)
    return TextGrid(xmin, xmax, tiers)


def read_textgrid(path: str | os.PathLike) -> TextGrid:
    path = Path(path)
    try:
        text = _decode(path.read_bytes())
    except (OSError, UnicodeDecodeError) as e:
        raise TextGridError(f"{path}: cannot read ({e})") from None
    return parse_textgrid(text, str(path))


def find_textgrid(textgrid_dir: str | os.PathLike, utt_id: str, speaker: str) -> Path | None:
    """``<dir>/<speaker>/<id>.TextGrid`` or ``<dir>/<id>.TextGrid`` (MFA's two output layouts)."""
    d = Path(textgrid_dir)
    for p in (d / speaker / f"{utt_id}.TextGrid", d / f"{utt_id}.TextGrid"):
        if p.exists():
            return p
    return None


def map_phone(phone: str, symbols: Container[str], phone_map: Mapping[str, str] | None = None) -> str | None:
    """One MFA phone -> one symbol of ``symbols`` (``None`` when there is no mapping).

    Order: silences -> ``<sil>``; ``phone_map`` (user table); ARPAbet (``AH0`` -> ``ə``, ``IY1`` -> ``iː``
    ...); MFA IPA phones that espeak-ng spells differently (``i`` -> ``iː``, ``ɫ`` -> ``l`` ...); else the
    phone itself when it is a symbol.
    """
    p = phone.strip()
    if p.lower() in SILENCE_PHONES:
        return SILENCE
    if phone_map and p in phone_map:
        return phone_map[p]
    candidates: tuple[str, ...] = (p,)
    m = _STRESS.match(p)
    if m:
        base, stress = m.groups()
        candidates = ARPABET_TO_IPA.get(base + stress, ()) if stress == "0" else ()
        candidates = candidates or ARPABET_TO_IPA.get(base, ())
    elif p in ARPABET_TO_IPA:
        candidates = ARPABET_TO_IPA[p]
    elif p in MFA_IPA_TO_IPA:  # espeak's spelling first, so both front ends agree
        candidates = (*MFA_IPA_TO_IPA[p], p)
    for c in candidates:
        if c in symbols:
            return c
    return None


@dataclass
class Alignment:
    """Phonemes with times (s) and word indices from a TextGrid; ``unmapped`` counts phones without a symbol."""

    phonemes: list[str]
    times: list[list[float]]
    word_index: list[int]
    unmapped: Counter = field(default_factory=Counter)


def mfa_alignment(tg: TextGrid, symbols: Container[str], phone_map: Mapping[str, str] | None = None,
                  word_boundaries: bool = True) -> Alignment:
    """Our phoneme sequence from an MFA TextGrid's ``phones`` tier (and ``words`` tier for word indices).

    Each phone gets the index of the word interval holding its midpoint (-1 for silences and
    boundaries); with ``word_boundaries`` a zero-length ``|`` goes between two adjacent words.
    """
    phones = tg.tier("phones", "phone")
    try:
        words = [w for w in tg.tier("words", "word").intervals if w.text.strip().lower() not in SILENCE_PHONES]
    except KeyError:
        words = []
    out = Alignment([], [], [])
    prev_word = -1
    for iv in phones.intervals:
        if iv.xmax <= iv.xmin:
            continue
        sym = map_phone(iv.text, symbols, phone_map)
        if sym is None:
            out.unmapped[iv.text.strip()] += 1
            continue
        mid = 0.5 * (iv.xmin + iv.xmax)
        widx = -1
        if sym != SILENCE:
            widx = next((k for k, w in enumerate(words) if w.xmin <= mid < w.xmax), -1)
        if sym == SILENCE:
            if out.phonemes and out.phonemes[-1] == SILENCE:
                out.times[-1][1] = iv.xmax
                continue
            if out.phonemes and out.phonemes[-1] == WORD_BOUNDARY:  # a pause replaces the boundary
                out.phonemes.pop(), out.times.pop(), out.word_index.pop()
        elif word_boundaries and WORD_BOUNDARY in symbols and widx != prev_word and prev_word >= 0 \
                and out.phonemes and out.phonemes[-1] != SILENCE:
            out.phonemes.append(WORD_BOUNDARY)
            out.times.append([iv.xmin, iv.xmin])
            out.word_index.append(-1)
        out.phonemes.append(sym)
        out.times.append([iv.xmin, iv.xmax])
        out.word_index.append(widx)
        if sym != SILENCE:
            prev_word = widx
        else:
            prev_word = -1
    return out
