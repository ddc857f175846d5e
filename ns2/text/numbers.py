"""Numbers as words: English (cardinals, ordinals, years, decimals) and Mandarin (Chinese numerals).

Pure functions of integers/digit strings; the regular expressions that find numbers in text live
in :mod:`ns2.text.cleaners`.
"""
from __future__ import annotations

__all__ = [
    "cardinal_en",
    "ordinal_en",
    "year_en",
    "decimal_en",
    "digits_en",
    "number_en",
    "plural_en",
    "cardinal_zh",
    "digits_zh",
    "decimal_zh",
]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**15, "quadrillion"), (10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_MAX_CARDINAL = 10**18  # beyond this, numbers are read digit by digit

_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def digits_en(digits: str) -> str:
    """``"007"`` -> ``"zero zero seven"``."""
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


def _below_thousand(n: int) -> str:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens])
        if ones:
            words.append(_ONES[ones])
    elif rest or not words:
        words.append(_ONES[rest])
    return " ".join(words)


def cardinal_en(n: int) -> str:
    """``123`` -> ``"one hundred twenty three"`` (American style, no "and"); negatives get "minus"."""
    if n < 0:
        return "minus " + cardinal_en(-n)
    if n >= _MAX_CARDINAL:
        return digits_en(str(n))
    if n < 1000:
        return _below_thousand(n)
    words: list[str] = []
    for value, name in _SCALES:
        count, n = divmod(n, value)
        if count:
            words += [_below_thousand(count), name]
    if n:
        words.append(_below_thousand(n))
    return " ".join(words)


def ordinal_en(n: int) -> str:
    """``21`` -> ``"twenty first"``."""
    words = cardinal_en(n).split(" ")
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year_en(n: int) -> str:
    """Read a year: 1990 -> "nineteen ninety", 1905 -> "nineteen oh five", 2000 -> "two thousand",
    2007 -> "two thousand seven", 2019 -> "twenty nineteen", 1900 -> "nineteen hundred"."""
    if not 1000 <= n <= 9999:
        return cardinal_en(n)
    high, low = divmod(n, 100)
    if n % 1000 < 10 and high % 10 == 0:  # 1000-1009, 2000-2009, ...
        return cardinal_en(n)
    if low == 0:
        return f"{cardinal_en(high)} hundred"
    if low < 10:
        return f"{cardinal_en(high)} oh {_ONES[low]}"
    return f"{cardinal_en(high)} {cardinal_en(low)}"


def number_en(digits: str) -> str:
    """A digit string as a cardinal; digit by digit when too long for words."""
    return cardinal_en(int(digits)) if len(digits) <= 15 else digits_en(digits)


def decimal_en(integer: str, fraction: str) -> str:
    """``("3", "14")`` -> ``"three point one four"``."""
    whole = number_en(integer) if integer else "zero"
    return f"{whole} point {digits_en(fraction)}" if fraction else whole


def plural_en(words: str) -> str:
    """Plural of a verbalised number: "nineteen ninety" -> "nineteen nineties", "six" -> "sixes"."""
    if words.endswith("y"):
        return words[:-1] + "ies"
    if words.endswith(("x", "s")):
        return words + "es"
    return words + "s"


# --------------------------------------------------------------------------------------- Mandarin
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_SMALL_UNITS = ("", "十", "百", "千")
_ZH_BIG_UNITS = ("", "万", "亿", "万亿")  # 兆 is ambiguous (10^6 or 10^12)


def digits_zh(digits: str) -> str:
    """``"2024"`` -> ``"二零二四"`` (years, phone numbers, codes)."""
    return "".join(_ZH_DIGITS[int(d)] for d in digits if d.isdigit())


def _zh_group(n: int) -> str:
    """0 < n < 10000 -> Chinese numerals with 零 for inner gaps (e.g. 1005 -> 一千零五)."""
    out = ""
    pending_zero = False
    for position in range(3, -1, -1):
        digit = (n // 10**position) % 10
        if digit == 0:
            if out:
                pending_zero = True
            continue
        if pending_zero:
            out += "零"
            pending_zero = False
        out += _ZH_DIGITS[digit] + _ZH_SMALL_UNITS[position]
    return out


def cardinal_zh(n: int) -> str:
    """``12345`` -> ``"一万二千三百四十五"``; 10-19 read as 十, 十一, ...; negatives get 负."""
    if n < 0:
        return "负" + cardinal_zh(-n)
    if n == 0:
        return "零"
    if n >= 10**16:
        return digits_zh(str(n))
    groups: list[int] = []
    while n:
        n, group = divmod(n, 10000)
        groups.append(group)
    out = ""
    pending_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or group < 1000):
            out += "零"
        pending_zero = False
        out += _zh_group(group) + _ZH_BIG_UNITS[index]
    if out.startswith("一十"):
        out = out[1:]
    return out


def decimal_zh(integer: str, fraction: str) -> str:
    """``("3", "14")`` -> ``"三点一四"``."""
    whole = (cardinal_zh(int(integer)) if len(integer) <= 15 else digits_zh(integer)) if integer else "零"
    return f"{whole}点{digits_zh(fraction)}" if fraction else whole
