"""Text normalisation before phonemization: ``normalize(text, language) -> str``.

English: Unicode NFKC; quotes, dashes, ellipses and brackets normalised; abbreviations
(mr, mrs, dr, st, etc., e.g., vs, ...) and symbols (& + = @ # ° /) expanded; numbers read out
(cardinals, ordinals "1st", decimals, years "1990", decades "1990s", currency "$3.50",
percentages, times "3:30", ranges, negatives); accented Latin letters folded to ASCII
("café" -> "cafe", "ß" -> "ss"); whitespace collapsed; optional lowercasing.

Mandarin: NFKC; full-width / CJK punctuation to ASCII (。-> . 、-> , 《》「」 removed ...);
spaces between ideographs removed (espeak segments words with its dictionary);
Arabic digits to Chinese numerals (cardinals, decimals, percentages, years before 年, ranges,
long digit strings read digit by digit).

The prosody marks ``, . ! ? ; :`` are kept (runs collapse to one mark, leading marks are
removed); quotes, ``*``, ``_`` and backticks are formatting and removed. Characters that
normalisation cannot map (emoji, other scripts, unexpected symbols) are left in place for the
tokenizer to report: normalisation never hides content silently.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from ns2.text.charset import HAN_CLASS, PUNCTUATION, PUNCTUATION_STRENGTH
from ns2.text.languages import language_family
from ns2.text.numbers import (
    cardinal_en,
    cardinal_zh,
    decimal_en,
    decimal_zh,
    digits_en,
    digits_zh,
    number_en,
    ordinal_en,
    plural_en,
    year_en,
)

__all__ = ["normalize", "normalize_english", "normalize_mandarin"]


def normalize(text: str, language: str = "en-us", lowercase: bool = False) -> str:
    """Normalise ``text`` for ``language`` (any English voice, or ``cmn``); see the module doc."""
    if language_family(language) == "cmn":
        return normalize_mandarin(text, lowercase=lowercase)
    return normalize_english(text, lowercase=lowercase)


# ------------------------------------------------------------------------------------ shared
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff\u180e"), None)
_SINGLE_QUOTES = "‘’‚‛′`´"
_DOUBLE_QUOTES = "“”„‟″«»‹›「」『』〝〞〟＂\""
_DASHES = "—–‒―⸺⸻"
_PUNCT_CLASS = re.escape("".join(PUNCTUATION))
_PUNCT_RUN = re.compile(rf"[{_PUNCT_CLASS}](?:\s*[{_PUNCT_CLASS}])+")
_STRENGTH = PUNCTUATION_STRENGTH  # which mark survives when several follow each other


def _ascii_digits(text: str) -> str:
    """Decimal digits of any script (٣, ३, ...) as ASCII digits."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


def _typography(text: str) -> str:
    """Quotes, dashes, ellipses, brackets and invisible characters, for every language."""
    text = _ascii_digits(text.translate(_INVISIBLE))
    text = re.sub(r"(?<=\d)\s?[–—]\s?(?=\d)", "-", text)  # numeric ranges keep a hyphen
    text = re.sub(f"[{_SINGLE_QUOTES}]", "'", text)
    text = re.sub(f"[{re.escape(_DOUBLE_QUOTES)}*_]", " ", text)
    text = text.replace("…", ".").replace("⋯", ".")
    text = re.sub(r"\.{2,}", ".", text)
    text = re.sub(f"[{_DASHES}]+|-{{2,}}", ", ", text)
    text = re.sub(r"(?<=\s)-(?=\s)", ", ", text)  # a spaced hyphen is a dash
    text = re.sub(r"[()\[\]{}]", ", ", text)
    text = text.replace("⁄", "/")
    return text


def _pick_mark(match: re.Match[str]) -> str:
    marks = [ch for ch in match.group(0) if not ch.isspace()]
    return min(marks, key=_STRENGTH.index)


def _tidy(text: str, space_after_punctuation: bool) -> str:
    """Collapse whitespace and punctuation runs; no leading punctuation."""
    text = " ".join(text.split())
    text = re.sub(rf"\s+(?=[{_PUNCT_CLASS}])", "", text)
    text = _PUNCT_RUN.sub(_pick_mark, text)
    if space_after_punctuation:
        text = re.sub(rf"([{_PUNCT_CLASS}])(?=[^\s{_PUNCT_CLASS}])", r"\1 ", text)
    else:
        text = re.sub(rf"(?<=[{_PUNCT_CLASS}])\s+", "", text)
    text = re.sub(rf"^[\s{_PUNCT_CLASS}]+", "", text)
    return text.strip()


