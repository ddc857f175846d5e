"""Cached espeak-ng backends (phonemizer's ``EspeakBackend``) and raw readings.

* :func:`english_backend` -- one backend per English voice, IPA output with stress marks;
* :func:`mandarin_backend` -- the ``cmn`` backend, which reads espeak's phoneme *mnemonics*
  (they keep all five tones) and maps them to IPA (:mod:`ns2.text.mandarin`);
* :func:`run_backend` -- many lines in one call -> per line, espeak's words as phone strings;
* :func:`han_reading` -- one ideograph read alone (cached), None when espeak cannot read it.

Lines given to :func:`run_backend` should carry no punctuation: phonemizer restores
punctuation in time quadratic in the marks of one call.
"""
from __future__ import annotations

import ctypes
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from ns2.text.espeak import setup_espeak
from ns2.text.mandarin import FOREIGN, MNEMONIC_MODE, count_syllables, mnemonics_to_words

if TYPE_CHECKING:
    from phonemizer.backend import EspeakBackend

__all__ = [
    "PHONE_SEPARATOR",
    "WORD_SEPARATOR",
    "english_backend",
    "mandarin_backend",
    "run_backend",
    "han_reading",
    "espeak_mnemonics",
]

PHONE_SEPARATOR, WORD_SEPARATOR = " ", "|"


def _separator() -> Any:
    from phonemizer.separator import Separator

    return Separator(phone=PHONE_SEPARATOR, word=WORD_SEPARATOR, syllable="")


@cache
def english_backend(voice: str) -> EspeakBackend:
    """One cached phonemizer backend per English voice."""
    setup_espeak()
    from phonemizer.backend import EspeakBackend

    return EspeakBackend(voice, preserve_punctuation=True, with_stress=True, language_switch="remove-flags")


def espeak_mnemonics(wrapper: Any, text: str) -> str:
    """espeak's phoneme *mnemonics* for ``text`` (phonemizer only exposes IPA output)."""
    api = wrapper._espeak  # phonemizer's EspeakAPI: the ctypes binding of espeak_TextToPhonemes
    pointer = ctypes.pointer(ctypes.c_char_p(text.encode("utf-8")))
    parts = []
    while pointer.contents.value is not None:
        out = api.text_to_phonemes(pointer, 1, MNEMONIC_MODE)
        if out:
            parts.append(out.decode("utf-8", errors="replace"))
    return " ".join(parts)


@lru_cache(maxsize=1)
def mandarin_backend() -> EspeakBackend:
    """The cached ``cmn`` backend; reads mnemonics to keep all five tones (see :mod:`ns2.text.mandarin`)."""
    setup_espeak()
    from phonemizer.backend import EspeakBackend

    class MandarinBackend(EspeakBackend):
        def _phonemize_aux(self, text, offset, separator, strip):  # type: ignore[no-untyped-def]
            output = []
            for line in text:
                words = mnemonics_to_words(espeak_mnemonics(self._espeak, line))
                output.append(separator.word.join(separator.phone.join(word) for word in words))
            return output, []

    return MandarinBackend("cmn", preserve_punctuation=True, with_stress=True, language_switch="remove-flags")


def run_backend(backend: EspeakBackend, lines: list[str]) -> list[list[list[str]]]:
    """Phonemize ``lines`` in one call -> per line, espeak's words, each a list of phone strings."""
    if not lines:
        return []
    out = backend.phonemize(lines, separator=_separator(), strip=True, njobs=1)
    return [
        [[p for p in word.split(PHONE_SEPARATOR) if p] for word in line.split(WORD_SEPARATOR) if word.strip()]
        for line in out
    ]


@lru_cache(maxsize=65536)
def han_reading(ch: str) -> tuple[str, ...] | None:
    """Symbols of one ideograph read alone, or None when espeak cannot read it."""
    words = run_backend(mandarin_backend(), [ch])
    symbols = [s for word in (words[0] if words else []) for s in word]
    if not symbols or FOREIGN in symbols or count_syllables(symbols) != 1:
        return None
    return tuple(symbols)
