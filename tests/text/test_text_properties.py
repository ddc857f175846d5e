"""Property: arbitrary text never crashes the front end.

It either gives a valid TokenizedText (ids in range, consistent lengths, word_index valid) or
raises TextFrontendError.
"""
from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ns2.text import DEFAULT_SYMBOLS, TextFrontendError, Tokenizer

PIECES = st.sampled_from(
    ["hello", "world", "Mr.", "Dr", "$3.50", "1990", "21st", "3.14", "50%", "of the", "don't", ", ", ". ", "?!",
     "—", "…", "“", "café", "Ж", "😀", "★", "你好", "世界", "丆", "兄", "。", "，", "１２", " ", "\n", "'", "-", "&"]
)  # fmt: skip
TEXTS = st.one_of(
    st.text(max_size=40),
    st.lists(PIECES, max_size=12).map("".join),
    st.lists(st.one_of(PIECES, st.text(max_size=3)), max_size=8).map("".join),
)
KEYS = [(language, unknown) for language in ("en-us", "cmn") for unknown in ("error", "drop")]


@cache
def tokenizer(language: str, unknown: str) -> Tokenizer:
    return Tokenizer(language, unknown=unknown)


@pytest.mark.filterwarnings("ignore::ns2.text.errors.TextFrontendWarning")
@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{k[0]}-{k[1]}")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_arbitrary_text_never_crashes(key: tuple[str, str], text: str) -> None:
    try:
        out = tokenizer(*key)(text)
    except TextFrontendError as error:
        assert "\n" not in str(error)
        return
    assert out.words
    assert len(out.phonemes) == len(out.ids) == len(out.word_index) > 0
    assert all(0 <= i < len(DEFAULT_SYMBOLS) for i in out.ids)
    assert DEFAULT_SYMBOLS.decode(out.ids) == out.phonemes
    assert all(-1 <= w < len(out.words) for w in out.word_index)
    assert set(range(len(out.words))) == {w for w in out.word_index if w >= 0}
