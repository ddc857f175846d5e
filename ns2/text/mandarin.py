"""Mandarin: espeak-ng ``cmn`` phoneme mnemonics -> IPA symbols with all five tones.

Why mnemonics and not espeak's IPA output: espeak-ng 1.52 writes a Mandarin tone in IPA mode
as the *first character* of its mnemonic, so tone 1 (55) and tone 4 (51) both come out as
``5``, and tone 2 (35) comes out as ``ɜ`` (the English vowel!). The mnemonic output keeps the
full tone (``55 35 214 51 11``), so we read that and map each phoneme with the table below.

Design (documented in :mod:`ns2.text.symbols` too):

* Tones are **separate symbols**, Chao tone letters placed right after the syllable nucleus,
  where espeak puts them: ``˥`` (tone 1, 55), ``˧˥`` (tone 2, 35), ``˨˩˦`` (tone 3, 214),
  ``˥˩`` (tone 4, 51), ``˩`` (neutral tone, 11). Keeping them apart from the vowels keeps the
  inventory small and lets vowels share embeddings across tones.
* Stress marks (espeak stresses one syllable per word) are separate symbols, as in English.
* Phones follow espeak's IPA where it is proper IPA, with fixes where espeak prints its ASCII
  mnemonic: ``s.`` -> ``ʂ``, ``ts.`` -> ``ʈʂ``, aspiration ``h`` -> ``ʰ``, the apical vowels
  ``i[`` / ``i.`` -> ``ɿ`` / ``ʅ``, ``o-`` -> ``ɤ``, ``ong`` -> ``ʊŋ``, ``@r`` -> ``ɚ``.
* espeak-ng 1.52 lacks the syllables jiong/qiong/xiong (兄, 熊, 穷, 胸 ...) and a few erhua
  words: it reads their pinyin as English ("xiong one"). Single syllables of that kind are
  repaired here (:func:`repair_foreign_readings`); anything else read as a foreign language
  is flagged (:data:`FOREIGN`) so the caller can fall back to reading character by character.
"""
from __future__ import annotations

import re

__all__ = [
    "TONES",
    "TONE_SYMBOLS",
    "MNEMONIC_TO_IPA",
    "MANDARIN_PHONES",
    "FOREIGN",
    "MNEMONIC_MODE",
    "repair_foreign_readings",
    "mnemonics_to_words",
    "count_syllables",
]

#: espeak tone mnemonic -> Chao tone letters (one symbol each).
TONES: dict[str, str] = {"55": "˥", "35": "˧˥", "214": "˨˩˦", "51": "˥˩", "11": "˩"}
TONE_SYMBOLS: tuple[str, ...] = tuple(TONES.values())

#: espeak-ng 1.52 ``cmn`` phoneme mnemonic -> IPA symbol (complete for the voice's inventory).
MNEMONIC_TO_IPA: dict[str, str] = {
    # consonants
    "p": "p", "ph": "pʰ", "t": "t", "th": "tʰ", "k": "k", "kh": "kʰ",
    "ts": "ts", "tsh": "tsʰ", "ts.": "ʈʂ", "ts.h": "ʈʂʰ", "tS;": "tɕ", "tS;h": "tɕʰ",
    "f": "f", "s": "s", "s.": "ʂ", "S;": "ɕ", "X": "χ", "z.": "ʐ",
    "m": "m", "n": "n", "N": "ŋ", "N-": "ŋ̍", "l": "l", "j": "j", "w": "w",
    # vowels and finals (espeak treats diphthongs and -ong as single phonemes)
    "a": "a", "A": "ɑ", "@": "ə", "@r": "ɚ", "o": "o", "o-": "ɤ", "u": "u", "y": "y",
    "i": "i", "i.": "ʅ", "i[": "ɿ",
    "ai": "ai", "ei": "ei", "Au": "ɑu", "ou": "ou", "ong": "ʊŋ",
    "iA": "iɑ", "iE": "iɛ", "io": "io", "iou": "iou",
    "ua": "ua", "uo": "uo", "uai": "uai", "uei": "uei", "u@": "uə",
    "yE": "yɛ", "y&": "yæ", "y@": "yə", "yi": "yi",
}  # fmt: skip

