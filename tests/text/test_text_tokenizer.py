"""Tokenizer: layout with word boundaries, word_index, unknown-input policy, corpus phonemes."""
from __future__ import annotations

import warnings

import pytest

from ns2.text import (
    DEFAULT_SYMBOLS,
    SymbolTable,
    TextFrontendError,
    TextFrontendWarning,
    TokenizedText,
    Tokenizer,
    tokenize_phonemes,
)
from ns2.text.symbols import SPECIAL_SYMBOLS


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer("en-us")


def check_consistent(out: TokenizedText, symbols: SymbolTable = DEFAULT_SYMBOLS) -> None:
    assert len(out.phonemes) == len(out.ids) == len(out.word_index)
    assert out.ids == symbols.encode(out.phonemes)
    assert all(0 <= i < len(symbols) for i in out.ids)
    assert all(-1 <= w < len(out.words) for w in out.word_index)
    for phoneme, w in zip(out.phonemes, out.word_index):
        assert (w == -1) == (phoneme in ("|", "<bos>", "<eos>") or phoneme in symbols.punctuation)


def test_layout_and_word_index(tok: Tokenizer) -> None:
    out = tok("Hello, world!")
    assert out.words == ["Hello", "world"]
    assert out.phonemes == ["h", "ə", "l", "ˈ", "oʊ", ",", "|", "w", "ˈ", "ɜː", "l", "d", "!"]
    assert out.word_index == [0, 0, 0, 0, 0, -1, -1, 1, 1, 1, 1, 1, -1]
    assert out.text == "Hello, world!"
    assert out.language == "en-us" and out.symbols_version == "ipa-v1"
    check_consistent(out)


def test_boundaries_between_every_pair_of_words(tok: Tokenizer) -> None:
    out = tok("It was the best of times, it was the worst of times.")
    assert out.phonemes.count("|") == len(out.words) - 1 == 11
    assert [w for w, _ in out.word_phonemes()] == out.words
    assert out.word_phonemes()[4] == ("of", ["ʌ", "v"])
    check_consistent(out)


def test_numbers_are_spoken(tok: Tokenizer) -> None:
    out = tok("I paid $3.50 on May 1st, 1990.")
    assert out.words == ["I", "paid", "three", "dollars", "fifty", "cents", "on", "May", "first", "nineteen", "ninety"]


def test_bos_eos() -> None:
    out = Tokenizer("en-us", add_bos_eos=True)("hi")
    assert out.phonemes[0] == "<bos>" and out.phonemes[-1] == "<eos>"
    assert out.word_index[0] == out.word_index[-1] == -1
    check_consistent(out)


def test_unknown_characters_are_named(tok: Tokenizer) -> None:
    with pytest.raises(TextFrontendError) as info:
        tok("I ❤ tea 😀 and ★ stars")
    message = str(info.value)
    assert "\n" not in message
    for ch in ("❤", "😀", "★"):
        assert ch in message
    assert "U+1F600" in message


def test_other_scripts_are_unknown_in_english(tok: Tokenizer) -> None:
    with pytest.raises(TextFrontendError, match="Ж"):
        tok("hello Жук")
    with pytest.raises(TextFrontendError, match="你"):
        tok("hello 你好")


def test_drop_policy_drops_and_warns_once() -> None:
    tok = Tokenizer("en-us", unknown="drop")
    with pytest.warns(TextFrontendWarning, match="😀"):
        out = tok("good 😀 morning")
    assert out.words == ["good", "morning"]
    check_consistent(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tok("more ★ stars").words == ["more", "stars"]  # no second warning


@pytest.mark.parametrize("text", ["", "   ", "...", "!?", "\n\t"])
def test_nothing_to_speak_is_an_error(tok: Tokenizer, text: str) -> None:
    with pytest.raises(TextFrontendError, match="nothing to speak"):
        tok(text)


def test_only_unknown_characters_with_drop_is_still_an_error() -> None:
    with pytest.warns(TextFrontendWarning):
        with pytest.raises(TextFrontendError, match="nothing to speak"):
            Tokenizer("en-us", unknown="drop")("😀😀 ★")


def test_unknown_phonemes_follow_the_policy() -> None:
    no_dh = SymbolTable([s for s in DEFAULT_SYMBOLS.symbols if s != "ð"], version="test-no-dh")
    with pytest.raises(TextFrontendError, match="'ð'"):
        Tokenizer("en-us", symbols=no_dh)("the cat")
    with pytest.warns(TextFrontendWarning, match="ð"):
        out = Tokenizer("en-us", symbols=no_dh, unknown="drop")("the cat")
    assert "ð" not in out.phonemes and out.words == ["the", "cat"]
    check_consistent(out, no_dh)


def test_mandarin_tokenization() -> None:
    out = Tokenizer("cmn")("你好，世界！")
    assert "".join(out.words) == "你好世界"
    assert out.phonemes[out.phonemes.index(",") + 1] == "|"
    assert {"˨˩˦", "˥˩"} <= set(out.phonemes)
    check_consistent(out)


def test_batch_matches_single(tok: Tokenizer) -> None:
    texts = ["One.", "Two, three!", "Of the four."]
    assert tok.tokenize_batch(texts) == [tok(t) for t in texts]


def test_tokenize_phonemes() -> None:
    ids = tokenize_phonemes(["h", "ə", "l", "ˈoʊ", " ", "w", "ˈɜː", "l", "d"])
    assert DEFAULT_SYMBOLS.decode(ids) == ["h", "ə", "l", "ˈ", "oʊ", "|", "w", "ˈ", "ɜː", "l", "d"]
    with pytest.raises(TextFrontendError, match="'Q'"):
        tokenize_phonemes(["h", "Q"])
    with pytest.warns(TextFrontendWarning):
        assert tokenize_phonemes(["h", "Q"], unknown="drop") == DEFAULT_SYMBOLS.encode(["h"])
    with pytest.raises(TextFrontendError):
        tokenize_phonemes("həlˈoʊ")  # type: ignore[arg-type]
    assert Tokenizer("en-us").tokenize_phonemes(["a"]) == [DEFAULT_SYMBOLS.id("a")]


def test_to_dict_and_decode(tok: Tokenizer) -> None:
    out = tok("hi there")
    assert out.to_dict()["words"] == ["hi", "there"]
    assert tok.decode(out.ids) == out.phonemes
    assert tok.vocab_size == len(DEFAULT_SYMBOLS)
    assert len(SPECIAL_SYMBOLS) == 5
