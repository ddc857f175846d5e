"""The versioned symbol table: layout, encode/decode, persistence and mismatch errors."""
from __future__ import annotations

import json

import pytest

from ns2.text import DEFAULT_SYMBOLS, SymbolTable, TextFrontendError, get_symbol_table
from ns2.text.symbols import IPA_V1_PHONES, SPECIAL_SYMBOLS


def test_layout() -> None:
    table = DEFAULT_SYMBOLS
    assert table.version == "ipa-v1"
    assert table.symbols[: len(SPECIAL_SYMBOLS)] == ("<pad>", "<bos>", "<eos>", "<sil>", "|")
    assert table.pad_id == 0
    assert table.word_boundary_id == 4
    assert table.punctuation == (",", ".", "!", "?", ";", ":")
    for symbol in ("ˈ", "ˌ", "ː", "˥", "˧˥", "˨˩˦", "˥˩", "˩", "tʃ", "dʒ", "aɪ", "eɪ", "oʊ", "ɜː", "ʈʂʰ"):
        assert symbol in table
    assert "<unk>" not in table
    assert len(table) == len(set(table.symbols)) == 5 + 6 + 3 + 5 + len(IPA_V1_PHONES)
    assert get_symbol_table("ipa-v1") is table


def test_encode_decode_roundtrip() -> None:
    symbols = ["<bos>", "h", "ə", "l", "ˈ", "oʊ", "|", "w", "ˈ", "ɜː", "l", "d", "!", "<eos>"]
    ids = DEFAULT_SYMBOLS.encode(symbols)
    assert all(isinstance(i, int) and 0 <= i < len(DEFAULT_SYMBOLS) for i in ids)
    assert DEFAULT_SYMBOLS.decode(ids) == symbols


def test_unknown_symbol_is_an_error_naming_it() -> None:
    with pytest.raises(TextFrontendError, match="'Q'"):
        DEFAULT_SYMBOLS.encode(["h", "Q"])
    with pytest.raises(TextFrontendError, match="out of range"):
        DEFAULT_SYMBOLS.decode([len(DEFAULT_SYMBOLS)])
    with pytest.raises(TextFrontendError):
        DEFAULT_SYMBOLS.id("nope")


def test_split_ipa_greedy_longest_match() -> None:
    symbols, unknown = DEFAULT_SYMBOLS.split_ipa("hɛlˈoʊ, wˈɜːld")
    assert symbols == ["h", "ɛ", "l", "ˈ", "oʊ", ",", "|", "w", "ˈ", "ɜː", "l", "d"]
    assert unknown == []
    assert DEFAULT_SYMBOLS.split_ipa("pˈiːpəl")[0] == ["p", "ˈ", "iː", "p", "əl"]  # espeak's syllabic əl
    assert DEFAULT_SYMBOLS.split_ipa("tʃɜːtʃ")[0] == ["tʃ", "ɜː", "tʃ"]
    assert DEFAULT_SYMBOLS.split_ipa("iːː")[0] == ["iː", "ː"]
    symbols, unknown = DEFAULT_SYMBOLS.split_ipa("aQQb")
    assert symbols == ["a", "b"] and unknown == ["QQ"]


def test_to_dict_from_dict_roundtrip_through_json() -> None:
    data = json.loads(json.dumps(DEFAULT_SYMBOLS.to_dict()))
    restored = SymbolTable.from_dict(data)
    assert restored == DEFAULT_SYMBOLS
    assert hash(restored) == hash(DEFAULT_SYMBOLS)
    assert SymbolTable.from_dict(data, expected=DEFAULT_SYMBOLS) == DEFAULT_SYMBOLS


def test_version_mismatch_is_a_clear_error() -> None:
    other = SymbolTable([*SPECIAL_SYMBOLS, "a", "b"], version="test-v2")
    with pytest.raises(TextFrontendError, match="expected 'ipa-v1'"):
        SymbolTable.from_dict(other.to_dict(), expected=DEFAULT_SYMBOLS)


def test_same_version_different_symbols_is_an_error() -> None:
    data = DEFAULT_SYMBOLS.to_dict()
    data["symbols"] = data["symbols"][:-1]
    del data["checksum"]
    with pytest.raises(TextFrontendError, match="differs from this code's 'ipa-v1'"):
        SymbolTable.from_dict(data)


def test_checksum_detects_edits() -> None:
    data = DEFAULT_SYMBOLS.to_dict()
    data["symbols"][10], data["symbols"][11] = data["symbols"][11], data["symbols"][10]
    with pytest.raises(TextFrontendError, match="checksum"):
        SymbolTable.from_dict(data)


@pytest.mark.parametrize(
    "data",
    [{}, {"version": "x"}, {"version": "x", "symbols": "abc"}, [1, 2], {"version": "x", "symbols": ["a", "b"]}],
)
def test_malformed_tables_are_rejected(data: object) -> None:
    with pytest.raises(TextFrontendError):
        SymbolTable.from_dict(data)  # type: ignore[arg-type]


def test_invalid_construction() -> None:
    with pytest.raises(TextFrontendError, match="duplicate"):
        SymbolTable([*SPECIAL_SYMBOLS, "a", "a"], version="v")
    with pytest.raises(TextFrontendError, match="must start with"):
        SymbolTable(["a", *SPECIAL_SYMBOLS], version="v")
    with pytest.raises(TextFrontendError, match="version"):
        SymbolTable(list(SPECIAL_SYMBOLS), version="")


def test_equality() -> None:
    a = SymbolTable([*SPECIAL_SYMBOLS, "a"], version="v1")
    assert a == SymbolTable([*SPECIAL_SYMBOLS, "a"], version="v1")
    assert a != SymbolTable([*SPECIAL_SYMBOLS, "a"], version="v2")
    assert a != SymbolTable([*SPECIAL_SYMBOLS, "b"], version="v1")
    assert a != "v1"
