"""Match espeak's words back to orthographic words.

espeak joins some English function words into one word ("of the" -> ``ʌvðə``) and may split
others. :func:`align_words` aligns the orthographic words (each read on its own) with espeak's
contextual words by a monotonic dynamic programme over phone edit distances;
:func:`split_joined` divides a joined reading between its words by phone alignment, so each
word keeps its contextual pronunciation.
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["align_words", "split_joined", "edit_distance"]

MAX_GROUP = 4  # most orthographic words espeak joins into one (and vice versa)
MAX_ALIGN_CELLS = 20000  # beyond this, a mismatched chunk keeps the per-word readings


def _plain(phones: Sequence[str]) -> list[str]:
    """Phones without stress marks, for comparing readings."""
    return [p.lstrip("ˈˌ") for p in phones if p.lstrip("ˈˌ")]


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def split_joined(joined: list[str], parts: list[list[str]]) -> list[list[str]]:
    """Split one espeak word that covers several orthographic words, following their own readings.

    Aligns ``joined`` with the concatenation of ``parts`` (edit distance) and gives each phone to
    the part it aligns with. Falls back to ``parts`` when a part would get no phone.
    """
    labels = [k for k, part in enumerate(parts) for _ in part]
    a, b = _plain(joined), [p for part in parts for p in _plain(part)]
    if len(a) != len(joined) or len(b) != len(labels):  # a stress mark on its own: keep it simple
        return parts
    n, m = len(a), len(b)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                cost[i][j] = i + j
            else:
                cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    owner = [0] * n
    i, j = n, m
    while i > 0:
        if j > 0 and cost[i][j] == cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            owner[i - 1] = labels[j - 1]
            i, j = i - 1, j - 1
        elif j > 0 and cost[i][j] == cost[i][j - 1] + 1:
            j -= 1
        else:  # phone inserted by the joined reading: belongs with the part aligned before it
            owner[i - 1] = labels[j - 1] if j > 0 else 0
            i -= 1
    for k in range(1, n):  # keep ownership monotonic
        owner[k] = max(owner[k], owner[k - 1])
    split: list[list[str]] = [[] for _ in parts]
    for phone, k in zip(joined, owner):
        split[k].append(phone)
    return split if all(split) else parts


def align_words(alone: list[list[str]], joined: list[list[str]]) -> list[list[str]]:
    """Give each orthographic word its phones from espeak's contextual reading ``joined``.

    ``alone[i]`` is word i read on its own; ``joined`` are espeak's words for the whole chunk,
    which may join or split orthographic words. A monotonic alignment (each step one word to
    several espeak words or several words to one) minimises the phone edit distance.
    """
    n, m = len(alone), len(joined)
    if n == m:
        return joined
    band = abs(n - m) + MAX_GROUP
    if m == 0 or n * band > MAX_ALIGN_CELLS:  # nothing to align, or too long to align quickly
        return alone
    inf = float("inf")
    cost: dict[tuple[int, int], float] = {(0, 0): 0.0}
    back: dict[tuple[int, int], tuple[int, int]] = {}
    for i in range(n + 1):
        for j in range(max(0, i - band), min(m, i + band) + 1):
            here = cost.get((i, j), inf)
            if here == inf:
                continue
            moves = [(1, 1)] + [(k, 1) for k in range(2, MAX_GROUP + 1)] + [(1, k) for k in range(2, MAX_GROUP + 1)]
            for di, dj in moves:
                if i + di > n or j + dj > m:
                    continue
                words = [p for w in alone[i : i + di] for p in _plain(w)]
                espeak = [p for w in joined[j : j + dj] for p in _plain(w)]
                step = edit_distance(words, espeak) + 0.5 * (di + dj - 2)
                if here + step < cost.get((i + di, j + dj), inf):
                    cost[(i + di, j + dj)] = here + step
                    back[(i + di, j + dj)] = (i, j)
    if (n, m) not in back:
        return alone
    out: list[list[str]] = []
    node = (n, m)
    groups = []
    while node != (0, 0):
        previous = back[node]
        groups.append((previous, node))
        node = previous
    for (i0, j0), (i1, j1) in reversed(groups):
        if i1 - i0 == 1:
            out.append([p for w in joined[j0:j1] for p in w])
        else:
            out.extend(split_joined(joined[j0], alone[i0:i1]))
    return out
