"""Text front end: normalisation, espeak-ng phonemization (English, Mandarin), a versioned
symbol table and the tokenizer that turns text into phoneme ids with word boundaries.

>>> from ns2.text import Tokenizer
>>> Tokenizer("en-us")("Hello, world!").phonemes  # doctest: +SKIP
['h', 'ə', 'l', 'ˈ', 'oʊ', ',', '|', 'w', 'ˈ', 'ɜː', 'l', 'd', '!']
"""
from ns2.text.cleaners import normalize
from ns2.text.errors import TextFrontendError, TextFrontendWarning
from ns2.text.espeak import espeak_paths, setup_espeak
from ns2.text.phonemizer import Phonemizer, WordPhonemes
from ns2.text.symbols import DEFAULT_SYMBOLS, SymbolTable, get_symbol_table
from ns2.text.tokenizer import TokenizedText, Tokenizer, tokenize_phonemes

__all__ = [
    "normalize",
    "Phonemizer",
    "WordPhonemes",
    "SymbolTable",
    "DEFAULT_SYMBOLS",
    "get_symbol_table",
    "Tokenizer",
    "TokenizedText",
    "tokenize_phonemes",
    "TextFrontendError",
    "TextFrontendWarning",
    "setup_espeak",
    "espeak_paths",
]
