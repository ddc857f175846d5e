"""Language codes understood by the front end.

A *language* is an espeak-ng voice name. Each belongs to a *family* that selects the text
normalisation and the phonemization path: ``"en"`` (all English voices) or ``"cmn"`` (Mandarin).
"""
from __future__ import annotations

from ns2.text.errors import TextFrontendError

__all__ = ["ENGLISH_VOICES", "MANDARIN_VOICES", "SUPPORTED_LANGUAGES", "resolve_language", "language_family"]

ENGLISH_VOICES: tuple[str, ...] = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
MANDARIN_VOICES: tuple[str, ...] = ("cmn",)
SUPPORTED_LANGUAGES: tuple[str, ...] = ENGLISH_VOICES + MANDARIN_VOICES

# Convenience spellings -> espeak voice.
_ALIASES = {
    "en": "en-us",
    "english": "en-us",
    "en_us": "en-us",
    "en-uk": "en-gb",
    "en_gb": "en-gb",
    "zh": "cmn",
    "zh-cn": "cmn",
    "zh_cn": "cmn",
    "cmn-cn": "cmn",
    "mandarin": "cmn",
    "chinese": "cmn",
}


def resolve_language(language: str) -> str:
    """Canonical espeak voice for ``language`` (case-insensitive, a few aliases such as ``zh``)."""
    if not isinstance(language, str):
        raise TextFrontendError(f"language must be a string, got {type(language).__name__}")
    code = language.strip().lower()
    code = _ALIASES.get(code, code)
    if code not in SUPPORTED_LANGUAGES:
        raise TextFrontendError(
            f"unsupported language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGES)}"
        )
    return code


def language_family(language: str) -> str:
    """``"en"`` or ``"cmn"`` for any supported language code."""
    return "cmn" if resolve_language(language) in MANDARIN_VOICES else "en"
