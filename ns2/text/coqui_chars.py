"""The character input of Coqui TTS's released VITS / YourTTS models, read from their ``config.json``.

The released YourTTS reads characters, not phonemes (``use_phonemes: false``). Its vocabulary is
Coqui's ``VitsCharacters`` layout, built from the config's ``characters`` entry::

    [pad] + list(punctuations) + list(characters) + list(phonemes or "") + ["<BLNK>"]

(no sorting, no de-duplication: the first occurrence of a duplicated character wins, as in a Python
dict built in order). A text is cleaned (``multilingual_cleaners``: quotes removed, lower-cased, the
language's symbols spelt out, whitespace collapsed), each character mapped to its id (characters
outside the vocabulary are dropped, as Coqui does), and with ``add_blank`` the blank id is put
between every two tokens and at both ends: ``[b, c1, b, c2, ..., cn, b]``.

Not reproduced: Coqui's number and abbreviation expansion (``num2words``); write numbers as words.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["BLANK", "CoquiCharacters"]

BLANK = "<BLNK>"
# expand_symbols_multilingual's table for the languages of the released YourTTS
SYMBOLS = {
    "en": [("&", " and "), ("@", " at "), ("%", " percent "), ("#", " hash "), ("$", " dollar "), ("£", " pound "),
           ("°", " degree ")],
    "fr-fr": [("&", " et "), ("@", " arobase "), ("%", " pourcent "), ("#", " dièse "), ("$", " dollar "),
              ("£", " livre "), ("°", " degrés ")],
    "pt-br": [("&", " e "), ("@", " arroba "), ("%", " por cento "), ("#", " cardinal "), ("$", " dólar "),
              ("£", " libra "), ("°", " graus ")],
}


class CoquiCharacters:
    """Text -> token ids of a released Coqui VITS/YourTTS model (module docstring)."""

    def __init__(self, characters: str, punctuations: str, pad: str = "_", phonemes: str | None = None,
                 add_blank: bool = True, cleaner: str = "multilingual_cleaners") -> None:
        self.vocab = [pad, *punctuations, *characters, *(phonemes or ""), BLANK]
        self.ids: dict[str, int] = {}
        for i, ch in enumerate(self.vocab):
            self.ids.setdefault(ch, i)
        self.add_blank, self.cleaner = bool(add_blank), str(cleaner)
        self.pad_id, self.blank_id = 0, len(self.vocab) - 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CoquiCharacters:
        """From a Coqui ``config.json`` (its ``characters``, ``add_blank`` and ``text_cleaner`` entries)."""
        chars = config.get("characters")
        if not isinstance(chars, Mapping) or "characters" not in chars or "punctuations" not in chars:
            raise ValueError("Coqui config: 'characters' must hold 'characters' and 'punctuations'")
        return cls(str(chars["characters"]), str(chars["punctuations"]), str(chars.get("pad") or "_"),
                   chars.get("phonemes"), bool(config.get("add_blank", True)),
                   str(config.get("text_cleaner") or "multilingual_cleaners"))

    def __len__(self) -> int:
        return len(self.vocab)

    def clean(self, text: str, language: str = "en") -> str:
        text = text.replace('"', "").lower()
        for sym, word in SYMBOLS.get(language, []):
            text = text.replace(sym, word)
        return re.sub(r"\s+", " ", text).strip()

    def encode(self, text: str, language: str = "en") -> list[int]:
        """Text -> ids (characters outside the vocabulary dropped), blank-interspersed with ``add_blank``."""
        ids = [self.ids[ch] for ch in self.clean(text, language) if ch in self.ids]
        if not self.add_blank:
            return ids
        out = [self.blank_id] * (2 * len(ids) + 1)
        out[1::2] = ids
        return out
