"""The ``phonemes`` stage: the text front end where a corpus gives no phonemes, a symbol check where it does."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ns2.data.manifest import Utterance
from ns2.data.stages.base import Quarantine, StageContext, one_line, require_text

__all__ = ["PhonemesStage", "get_tokenizer", "symbol_set"]


_TOKENIZERS: dict[str, Any] = {}


def get_tokenizer(language: str) -> Any:
    """One ``ns2.text.Tokenizer`` per language and process."""
    if language not in _TOKENIZERS:
        from ns2.text import Tokenizer

        _TOKENIZERS[language] = Tokenizer(language)
    return _TOKENIZERS[language]


def symbol_set() -> frozenset[str]:
    """The symbols of ``ns2.text.DEFAULT_SYMBOLS``."""
    from ns2.text import DEFAULT_SYMBOLS

    return frozenset(DEFAULT_SYMBOLS.symbols)


@dataclass
class PhonemesStage:
    """Fill ``phonemes``/``word_index`` with the text front end where a corpus did not provide them.

    Phonemes a corpus provides are checked against the symbol table. Front-end errors (unknown
    characters, unsupported language) quarantine the item with the front end's message.
    """

    name: ClassVar[str] = "phonemes"
    version: ClassVar[int] = 1  # bump when the output for the same input changes
    language: str = "en-us"

    def process(self, utt: Utterance, ctx: StageContext) -> Utterance:
        require_text(utt)
        if utt.phonemes is not None:
            unknown = sorted(set(utt.phonemes) - symbol_set())
            if unknown:
                raise Quarantine(f"phonemes not in the symbol table: {unknown}")
            return utt
        from ns2.text import TextFrontendError

        try:
            tok = get_tokenizer(utt.language or self.language)(utt.text)
        except TextFrontendError as e:
            raise Quarantine(one_line(e)) from None
        if not tok.phonemes:
            raise Quarantine("the text front end gave no phonemes")
        return utt.replace(phonemes=list(tok.phonemes), word_index=[int(i) for i in tok.word_index],
                           phoneme_times=None, durations=None)
