"""WER counting and normalisation on fixed strings."""
from __future__ import annotations

import math

import jiwer
import pytest

from ns2.metrics import aggregate_wer, seed_normalize, whisper_basic_normalize, word_errors


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, World!  It's  fine.", "hello world it's fine"),
        ("A well-known (very) \"test\"; OK?", "a wellknown very test ok"),
        ("Don\u2019t \u201cstop\u201d \u2014 now\u2026", "don't stop now"),
        ("  \tspaces \n everywhere ", "spaces everywhere"),
        ("50% of $3.50", "50 of 350"),
    ],
)
def test_seed_normalize(text, expected):
    assert seed_normalize(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, World!", "hello world"),
        ("I don't know.", "i don t know"),
        ("He said [inaudible] yes (laughs) <unk> no", "he said yes no"),
        ("well-known", "well known"),
        ("Café   Déjà-vu", "café déjà vu"),
        ("$5 + 3 = 8", "5 3 8"),
    ],
)
def test_whisper_basic_normalize(text, expected):
    assert whisper_basic_normalize(text) == expected


def test_whisper_basic_remove_diacritics():
    assert whisper_basic_normalize("Café Æther straße Łódź", remove_diacritics=True) == "cafe aether strasse lodz"


def test_word_errors_counts():
    we = word_errors("The cat sat on the mat.", "the cat sit on mat")
    assert (we.substitutions, we.deletions, we.insertions, we.ref_words) == (1, 1, 0, 6)
    assert we.wer == pytest.approx(2 / 6)
    we = word_errors("a b c", "a x b c d")
    assert (we.substitutions, we.deletions, we.insertions) == (0, 0, 2) and we.wer == pytest.approx(2 / 3)
    assert word_errors("It's OK!", "it's ok").wer == 0.0
    assert word_errors("It's OK!", "it s ok", normalizer="whisper_basic").wer == 0.0
    assert word_errors("It's OK!", "it s ok", normalizer="seed").wer == pytest.approx(1.0)  # its vs it + s


def test_word_errors_empty_sides():
    we = word_errors("three little words", "")
    assert we.deletions == 3 and we.wer == 1.0
    we = word_errors("...", "something")
    assert we.ref_words == 0 and we.insertions == 1 and math.isnan(we.wer)


@pytest.mark.parametrize(
    "ref, hyp",
    [
        ("the quick brown fox jumps over the lazy dog", "a quick brown fox jumped over lazy dogs today"),
        ("one two three four five", "five four three two one"),
        ("she sells sea shells", "she sells sea shells"),
    ],
)
def test_agrees_with_jiwer(ref, hyp):
    assert word_errors(ref, hyp).wer == pytest.approx(jiwer.wer(ref, hyp))


def test_aggregate_wer_known_answer():
    records = [
        {"errors": 0, "ref_words": 10},
        {"errors": 2, "ref_words": 4},
        {"errors": 6, "ref_words": 6},
        {"errors": 1, "ref_words": 0},  # empty reference: left out, counted
    ]
    agg = aggregate_wer(records)
    assert agg["mean_wer"] == pytest.approx((0 + 0.5 + 1.0) / 3)
    assert agg["corpus_wer"] == pytest.approx(8 / 20)
    assert agg["frac_wer_gt_50"] == pytest.approx(1 / 3)  # 0.5 itself is not a failure
    assert agg["mean_wer_le_50"] == pytest.approx(0.25)
    assert agg["n"] == 3 and agg["n_nan"] == 1
    assert aggregate_wer([word_errors("a b", "a c")])["corpus_wer"] == 0.5
    assert math.isnan(aggregate_wer([])["mean_wer"])