def _sub(pattern: str, repl: str | Callable[[re.Match[str]], str], text: str, flags: int = 0) -> str:
    return re.sub(pattern, repl, text, flags=flags)


# ------------------------------------------------------------------------------------ English
_ABBREVIATIONS_ANY = {  # expanded with or without a trailing period
    "mr": "mister",
    "mrs": "missus",
    "dr": "doctor",
    "jr": "junior",
    "sr": "senior",
    "vs": "versus",
    "etc": "et cetera",
    "prof": "professor",
    "capt": "captain",
    "sgt": "sergeant",
    "approx": "approximately",
    "dept": "department",
    "govt": "government",
}
_ABBREVIATIONS_DOTTED = {  # expanded only when followed by a period (otherwise ordinary words)
    "ms": "miz",
    "co": "company",
    "ltd": "limited",
    "inc": "incorporated",
    "corp": "corporation",
    "gen": "general",
    "col": "colonel",
    "lt": "lieutenant",
    "gov": "governor",
    "sen": "senator",
    "rep": "representative",
    "hon": "honorable",
    "rev": "reverend",
    "mt": "mount",
    "ft": "fort",
    "est": "established",
}


def _keep_final_period(text: str, match: re.Match[str], expansion: str) -> str:
    """An abbreviation's period that ends the text also ends the sentence."""
    dotted = match.group(0).endswith(".")
    return expansion + ("." if dotted and not text[match.end() :].strip() else "")


def _expand_abbreviations(text: str) -> str:
    def any_form(match: re.Match[str]) -> str:
        return _keep_final_period(text, match, _ABBREVIATIONS_ANY[match.group(1).lower()])

    def dotted(match: re.Match[str]) -> str:
        return _keep_final_period(text, match, _ABBREVIATIONS_DOTTED[match.group(1).lower()])

    def saint_or_street(match: re.Match[str]) -> str:
        following = text[match.end() :].lstrip()
        word = "saint" if following[:1].isupper() else "street"
        return _keep_final_period(text, match, word)

    text = _sub(r"(?<![\w.])e\.\s?g\.", "for example", text, re.I)
    text = _sub(r"(?<![\w.])i\.\s?e\.", "that is", text, re.I)
    text = _sub(r"(?<![\w.])([ap])\.\s?m\.", lambda m: f"{m.group(1).lower()} m", text, re.I)
    text = _sub(r"(?<![\w.'])no\.(?=\s*\d)", "number", text, re.I)
    text = _sub(r"(?<![\w.'])st\.", saint_or_street, text, re.I)
    names = "|".join(_ABBREVIATIONS_ANY)
    text = _sub(rf"(?<![\w.'])({names})\b\.?", any_form, text, re.I)
    names = "|".join(_ABBREVIATIONS_DOTTED)
    text = _sub(rf"(?<![\w.'])({names})\.", dotted, text, re.I)
    return text


def _expand_symbols_en(text: str) -> str:
    text = text.replace("&", " and ").replace("+", " plus ").replace("=", " equals ").replace("@", " at ")
    text = text.replace("×", " times ").replace("<", " less than ").replace(">", " greater than ")
    text = _sub(r"°\s?C\b", " degrees celsius ", text)
    text = _sub(r"°\s?F\b", " degrees fahrenheit ", text)
    text = text.replace("°", " degrees ")
    text = _sub(r"#(?=\s?\d)", " number ", text)
    text = text.replace("#", " hash ").replace("~", " ")
    return text


_CURRENCIES = {  # symbol: (unit, units, subunit, subunits)
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
}


def _currency_en(match: re.Match[str]) -> str:
    symbol, whole, fraction, scale = match.groups()
    unit, units, subunit, subunits = _CURRENCIES[symbol]
    whole = whole.replace(",", "")
    if len(whole) > 15:
        return f" {digits_en(whole)} {units} "
    whole_n = int(whole)
    if scale:  # "$2.5 million" -> "two point five million dollars"
        return f" {decimal_en(str(whole_n), fraction or '')} {scale.lower()} {units} "
    if fraction and (not subunit or len(fraction) > 2):
        return f" {decimal_en(str(whole_n), fraction)} {units} "
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if whole_n or not cents:
        parts.append(f"{cardinal_en(whole_n)} {unit if whole_n == 1 else units}")
    if cents:
        parts.append(f"{cardinal_en(cents)} {subunit if cents == 1 else subunits}")
    return " " + " ".join(parts) + " "