#: Every IPA symbol the Mandarin path can produce (phones only; tones and stress are separate).
MANDARIN_PHONES: frozenset[str] = frozenset(MNEMONIC_TO_IPA.values())

#: Token that marks a word espeak read in another language.
FOREIGN = "(foreign)"

#: ``espeak_TextToPhonemes`` mode: mnemonics (bit 1 clear), ``_`` between phonemes.
MNEMONIC_MODE = ord("_") << 8

_STRESS = {"'": "ˈ", ",": "ˌ"}
_TOKEN = re.compile(r"(?P<stress>['\",%=]*)(?P<base>.+?)(?P<tone>55|35|214|51|11)?")
_FOREIGN_SEGMENT = re.compile(r"\((?!cmn\))[a-z-]+\)(?P<body>.*?)\(cmn\)")
# English readings of pinyin syllables espeak cannot parse: initial part + tone number word.
_PINYIN_AS_ENGLISH = re.compile(
    r"_*(?P<initial>dZ_I2_;_@_N|k_I2_;_@_N|k_S_@_N|r)_+(?P<number>w_0_n|t_u:|T_r_i:|f_o@|f_aI_v)_*"
)
_INITIAL_TO_MNEMONICS = {"dZ_I2_;_@_N": "tS;_j_'ong", "k_I2_;_@_N": "tS;h_j_'ong", "k_S_@_N": "S;_j_'ong", "r": "'@r"}
_NUMBER_TO_TONE = {"w_0_n": "55", "t_u:": "35", "T_r_i:": "214", "f_o@": "51", "f_aI_v": "11"}


def _repair(match: re.Match[str]) -> str:
    body = match.group("body").replace("'", "").replace(",", "")
    fixed = _PINYIN_AS_ENGLISH.fullmatch(body)
    if fixed is None:
        return match.group(0)
    return f"_{_INITIAL_TO_MNEMONICS[fixed['initial']]}{_NUMBER_TO_TONE[fixed['number']]}_"


def repair_foreign_readings(raw: str) -> str:
    """Replace espeak's English readings of jiong/qiong/xiong/er syllables by Mandarin mnemonics."""
    return _FOREIGN_SEGMENT.sub(_repair, raw)


def _token_to_ipa(token: str) -> list[str]:
    match = _TOKEN.fullmatch(token)
    if match is None:  # pragma: no cover - the pattern matches any non-empty token
        return [token]
    out = [_STRESS[ch] for ch in match["stress"] if ch in _STRESS]
    base = match["base"]
    out.append(MNEMONIC_TO_IPA.get(base, base))  # unknown mnemonics pass through and are reported later
    if match["tone"]:
        out.append(TONES[match["tone"]])
    return out


def mnemonics_to_words(raw: str) -> list[list[str]]:
    """espeak ``cmn`` mnemonic output (``"n_i214_X_'Au214__| s._'i.51__|"``) -> words of IPA symbols.

    A word that espeak (still) read in another language is returned as ``[FOREIGN]``.
    """
    words: list[list[str]] = []
    raw = repair_foreign_readings(raw)
    foreign = False
    for chunk in raw.split():
        if "(" in chunk:
            # language switches may span several words: everything up to "(cmn)" is foreign
            foreign = foreign or bool(re.search(r"\((?!cmn\))[a-z-]+\)", chunk))
            if foreign:
                words.append([FOREIGN])
            if "(cmn)" in chunk:
                foreign = False
            continue
        if foreign:
            words.append([FOREIGN])
            continue
        symbols: list[str] = []
        for token in chunk.split("_"):
            if token and token != "|":
                symbols += _token_to_ipa(token)
        if symbols:
            words.append(symbols)
    return words


def count_syllables(word: list[str]) -> int:
    """Number of syllables of a Mandarin word (= number of tone symbols)."""
    return sum(1 for symbol in word if symbol in TONES.values())
