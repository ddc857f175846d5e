"""Regenerate the phone inventory of the symbol table: ``python -m ns2.text.build_symbols``.

Phonemizes a broad English word list (the CMU dictionary shipped with ``pocketsphinx`` when it
is installed, plus random letter strings that exercise espeak's letter-to-sound rules, single
letters and a few sentences) with every English voice, and adds the Mandarin phones of
:mod:`ns2.text.mandarin` (whose table was built from every CJK ideograph). Prints the sorted
phone tuple to paste into :data:`ns2.text.symbols.IPA_V1_PHONES` -- as a *new* table version
whenever it changes. Never run at import time.

espeak occasionally glues two phonemes without a separator (``ææ``, ``iːː``); a rare token that
splits into other observed phones is such a glitch and is left out (greedy matching splits it).
"""
from __future__ import annotations

import argparse
import random
import re
from collections import Counter
from pathlib import Path

from ns2.text.backends import english_backend, run_backend
from ns2.text.languages import ENGLISH_VOICES
from ns2.text.mandarin import MANDARIN_PHONES

__all__ = ["english_words", "english_phone_counts", "build_phones"]

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Of the people, by the people, for the people.",
    "She sells sea shells by the sea shore, and it was the best of times.",
    "I would have gone to the theatre if there were tickets at a fair price.",
    "Nineteen ninety nine; one hundred twenty three thousand four hundred fifty six.",
)


def english_words(n_random: int = 20000, seed: int = 0) -> list[str]:
    """CMU dictionary words (if pocketsphinx is installed) + random letter strings + letters."""
    words: set[str] = set()
    try:
        import pocketsphinx

        path = Path(pocketsphinx.__file__).parent / "model" / "en-us" / "cmudict-en-us.dict"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            word = re.sub(r"\(\d+\)$", "", line.split(" ", 1)[0])
            if re.fullmatch(r"[a-z']+", word):
                words.add(word)
    except (ImportError, OSError):
        pass
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    randoms = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(n_random)]
    return sorted(words) + randoms + list(letters.upper()) + ["NASA", "USA", "BBC", "FBI"]


def english_phone_counts(voice: str, words: list[str], batch: int = 40) -> Counter[str]:
    """espeak phone strings (stress marks removed) and how often ``voice`` produced them."""
    lines = [" , ".join(words[i : i + batch]) for i in range(0, len(words), batch)]
    lines += [" ".join(words[i : i + batch]) for i in range(0, len(words), batch * 25)]
    lines += list(SENTENCES)
    counts: Counter[str] = Counter()
    backend = english_backend(voice)
    # small calls: phonemizer restores punctuation in time quadratic in the marks of one call
    readings = [line for i in range(0, len(lines), 50) for line in run_backend(backend, lines[i : i + 50])]
    for line in readings:
        for word in line:
            for phone in word:
                # punctuation restored by phonemizer sticks to the last phone of a word
                phone = re.sub("[ˈˌ]", "", phone).strip(",.!?;").replace(":", "ː")
                if phone:
                    counts[phone] += 1
    return counts


def _splits_into(token: str, vocabulary: set[str]) -> bool:
    if not token:
        return True
    return any(token[:k] in vocabulary and _splits_into(token[k:], vocabulary) for k in range(len(token), 0, -1))


def build_phones(words: list[str] | None = None, glitch_count: int = 20) -> tuple[str, ...]:
    """The sorted phone inventory (English voices + Mandarin)."""
    words = words if words is not None else english_words()
    counts: Counter[str] = Counter()
    for voice in ENGLISH_VOICES:
        counts.update(english_phone_counts(voice, words))
    phones = set(counts) | set(MANDARIN_PHONES)
    for token in sorted(phones, key=len, reverse=True):
        others = phones - {token}
        if counts.get(token, glitch_count) < glitch_count and _splits_into(token, others | {"ː"}):
            phones.discard(token)
    return tuple(sorted(phones))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-words", type=int, default=20000)
    args = parser.parse_args()
    phones = build_phones(english_words(args.random_words))
    print("IPA_V1_PHONES: tuple[str, ...] = (")
    line = "   "
    for phone in phones:
        item = f" {phone!r},"
        if len(line) + len(item) > 100:
            print(line)
            line = "   "
        line += item
    print(line)
    print(")")
    print(f"# {len(phones)} phones")


if __name__ == "__main__":
    main()
