"""Text -> words with their phoneme symbols, through espeak-ng (phonemizer's ``EspeakBackend``).

``Phonemizer(language).phonemize(text)`` returns a list of :class:`WordPhonemes`: one per
orthographic word, ``(text, phonemes)``, and one per punctuation mark, ``(",", (",",))``.

How a text is read:

1. :func:`ns2.text.cleaners.normalize` (unless ``normalize_text=False``);
2. unknown characters (see :mod:`ns2.text.charset`; for Mandarin also ideographs espeak cannot
   read) raise :class:`TextFrontendError` naming them, or are dropped under ``unknown="drop"``;
3. the text is cut at punctuation into chunks of words; all chunks of a batch go to espeak in one
   call (phonemizer accepts lists), with a cached backend per voice;
4. espeak's words are matched back to the orthographic words. English: espeak joins some
   function words ("of the" -> one word); such chunks are aligned with a per-word reading (a
   small dynamic programme), and a joined reading is split between its words by phone
   alignment, so the contextual pronunciation is kept. Mandarin: espeak segments words itself;
   each of its words takes as many characters as it has syllables (tones); a chunk that does not
   add up is read character by character;
5. espeak phoneme strings are split into symbols of the table by greedy longest match
   (stress marks become their own symbols); symbols outside the table raise an error naming them
   (or are dropped under ``unknown="drop"``).

Latin words inside Mandarin text are read by an English voice (``latin_voice``, en-us).
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import NamedTuple

from ns2.text.backends import english_backend, han_reading, mandarin_backend, run_backend
from ns2.text.charset import (
    HAN_CLASS,
    PUNCTUATION,
    PUNCTUATION_STRENGTH,
    is_han,
    replace_characters,
    unknown_characters,
)
from ns2.text.cleaners import normalize
from ns2.text.errors import TextFrontendError, TextFrontendWarning, describe_chars, snippet
from ns2.text.espeak import setup_espeak
from ns2.text.languages import ENGLISH_VOICES, language_family, resolve_language
from ns2.text.mandarin import FOREIGN, count_syllables
from ns2.text.symbols import DEFAULT_SYMBOLS, SymbolTable
from ns2.text.word_alignment import align_words

__all__ = ["Phonemizer", "WordPhonemes", "UNKNOWN_POLICIES", "check_unknown_policy"]

UNKNOWN_POLICIES = ("error", "drop")
_TOKENS = {
    "en": re.compile(r"(?P<word>[A-Za-z0-9']+)|(?P<punct>[,.!?;:])"),
    "cmn": re.compile(rf"(?P<han>[{HAN_CLASS}]+)|(?P<word>[A-Za-z0-9']+)|(?P<punct>[,.!?;:])"),
}


class WordPhonemes(NamedTuple):
    """One orthographic word and its phoneme symbols, or one punctuation mark ``(",", (",",))``."""

    text: str
    phonemes: tuple[str, ...]

    @property
    def is_punctuation(self) -> bool:
        return self.text in PUNCTUATION and self.phonemes == (self.text,)


def check_unknown_policy(unknown: str) -> str:
    if unknown not in UNKNOWN_POLICIES:
        raise TextFrontendError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
    return unknown


class _Chunk(NamedTuple):
    """Consecutive words read together: ``words`` (orthographic), ``engine`` ("en" or "cmn")."""

    words: list[str]
    engine: str


class Phonemizer:
    """espeak-ng phonemizer returning words with their phoneme symbols (see the module doc).

    Args:
        language: espeak voice (``en-us``, ``en-gb``, ``en-gb-scotland``, ``en-gb-x-rp``,
            ``en-029``, ``en-us-nyc``, ... or ``cmn``; aliases such as ``zh`` are accepted).
        symbols: the symbol table phonemes must belong to (default :data:`DEFAULT_SYMBOLS`).
        unknown: ``"error"`` (default) raises :class:`TextFrontendError` naming unknown
            characters / phoneme symbols; ``"drop"`` drops them and warns once per object.
        normalize_text: run :func:`ns2.text.cleaners.normalize` first (default True).
        latin_voice: English voice for Latin words inside Mandarin text.
    """

    def __init__(
        self,
        language: str = "en-us",
        symbols: SymbolTable | None = None,
        unknown: str = "error",
        normalize_text: bool = True,
        latin_voice: str = "en-us",
    ) -> None:
        self.language = resolve_language(language)
        self.family = language_family(self.language)
        self.symbols = symbols if symbols is not None else DEFAULT_SYMBOLS
        self.unknown = check_unknown_policy(unknown)
        self.normalize_text = normalize_text
        self.latin_voice = resolve_language(latin_voice)
        if self.latin_voice not in ENGLISH_VOICES:
            raise TextFrontendError(f"latin_voice must be an English voice, got {latin_voice!r}")
        self._warned: set[str] = set()
        setup_espeak()

    def __repr__(self) -> str:
        return f"Phonemizer(language={self.language!r}, symbols={self.symbols.version!r}, unknown={self.unknown!r})"

    def __call__(self, text: str) -> list[WordPhonemes]:
        return self.phonemize(text)

    # ------------------------------------------------------------------------ public API
    def normalize(self, text: str) -> str:
        """The text as it will be read (normalised if ``normalize_text``)."""
        if not isinstance(text, str):
            raise TextFrontendError(f"text must be a string, got {type(text).__name__}")
        return normalize(text, self.language) if self.normalize_text else text

    def phonemize(self, text: str) -> list[WordPhonemes]:
        """Words and punctuation of ``text`` with their phoneme symbols (may be empty)."""
        return self.phonemize_batch([text])[0]

    def phonemize_batch(self, texts: Sequence[str], normalized: bool = False) -> list[list[WordPhonemes]]:
        """Phonemize many texts with one espeak call per voice (plus one for realignment).

        ``normalized=True``: the texts already went through :meth:`normalize`.
        """
        if isinstance(texts, str):
            raise TextFrontendError("phonemize_batch expects a list of texts, got a single string")
        if not normalized:
            texts = [self.normalize(text) for text in texts]
        items_per_text = [self._segment(self._check_characters(text)) for text in texts]
        chunks = [item for items in items_per_text for item in items if isinstance(item, _Chunk)]
        readings = self._read_chunks(chunks)
        results: list[list[WordPhonemes]] = []
        reading_iter = iter(readings)
        for items in items_per_text:
            words: list[WordPhonemes] = []
            for item in items:
                if isinstance(item, _Chunk):
                    for orth, phones in next(reading_iter):
                        symbols = self._to_symbols(orth, phones)
                        if symbols:
                            words.append(WordPhonemes(orth, tuple(symbols)))
                elif words and words[-1].is_punctuation:  # marks left adjacent by dropped words
                    if PUNCTUATION_STRENGTH.index(item) < PUNCTUATION_STRENGTH.index(words[-1].text):
                        words[-1] = WordPhonemes(item, (item,))
                elif words:
                    words.append(WordPhonemes(item, (item,)))
            results.append(words)
        return results

    def split_phones(self, ipa: str) -> list[str]:
        """Split an IPA string into symbols of the table (greedy longest match).

        Unknown characters follow the ``unknown`` policy.
        """
        symbols, unknown = self.symbols.split_ipa(ipa)
        if unknown:
            self._unknown_phonemes(unknown, ipa)
        return symbols

    # ----------------------------------------------------------------------- characters
    def _check_characters(self, text: str) -> str:
        unknown = unknown_characters(text, self.family)
        if self.family == "cmn":
            unknown += list(dict.fromkeys(ch for ch in text if is_han(ch) and han_reading(ch) is None))
        if not unknown:
            return text
        message = (
            f"unknown characters {describe_chars(unknown)} in {snippet(text)} "
            f"(language {self.language!r})"
        )
        if self.unknown == "error":
            raise TextFrontendError(message + "; pass unknown='drop' to drop them")
        self._warn_once("chars", message + "; dropped (unknown='drop')")
        return replace_characters(text, unknown)

    def _unknown_phonemes(self, unknown: list[str], context: str) -> None:
        message = (
            f"espeak produced phonemes not in symbol table {self.symbols.version!r}: "
            f"{describe_chars(list(dict.fromkeys(unknown)))} for {snippet(context)} (language {self.language!r})"
        )
        if self.unknown == "error":
            raise TextFrontendError(message + "; pass unknown='drop' to drop them")
        self._warn_once("phonemes", message + "; dropped (unknown='drop')")

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(message + " (further drops are not reported)", TextFrontendWarning, stacklevel=4)

    # ------------------------------------------------------------------------- segmentation
    def _segment(self, text: str) -> list[_Chunk | str]:
        """Chunks of words between punctuation marks; marks as plain strings (runs collapsed)."""
        items: list[_Chunk | str] = []
        for match in _TOKENS[self.family].finditer(text):
            kind = match.lastgroup
            token = match.group(0)
            if kind == "punct":
                if not items:
                    continue  # nothing to attach a leading mark to
                if isinstance(items[-1], str):
                    if PUNCTUATION_STRENGTH.index(token) < PUNCTUATION_STRENGTH.index(items[-1]):
                        items[-1] = token
                    continue
                items.append(token)
                continue
            if kind == "word":
                token = token.strip("'")
                if not token:
                    continue
            engine = "cmn" if kind == "han" else "en"
            if items and isinstance(items[-1], _Chunk) and items[-1].engine == engine:
                items[-1].words.append(token)
            else:
                items.append(_Chunk([token], engine))
        return items

    # ------------------------------------------------------------------------------ reading
    def _english_voice(self) -> str:
        return self.language if self.family == "en" else self.latin_voice

    def _read_chunks(self, chunks: list[_Chunk]) -> list[list[tuple[str, list[str]]]]:
        """Per chunk, ``(orthographic word, espeak phone strings)`` pairs."""
        english = [c for c in chunks if c.engine == "en"]
        mandarin = [c for c in chunks if c.engine == "cmn"]
        readings: dict[int, list[tuple[str, list[str]]]] = {}
        readings.update(self._read_english(english))
        readings.update(self._read_mandarin(mandarin))
        return [readings[id(c)] for c in chunks]

    def _read_english(self, chunks: list[_Chunk]) -> dict[int, list[tuple[str, list[str]]]]:
        backend = english_backend(self._english_voice())
        joined = run_backend(backend, [" ".join(c.words) for c in chunks])
        mismatched = {k for k, c in enumerate(chunks) if len(joined[k]) != len(c.words)}
        lone_words = list(dict.fromkeys(w for k in sorted(mismatched) for w in chunks[k].words))
        alone = dict(zip(lone_words, run_backend(backend, lone_words)))
        out: dict[int, list[tuple[str, list[str]]]] = {}
        for k, chunk in enumerate(chunks):
            phones = joined[k]
            if k in mismatched:
                own = [[p for w in alone[word] for p in w] for word in chunk.words]
                phones = align_words(own, phones)
            out[id(chunk)] = list(zip(chunk.words, phones))
        return out

    def _read_mandarin(self, chunks: list[_Chunk]) -> dict[int, list[tuple[str, list[str]]]]:
        joined = run_backend(mandarin_backend(), ["".join(c.words) for c in chunks])
        out: dict[int, list[tuple[str, list[str]]]] = {}
        for k, chunk in enumerate(chunks):
            chars = "".join(chunk.words)
            words = joined[k]
            syllables = [count_syllables(w) for w in words]
            if sum(syllables) == len(chars) and all(syllables) and not any(FOREIGN in w for w in words):
                pairs, start = [], 0
                for word, count in zip(words, syllables):
                    pairs.append((chars[start : start + count], word))
                    start += count
                out[id(chunk)] = pairs
            else:  # read character by character (every character was checked to be readable)
                out[id(chunk)] = [(ch, list(han_reading(ch) or ())) for ch in chars]
        return out

    # ------------------------------------------------------------------------------ symbols
    def _to_symbols(self, orth: str, phones: list[str]) -> list[str]:
        """espeak phone strings of one word -> table symbols (greedy longest match)."""
        symbols: list[str] = []
        unknown: list[str] = []
        for phone in phones:
            # espeak-ng writes a few lengths with an ASCII colon (en-gb-scotland "a:")
            found, missing = self.symbols.split_ipa(phone.replace(":", "ː"))
            symbols += found
            unknown += missing
        if unknown:
            self._unknown_phonemes(unknown, orth)
        if not phones:
            message = f"espeak produced no phonemes for word {orth!r} (language {self.language!r})"
            if self.unknown == "error":
                raise TextFrontendError(message + "; pass unknown='drop' to drop it")
            self._warn_once("words", message + "; dropped (unknown='drop')")
        return symbols
