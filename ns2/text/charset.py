"""Character classes: which characters each language family can speak.

After :func:`ns2.text.cleaners.normalize`, a text may only contain

* whitespace and the prosody punctuation marks ``, . ! ? ; :`` (:data:`PUNCTUATION`);
* English: ASCII letters, ASCII digits and the apostrophe (inside words);
* Mandarin: the above (Latin words are read by the English voice) and CJK ideographs.

Everything else (emoji, symbols, other scripts, control characters) is *unknown*: the
tokenizer raises an error naming it, or drops it under ``unknown="drop"``.
"""
from __future__ import annotations

__all__ = [
    "PUNCTUATION",
    "PUNCTUATION_STRENGTH",
    "HAN_CLASS",
    "is_punctuation",
    "is_han",
    "is_latin_word_char",
    "is_known_char",
    "unknown_characters",
    "replace_characters",
]

#: Prosody marks kept through normalisation; each is its own token and symbol.
PUNCTUATION: tuple[str, ...] = (",", ".", "!", "?", ";", ":")
_PUNCTUATION_SET = frozenset(PUNCTUATION)
#: When marks follow each other they collapse to the first of them in this order.
PUNCTUATION_STRENGTH = "?!.;:,"

# CJK Unified Ideographs, Extension A, and the BMP compatibility block (NFKC maps most of the
# latter to unified ideographs). Supplementary-plane ideographs are not read by espeak-ng.
_HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
#: The same ranges as a regular-expression character class body.
HAN_CLASS = "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in _HAN_RANGES)


def is_punctuation(ch: str) -> bool:
    """True for the prosody punctuation marks ``, . ! ? ; :``."""
    return ch in _PUNCTUATION_SET


def is_han(ch: str) -> bool:
    """True for a CJK ideograph in the ranges espeak-ng's Mandarin voice can look up."""
    code = ord(ch)
    return any(low <= code <= high for low, high in _HAN_RANGES)


def is_latin_word_char(ch: str) -> bool:
    """True for characters that may form an English word: ASCII letters, digits, apostrophe."""
    return ch.isascii() and (ch.isalnum() or ch == "'")


def is_known_char(ch: str, family: str) -> bool:
    """Whether ``ch`` is speakable (or whitespace/punctuation) for the language ``family``."""
    if ch in _PUNCTUATION_SET or ch == " " or is_latin_word_char(ch):
        return True
    if ch.isspace():
        return True
    return family == "cmn" and is_han(ch)


def unknown_characters(text: str, family: str) -> list[str]:
    """The distinct unknown characters of ``text``, in order of first appearance."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in seen and not is_known_char(ch, family):
            seen[ch] = None
    return list(seen)


def replace_characters(text: str, chars: list[str] | set[str], replacement: str = " ") -> str:
    """``text`` with every character in ``chars`` replaced by ``replacement``."""
    drop = set(chars)
    return "".join(replacement if ch in drop else ch for ch in text)
