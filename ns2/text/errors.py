"""Errors and warnings raised by the text front end."""
from __future__ import annotations

__all__ = ["TextFrontendError", "TextFrontendWarning", "describe_chars"]


class TextFrontendError(ValueError):
    """Text that the front end cannot turn into phonemes, or a front-end setup problem.

    Messages are a single line and name the offending characters or symbols, so that a data
    preparation stage can quarantine the utterance with a readable reason.
    """


class TextFrontendWarning(UserWarning):
    """Something was dropped under the ``unknown="drop"`` policy (emitted once per object)."""


def describe_chars(chars: list[str] | tuple[str, ...] | set[str]) -> str:
    """``["é", "😀"]`` -> ``"'é' (U+00E9), '😀' (U+1F600)"``: readable and unambiguous on one line."""
    parts = []
    for ch in chars:
        codes = " ".join(f"U+{ord(c):04X}" for c in ch)
        parts.append(f"{ch!r} ({codes})" if ch.isprintable() else f"{ascii(ch)} ({codes})")
    return ", ".join(parts)


def snippet(text: str, limit: int = 60) -> str:
    """A one-line, length-limited ``repr`` of ``text`` for error messages."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
