"""A word n-gram language model in ARPA format, for a recogniser decoding a known domain.

The offline recogniser (PocketSphinx) ships a general-English LM; the synthetic corpus speaks
grammatical but improbable sentences ("this doctor danced again through my wire"), which that LM
pulls towards likelier words even when the audio is clear. A domain LM, estimated from sentences
the corpus's generator draws with a seed of its own (never the evaluated sentences), is the
standard remedy (the synthetic corpus's own: :func:`ns2.data.synthetic.lm.synthetic_domain_lm`): the recogniser still hears every word (the audio decides between the thousands of
word sequences the domain allows), it only stops preferring phrases of newspaper English.

:func:`build_arpa` estimates an interpolated absolute-discounting model (Ney, Essen & Kneser 1994)
and writes it in ARPA back-off form: for a seen n-gram the listed probability is the interpolated
one, ``p(w|h) = max(c(h,w) - D, 0) / c(h) + bow(h) p(w|h')``, and ``bow(h) = D N1+(h .) / c(h)``
is the mass the history leaves to the shorter history ``h'``; unseen words after ``h`` get
``bow(h) p(w|h')`` by the ARPA back-off rule, so the model is normalised by construction.
"""
from __future__ import annotations

import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from ns2.utils.io import atomic_open

__all__ = ["build_arpa", "tokenize", "write_arpa"]

BOS, EOS = "<s>", "</s>"
_WORD = re.compile(r"[a-z0-9']+")


def tokenize(text: str) -> list[str]:
    """Lower-case words of ``text`` (letters, digits, apostrophes); punctuation dropped."""
    return _WORD.findall(text.lower())


def build_arpa(sentences: Iterable[str], order: int = 3, discount: float = 0.7) -> str:
    """ARPA text of an ``order``-gram model of ``sentences`` (each tokenized by :func:`tokenize`).

    ``discount``: the absolute discount ``D`` in (0, 1). Unigrams are maximum likelihood over the
    training words plus ``</s>`` (the vocabulary is what the domain says).
    """
    if order < 1:
        raise ValueError(f"n-gram order must be >= 1, got {order}")
    if not 0.0 < discount < 1.0:
        raise ValueError(f"n-gram discount must lie in (0, 1), got {discount}")
    counts: list[Counter] = [Counter() for _ in range(order + 1)]  # counts[n][ngram tuple]
    num = 0
    for text in sentences:
        words = tokenize(text)
        if not words:
            continue
        num += 1
        seq = [BOS] + words + [EOS]
        for n in range(1, order + 1):
            for i in range(1 if n == 1 else 0, len(seq) - n + 1):  # <s> is only a history
                counts[n][tuple(seq[i:i + n])] += 1
    if num == 0:
        raise ValueError("n-gram model: no words in the training sentences")

    # unigrams: maximum likelihood over the words that follow <s> or another word (<s> itself is
    # only ever a history; ARPA lists it with probability 0, log10 -99)
    total = sum(counts[1].values())
    probs: list[dict[tuple, float]] = [{} for _ in range(order + 1)]
    probs[1] = {g: c / total for g, c in counts[1].items()}
    bows: list[dict[tuple, float]] = [{} for _ in range(order + 1)]
    for n in range(2, order + 1):
        hist_count: Counter = Counter()
        hist_types: Counter = Counter()
        for g, c in counts[n].items():
            hist_count[g[:-1]] += c
            hist_types[g[:-1]] += 1
        for h, c in hist_count.items():
            bows[n - 1][h] = discount * hist_types[h] / c
        for g, c in counts[n].items():
            h = g[:-1]
            probs[n][g] = max(c - discount, 0.0) / hist_count[h] + bows[n - 1][h] * _prob(probs, bows, g[1:])

    lines = ["", "\\data\\"]
    unigrams = dict(probs[1])
    unigrams[(BOS,)] = 0.0
    tables = [None, unigrams] + probs[2:]
    for n in range(1, order + 1):
        lines.append(f"ngram {n}={len(tables[n])}")
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        for g in sorted(tables[n]):
            p = tables[n][g]
            lp = -99.0 if p <= 0.0 else math.log10(p)
            row = f"{lp:.6f}\t{' '.join(g)}"
            if n < order and g in bows[n]:
                row += f"\t{math.log10(bows[n][g]):.6f}"
            lines.append(row)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def _prob(probs: list[dict], bows: list[dict], g: tuple) -> float:
    """p(g[-1] | g[:-1]) by the back-off rule over the tables estimated so far."""
    n = len(g)
    if g in probs[n]:
        return probs[n][g]
    if n == 1:
        return 0.0
    return bows[n - 1].get(g[:-1], 1.0) * _prob(probs, bows, g[1:])


def write_arpa(path: str | os.PathLike, sentences: Iterable[str], order: int = 3, discount: float = 0.7) -> Path:
    """:func:`build_arpa` written atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = build_arpa(sentences, order, discount)
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path

