"""espeak-ng phonemization: setup, English words, Mandarin tones, word alignment, batching."""
from __future__ import annotations

import os
import time

import pytest

from ns2.text import Phonemizer, TextFrontendError, espeak_paths, setup_espeak
from ns2.text.espeak import espeak_version
from ns2.text.mandarin import mnemonics_to_words, repair_foreign_readings


@pytest.fixture(scope="module")
def en() -> Phonemizer:
    return Phonemizer("en-us")


@pytest.fixture(scope="module")
def cmn() -> Phonemizer:
    return Phonemizer("cmn")


def words_of(result) -> dict[str, list[str]]:
    return {w.text: list(w.phonemes) for w in result if not w.is_punctuation}


def test_setup_uses_the_bundled_espeak() -> None:
    library, data = espeak_paths()
    assert setup_espeak() == (library, data) == setup_espeak()  # idempotent
    assert os.environ["PHONEMIZER_ESPEAK_LIBRARY"] == library
    assert os.environ["ESPEAK_DATA_PATH"] == data
    assert espeak_version() >= (1, 52, 0)


@pytest.mark.parametrize(
    ("word", "phonemes"),
    [
        ("hello", ["h", "ə", "l", "ˈ", "oʊ"]),
        ("church", ["tʃ", "ˈ", "ɜː", "tʃ"]),
        ("judge", ["dʒ", "ˈ", "ʌ", "dʒ"]),
        ("cat", ["k", "ˈ", "æ", "t"]),
        ("thinking", ["θ", "ˈ", "ɪ", "ŋ", "k", "ɪ", "ŋ"]),
    ],
)
def test_english_known_words(en: Phonemizer, word: str, phonemes: list[str]) -> None:
    assert words_of(en.phonemize(word)) == {word: phonemes}


def test_english_voices_differ() -> None:
    assert words_of(Phonemizer("en-gb").phonemize("cat")) == {"cat": ["k", "ˈ", "a", "t"]}
    for voice in ("en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"):
        assert Phonemizer(voice).phonemize("the water in Bath is rather hard")


def test_punctuation_tokens_and_word_order(en: Phonemizer) -> None:
    result = en.phonemize("Hello, world! How are you?")
    assert [w.text for w in result] == ["Hello", ",", "world", "!", "How", "are", "you", "?"]
    assert [w.is_punctuation for w in result] == [False, True, False, True, False, False, False, True]
    assert result[1].phonemes == (",",)


def test_joined_function_words_are_split_back(en: Phonemizer) -> None:
    # espeak reads "of the" as one word; each orthographic word still gets its own phones
    result = words_of(en.phonemize("the end of the world"))
    assert list(result) == ["the", "end", "of", "world"]  # "the" appears twice, dict keeps the last
    texts = [w.text for w in en.phonemize("the end of the world")]
    assert texts == ["the", "end", "of", "the", "world"]
    assert result["of"] == ["ʌ", "v"] and result["the"] == ["ð", "ə"]
    assert words_of(en.phonemize("the end"))["the"] == ["ð", "ɪ"]  # contextual reading kept


def test_mandarin_tones_not_english_pinyin(cmn: Phonemizer) -> None:
    result = cmn.phonemize("你好")
    assert [w.text for w in result] == ["你好"]
    assert list(result[0].phonemes) == ["n", "i", "˨˩˦", "χ", "ˈ", "ɑu", "˨˩˦"]
    english_only = {"aɪ", "eɪ", "oʊ", "ɪ", "ɛ", "æ", "ɹ"}
    assert not english_only & set(result[0].phonemes)


def test_mandarin_keeps_all_five_tones(cmn: Phonemizer) -> None:
    # espeak's own IPA output cannot tell tone 1 from tone 4; the mnemonic path can
    tones = [w.phonemes[-1] for w in cmn.phonemize("妈 麻 马 骂")]
    assert tones == ["˥", "˧˥", "˨˩˦", "˥˩"]
    assert words_of(cmn.phonemize("的"))["的"][-1] == "˩"


def test_mandarin_repairs_xiong_read_as_english(cmn: Phonemizer) -> None:
    assert words_of(cmn.phonemize("兄"))["兄"] == ["ɕ", "j", "ˈ", "ʊŋ", "˥"]
    assert words_of(cmn.phonemize("熊"))["熊"] == ["ɕ", "j", "ˈ", "ʊŋ", "˧˥"]
    assert repair_foreign_readings("(en)_k_S_@_N_w_'0_n_(cmn)__|") == "_S;_j_'ong55___|"
    assert mnemonics_to_words("(en)_h_@_l_'oU_(cmn)__|") == [["(foreign)"]]


def test_mandarin_words_punctuation_and_latin(cmn: Phonemizer) -> None:
    result = cmn.phonemize("你好，世界。我爱Python！")
    texts = [w.text for w in result]
    assert "".join(t for t in texts if t not in ",.!") == "你好世界我爱Python"
    assert texts[-1] == "!" and "," in texts and "." in texts
    python = words_of(result)["Python"]
    assert "aɪ" in python and not any(s.startswith("˥") for s in python)  # read by the English voice


def test_mandarin_unreadable_ideograph_is_reported(cmn: Phonemizer) -> None:
    with pytest.raises(TextFrontendError, match="丆"):
        cmn.phonemize("你好丆")


def test_batch_is_consistent_and_fast(en: Phonemizer) -> None:
    texts = [f"Sentence number {i}, of the people and for the {i}th time." for i in range(200)]
    start = time.perf_counter()
    batch = en.phonemize_batch(texts)
    elapsed = time.perf_counter() - start
    assert len(batch) == 200
    assert batch[7] == en.phonemize(texts[7])
    assert elapsed < 5.0


def test_split_phones(en: Phonemizer) -> None:
    assert en.split_phones("tʃˈɜːtʃ") == ["tʃ", "ˈ", "ɜː", "tʃ"]
    with pytest.raises(TextFrontendError, match="'Q'"):
        en.split_phones("aQ")


def test_bad_arguments() -> None:
    with pytest.raises(TextFrontendError, match="unsupported language"):
        Phonemizer("xx-yy")
    with pytest.raises(TextFrontendError, match="unknown must be"):
        Phonemizer("en-us", unknown="ignore")
    with pytest.raises(TextFrontendError, match="string"):
        Phonemizer("en-us").phonemize(3)  # type: ignore[arg-type]
    assert Phonemizer("zh").language == "cmn"


def test_symbol_table_covers_what_espeak_emits() -> None:
    from ns2.text import DEFAULT_SYMBOLS
    from ns2.text.build_symbols import english_phone_counts, english_words
    from ns2.text.languages import ENGLISH_VOICES
    from ns2.text.mandarin import MANDARIN_PHONES

    words = english_words(n_random=1500, seed=1)[-1600:]  # random letter strings + letters
    for voice in ENGLISH_VOICES:
        for phone in english_phone_counts(voice, words):
            assert not DEFAULT_SYMBOLS.split_ipa(phone)[1], (voice, phone)
    assert MANDARIN_PHONES <= set(DEFAULT_SYMBOLS.symbols)