def _number_en(digits: str) -> str:
    if len(digits) > 1 and digits.startswith("0"):
        return digits_en(digits)
    if len(digits) == 4 and 1100 <= int(digits) <= 2099:
        return year_en(int(digits))
    return number_en(digits)


def _ordinal_en(digits: str) -> str:
    return ordinal_en(int(digits)) if len(digits) <= 15 else digits_en(digits)


def _time_en(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes == 0:
        return f" {cardinal_en(hours)} o'clock "
    if minutes < 10:
        return f" {cardinal_en(hours)} oh {cardinal_en(minutes)} "
    return f" {cardinal_en(hours)} {cardinal_en(minutes)} "


def _expand_numbers_en(text: str) -> str:
    symbols = re.escape("".join(_CURRENCIES))
    text = _sub(
        rf"([{symbols}])\s?(\d[\d,]*)(?:\.(\d+))?(?:\s?(thousand|million|billion|trillion)\b)?",
        _currency_en,
        text,
        re.I,
    )
    text = _sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # thousands separators
    text = _sub(
        r"(?<!\d)(\d+)(?:\.(\d+))?\s?%",
        lambda m: f" {decimal_en(m.group(1), m.group(2) or '')} percent ",
        text,
    )
    text = _sub(r"(?<!\d)(\d{1,2}):(\d{2})(?!\d)", _time_en, text)
    text = _sub(r"(?<!\d)(\d+)(st|nd|rd|th)\b", lambda m: f" {_ordinal_en(m.group(1))} ", text, re.I)
    text = _sub(r"(?<!\d)(\d+)'?s\b", lambda m: f" {plural_en(_number_en(m.group(1)))} ", text)
    text = _sub(r"(?<=\d)\s?[-–]\s?(?=\d)", " to ", text)  # ranges: 1990-2000
    text = _sub(r"(?<![\w.])-(?=\.?\d)", " minus ", text)
    text = _sub(r"(?<!\d)(\d+)/(\d+)", lambda m: f" {_number_en(m.group(1))} over {_number_en(m.group(2))} ", text)
    text = _sub(r"(?<!\d)(\d+)\.(\d+)", lambda m: f" {decimal_en(m.group(1), m.group(2))} ", text)
    text = _sub(r"(?<!\d)\.(\d+)", lambda m: f" point {digits_en(m.group(1))} ", text)
    text = _sub(r"\d+", lambda m: f" {_number_en(m.group(0))} ", text)
    # currency or percent signs not attached to a number
    for symbol, (unit, *_rest) in _CURRENCIES.items():
        text = text.replace(symbol, f" {unit} ")
    return text.replace("%", " percent ")


_LATIN_SPECIAL = {
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
    "đ": "d", "Đ": "D", "ð": "dh", "Ð": "Dh", "þ": "th", "Þ": "Th", "ł": "l", "Ł": "L",
    "ı": "i", "ħ": "h", "Ħ": "H", "ŀ": "l", "Ŀ": "L", "ĸ": "k", "ſ": "s",
}  # fmt: skip


def _fold_latin(text: str) -> str:
    """Accented Latin letters to ASCII ("café" -> "cafe"); combining marks on ASCII letters dropped.

    espeak's English voices read many non-ASCII letters by their Unicode names ("ı" ->
    "letter one three one"), so English text is folded to ASCII before phonemization.
    """
    out: list[str] = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif ch in _LATIN_SPECIAL:
            out.append(_LATIN_SPECIAL[ch])
        elif unicodedata.combining(ch) and out and out[-1][-1:].isascii() and out[-1][-1:].isalpha():
            continue
        elif ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN "):
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(base if base.isascii() and base.isalpha() else ch)
        else:
            out.append(ch)
    return "".join(out)


def _clean_apostrophes(text: str) -> str:
    """Keep apostrophes inside words (don't, rock'n'roll); drop quote-like ones."""
    return _sub(r"(?<![A-Za-z])'+|'+(?![A-Za-z])", " ", text)


def normalize_english(text: str, lowercase: bool = False) -> str:
    """English normalisation (see the module doc)."""
    text = unicodedata.normalize("NFKC", text)
    text = _typography(text)
    text = _expand_abbreviations(text)
    text = _expand_symbols_en(text)
    text = _expand_numbers_en(text)
    text = _sub(r"(?<=[A-Za-z])/(?=[A-Za-z])", " slash ", text)
    text = text.replace("/", " ")
    text = _sub(r"(?<=\w)-+(?=\w)|-", " ", text)  # hyphenated words are read as separate words
    text = _fold_latin(text)
    text = _clean_apostrophes(text)
    text = _tidy(text, space_after_punctuation=True)
    return text.lower() if lowercase else text


# ----------------------------------------------------------------------------------- Mandarin
_ZH_PUNCTUATION = str.maketrans(
    {
        "。": ".", "｡": ".", "、": ",", "､": ",", "〜": ",", "～": ",", "·": " ", "・": " ",
        "《": " ", "》": " ", "〈": " ", "〉": " ", "【": ",", "】": ",", "〔": ",", "〕": ",",
        "〖": ",", "〗": ",", "﹏": " ",
    }
)  # fmt: skip
_HAN = HAN_CLASS
_ZH_CURRENCIES = {"$": "美元", "￥": "元", "¥": "元", "€": "欧元", "£": "英镑"}


def _number_zh(digits: str) -> str:
    if (len(digits) > 1 and digits.startswith("0")) or len(digits) >= 9:
        return digits_zh(digits)
    return cardinal_zh(int(digits))


def _time_zh(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    return cardinal_zh(hours) + "点" + (cardinal_zh(minutes) + "分" if minutes else "")


def _expand_numbers_zh(text: str) -> str:
    symbols = re.escape("".join(_ZH_CURRENCIES))
    text = _sub(
        rf"([{symbols}])\s?(\d[\d,]*(?:\.\d+)?)",
        lambda m: f"{m.group(2)}{_ZH_CURRENCIES[m.group(1)]}",
        text,
    )
    text = _sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    text = _sub(r"(?<!\d)(\d+)(?:\.(\d+))?\s?%", lambda m: "百分之" + decimal_zh(m.group(1), m.group(2) or ""), text)
    text = _sub(r"(?<!\d)(\d{4})(?=\s?年)", lambda m: digits_zh(m.group(1)), text)
    text = _sub(r"(?<!\d)(\d{1,2}):(\d{2})(?!\d)", _time_zh, text)
    text = _sub(r"(?<=\d)\s?[-~]\s?(?=\d)", "到", text)
    text = _sub(r"(?<![\w.])-(?=\d)", "负", text)
    text = _sub(r"(?<!\d)(\d+)/(\d+)", lambda m: f"{_number_zh(m.group(2))}分之{_number_zh(m.group(1))}", text)
    text = _sub(r"(?<!\d)(\d+)\.(\d+)", lambda m: decimal_zh(m.group(1), m.group(2)), text)
    text = _sub(r"\d+", lambda m: _number_zh(m.group(0)), text)
    for symbol, name in _ZH_CURRENCIES.items():
        text = text.replace(symbol, name)
    return text.replace("%", "百分之")


def _expand_symbols_zh(text: str) -> str:
    text = text.replace("&", "和").replace("+", "加").replace("=", "等于").replace("×", "乘")
    text = _sub(r"°\s?C\b", "摄氏度", text)
    return text.replace("°", "度")


def normalize_mandarin(text: str, lowercase: bool = False) -> str:
    """Mandarin normalisation (see the module doc). Latin words are cleaned as in English."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_ZH_PUNCTUATION)
    text = _typography(text)
    text = _expand_symbols_zh(text)
    text = _expand_numbers_zh(text)
    text = _sub(r"(?<=\w)-+(?=\w)|-", " ", text)
    text = _fold_latin(text)
    text = _clean_apostrophes(text)
    text = _tidy(text, space_after_punctuation=False)
    text = _sub(rf"(?<=[{_HAN}])\s+(?=[{_HAN}])", "", text)  # Chinese is written without spaces
    return text.lower() if lowercase else text
