"""Praat TextGrid parsing (long and short formats) and the MFA phone mapping."""
from __future__ import annotations

import pytest

from ns2.data.features.textgrid import (TextGridError, find_textgrid, map_phone, mfa_alignment, parse_textgrid,
                                        read_textgrid)

# Exactly the layout Montreal Forced Aligner writes (long text format, words + phones tiers).
MFA_LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0 
xmax = 1.3 
tiers? <exists> 
size = 2 
item []: 
    item [1]:
        class = "IntervalTier" 
        name = "words" 
        xmin = 0 
        xmax = 1.3 
        intervals: size = 4 
        intervals [1]:
            xmin = 0 
            xmax = 0.2 
            text = "" 
        intervals [2]:
            xmin = 0.2 
            xmax = 0.6 
            text = "hello" 
        intervals [3]:
            xmin = 0.6 
            xmax = 1.1 
            text = "world" 
        intervals [4]:
            xmin = 1.1 
            xmax = 1.3 
            text = "" 
    item [2]:
        class = "IntervalTier" 
        name = "phones" 
        xmin = 0 
        xmax = 1.3 
        intervals: size = 12 
        intervals [1]:
            xmin = 0 
            xmax = 0.2 
            text = "" 
        intervals [2]:
            xmin = 0.2 
            xmax = 0.28 
            text = "HH" 
        intervals [3]:
            xmin = 0.28 
            xmax = 0.35 
            text = "AH0" 
        intervals [4]:
            xmin = 0.35 
            xmax = 0.45 
            text = "L" 
        intervals [5]:
            xmin = 0.45 
            xmax = 0.6 
            text = "OW1" 
        intervals [6]:
            xmin = 0.6 
            xmax = 0.7 
            text = "W" 
        intervals [7]:
            xmin = 0.7 
            xmax = 0.85 
            text = "ER1" 
        intervals [8]:
            xmin = 0.85 
            xmax = 0.95 
            text = "L" 
        intervals [9]:
            xmin = 0.95 
            xmax = 1.05 
            text = "D" 
        intervals [10]:
            xmin = 1.05 
            xmax = 1.1 
            text = "XX9" 
        intervals [11]:
            xmin = 1.1 
            xmax = 1.2 
            text = "sil" 
        intervals [12]:
            xmin = 1.2 
            xmax = 1.3 
            text = "" 
'''

SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.3
<exists>
2
"IntervalTier"
"phones"
0
1.3
3
0
0.5
"sp"
0.5
1
"AA1"
1
1.3
"say ""hi"" 2"
"TextTier"
"events"
0
1.3
1
0.7
"click"
'''

SYMBOLS = {"<sil>", "|", "h", "ə", "l", "oʊ", "w", "ɜː", "d", "ɑː", "ʌ"}


def test_parse_mfa_long_format(tmp_path):
    path = tmp_path / "spk" / "utt1.TextGrid"
    path.parent.mkdir()
    path.write_text(MFA_LONG, encoding="utf-8")
    tg = read_textgrid(path)
    assert (tg.xmin, tg.xmax) == (0.0, 1.3)
    assert [t.name for t in tg.tiers] == ["words", "phones"]
    phones = tg.tier("phones")
    assert len(phones.intervals) == 12
    assert phones.intervals[1].text == "HH" and phones.intervals[1].xmin == 0.2 and phones.intervals[1].xmax == 0.28
    assert find_textgrid(tmp_path, "utt1", "spk") == path
    assert find_textgrid(tmp_path, "nope", "spk") is None


def test_parse_short_format_and_utf16(tmp_path):
    tg = parse_textgrid(SHORT)
    assert [t.kind for t in tg.tiers] == ["IntervalTier", "TextTier"]
    assert [iv.text for iv in tg.tiers[0].intervals] == ["sp", "AA1", 'say "hi" 2']
    assert tg.tiers[1].intervals[0].xmin == 0.7 and tg.tiers[1].intervals[0].text == "click"
    (tmp_path / "u16.TextGrid").write_text(SHORT, encoding="utf-16")
    assert read_textgrid(tmp_path / "u16.TextGrid").tiers[0].intervals[1].text == "AA1"
    with pytest.raises(TextGridError, match="not a Praat TextGrid"):
        parse_textgrid("hello")
    with pytest.raises(TextGridError, match="ends early"):
        parse_textgrid(SHORT[:120])


def test_map_phone():
    assert map_phone("", SYMBOLS) == "<sil>" and map_phone("spn", SYMBOLS) == "<sil>"
    assert map_phone("AH0", SYMBOLS) == "ə" and map_phone("AH1", SYMBOLS) == "ʌ"
    assert map_phone("ER1", SYMBOLS) == "ɜː" and map_phone("AA2", SYMBOLS) == "ɑː"
    assert map_phone("ow", SYMBOLS) == "oʊ"  # english_mfa IPA spelling
    assert map_phone("ɫ", SYMBOLS) == "l"
    assert map_phone("XX9", SYMBOLS) is None
    assert map_phone("XX9", SYMBOLS, {"XX9": "d"}) == "d"


def test_mfa_alignment_with_unmapped_report():
    ali = mfa_alignment(parse_textgrid(MFA_LONG), SYMBOLS)
    assert ali.unmapped == {"XX9": 1}
    assert ali.phonemes == ["<sil>", "h", "ə", "l", "oʊ", "|", "w", "ɜː", "l", "d", "<sil>"]
    assert ali.word_index == [-1, 0, 0, 0, 0, -1, 1, 1, 1, 1, -1]
    assert ali.times[0] == [0.0, 0.2] and ali.times[5] == [0.6, 0.6]
    assert ali.times[-1] == [1.1, 1.3]  # "sil" and "" merged into one silence
    fixed = mfa_alignment(parse_textgrid(MFA_LONG), SYMBOLS, phone_map={"XX9": "d"})
    assert not fixed.unmapped and fixed.phonemes[-2:] == ["d", "<sil>"]
    no_bounds = mfa_alignment(parse_textgrid(MFA_LONG), SYMBOLS - {"|"})
    assert "|" not in no_bounds.phonemes
