"""Text -> phoneme ids with word boundaries: ``Tokenizer(language)(text) -> TokenizedText``.

Sequence layout: the phonemes of each word, a word boundary ``|`` between consecutive words,
punctuation marks right after the word they follow (``h ə l ˈ oʊ , | w ˈ ɜː l d !``), and
optionally ``<bos>`` / ``<eos>`` around everything. ``word_index[k]`` is the index in ``words``
of the word phoneme ``k`` belongs to, or -1 for boundaries, punctuation and ``<bos>``/``<eos>``.

Unknown-input policy (``unknown=``):

* ``"error"`` (default): characters the front end cannot read (emoji, symbols, other scripts,
  ideographs espeak-ng does not know) and phoneme symbols outside the table raise
  :class:`TextFrontendError` with a one-line message naming them;
* ``"drop"``: they are dropped and a :class:`TextFrontendWarning` is emitted once per tokenizer.

Either way, a text with nothing left to speak raises :class:`TextFrontendError`.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ns2.text.errors import TextFrontendError, TextFrontendWarning, describe_chars, snippet
from ns2.text.phonemizer import Phonemizer, WordPhonemes, check_unknown_policy
from ns2.text.symbols import BOS, DEFAULT_SYMBOLS, EOS, WORD_BOUNDARY, SymbolTable

__all__ = ["TokenizedText", "Tokenizer", "tokenize_phonemes"]


@dataclass
class TokenizedText:
    """A tokenized utterance.

    Attributes:
        phonemes: symbols, including ``|`` between words and punctuation marks.
        ids: ``symbols.encode(phonemes)``.
        word_index: for each phoneme, the index of its word in ``words`` (-1: boundary/punctuation).
        words: the orthographic words (after normalisation).
        text: the normalised text that was read.
        language: the espeak voice.
        symbols_version: version of the symbol table the ids refer to.
    """

    phonemes: list[str]
    ids: list[int]
    word_index: list[int]
    words: list[str]
    text: str = ""
    language: str = ""
    symbols_version: str = field(default=DEFAULT_SYMBOLS.version)

    def __len__(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for manifests)."""
        return asdict(self)

    def word_phonemes(self) -> list[tuple[str, list[str]]]:
        """``(word, its phonemes)`` pairs, in order."""
        grouped: list[list[str]] = [[] for _ in self.words]
        for phoneme, index in zip(self.phonemes, self.word_index):
            if index >= 0:
                grouped[index].append(phoneme)
        return list(zip(self.words, grouped))


def tokenize_phonemes(
    phonemes: Sequence[str], symbols: SymbolTable | None = None, unknown: str = "error"
) -> list[int]:
    """Ids for a corpus that already carries phonemes.

    Each element is a table symbol, or an IPA string that is split into symbols by greedy
    longest match (so ``"ˈoʊ"`` gives ``ˈ``, ``oʊ``); whitespace-only elements are word
    boundaries. Unknown symbols raise :class:`TextFrontendError` naming them, or are dropped
    (with a warning) under ``unknown="drop"``.
    """
    table = symbols if symbols is not None else DEFAULT_SYMBOLS
    check_unknown_policy(unknown)
    if isinstance(phonemes, str):
        raise TextFrontendError("tokenize_phonemes expects a list of symbols; split the string or pass [string]")
    out: list[str] = []
    unknown_found: list[str] = []
    for element in phonemes:
        if not isinstance(element, str):
            raise TextFrontendError(f"phoneme symbols must be strings, got {element!r}")
        if element in table:
            out.append(element)
        elif element.strip() == "":
            out.append(WORD_BOUNDARY)
        else:
            found, missing = table.split_ipa(element)
            out += found
            unknown_found += missing
    if unknown_found:
        names = describe_chars(list(dict.fromkeys(unknown_found)))
        message = f"phonemes not in symbol table {table.version!r}: {names}"
        if unknown == "error":
            raise TextFrontendError(message + "; pass unknown='drop' to drop them")
        warnings.warn(message + "; dropped (unknown='drop')", TextFrontendWarning, stacklevel=2)
    return table.encode(out)


class Tokenizer:
    """Normalise, phonemize and encode text (see the module doc for layout and policy).

    Args:
        language: espeak voice (``en-us``, ``en-gb``, ..., ``cmn``).
        symbols: symbol table (default :data:`ns2.text.DEFAULT_SYMBOLS`).
        unknown: ``"error"`` or ``"drop"``.
        add_bos_eos: wrap every sequence in ``<bos>`` ... ``<eos>``.
        normalize_text: run the text normaliser first (default True).
    """

    def __init__(
        self,
        language: str = "en-us",
        symbols: SymbolTable | None = None,
        unknown: str = "error",
        add_bos_eos: bool = False,
        normalize_text: bool = True,
    ) -> None:
        self.symbols = symbols if symbols is not None else DEFAULT_SYMBOLS
        self.unknown = check_unknown_policy(unknown)
        self.add_bos_eos = add_bos_eos
        self.phonemizer = Phonemizer(language, symbols=self.symbols, unknown=unknown, normalize_text=normalize_text)
        self.language = self.phonemizer.language

    def __repr__(self) -> str:
        return f"Tokenizer(language={self.language!r}, symbols={self.symbols.version!r}, unknown={self.unknown!r})"

    def __call__(self, text: str) -> TokenizedText:
        return self.tokenize(text)

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def tokenize(self, text: str) -> TokenizedText:
        """One text -> :class:`TokenizedText`; :class:`TextFrontendError` when it cannot be read."""
        return self.tokenize_batch([text])[0]

    def tokenize_batch(self, texts: Sequence[str]) -> list[TokenizedText]:
        """Many texts at once (one espeak call per voice); raises on the first unreadable text."""
        if isinstance(texts, str):
            raise TextFrontendError("tokenize_batch expects a list of texts, got a single string")
        normalised = [self.phonemizer.normalize(text) for text in texts]
        words_per_text = self.phonemizer.phonemize_batch(normalised, normalized=True)
        return [self._assemble(text, words) for text, words in zip(normalised, words_per_text)]

    def tokenize_phonemes(self, phonemes: Sequence[str]) -> list[int]:
        """Ids for phonemes a corpus already carries (see :func:`tokenize_phonemes`)."""
        return tokenize_phonemes(phonemes, self.symbols, self.unknown)

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Ids -> symbols."""
        return self.symbols.decode(ids)

    def _assemble(self, text: str, items: list[WordPhonemes]) -> TokenizedText:
        phonemes: list[str] = []
        word_index: list[int] = []
        words: list[str] = []
        for item in items:
            if item.is_punctuation:
                if phonemes:
                    phonemes.append(item.text)
                    word_index.append(-1)
                continue
            if words:
                phonemes.append(WORD_BOUNDARY)
                word_index.append(-1)
            phonemes += item.phonemes
            word_index += [len(words)] * len(item.phonemes)
            words.append(item.text)
        if not words:
            raise TextFrontendError(f"nothing to speak in {snippet(text)} (language {self.language!r})")
        if self.add_bos_eos:
            phonemes = [BOS, *phonemes, EOS]
            word_index = [-1, *word_index, -1]
        return TokenizedText(
            phonemes=phonemes,
            ids=self.symbols.encode(phonemes),
            word_index=word_index,
            words=words,
            text=text,
            language=self.language,
            symbols_version=self.symbols.version,
        )
