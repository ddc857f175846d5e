"""Score files -> NoteScore -> phonemes, frame durations and F0 for singing synthesis."""
from __future__ import annotations

import numpy as np
import pytest

music21 = pytest.importorskip("music21")
pytest.importorskip("espeakng_loader")

from ns2.data.singing.convert import score_frames, transpose_score  # noqa: E402
from ns2.data.singing.readers import ScoreReadError, lyric_tokens, read_midi, read_musicxml, read_score  # noqa: E402

FR = 80.0
Q = 60.0 / 90.0  # a quarter note at 90 bpm


def song(tmp_path, fmt="musicxml", chord=False):
    """hap-py | rest | birth-(tied)-day _ : C4 D4 rest E4~E4 F4 G4 at 90 bpm."""
    s = music21.stream.Stream()
    s.append(music21.tempo.MetronomeMark(number=90))
    def note(p, ql, lyric=None, syllabic=None):
        n = music21.note.Note(p, quarterLength=ql)
        if lyric:
            n.lyrics = [music21.note.Lyric(text=lyric, syllabic=syllabic)]
        return n
    s.append(note("C4", 1, "hap", "begin"))
    s.append(note("D4", 1, "py", "end"))
    s.append(music21.note.Rest(quarterLength=1))
    a, b = note("E4", 2, "birth", "begin"), note("E4", 1)
    a.tie, b.tie = music21.tie.Tie("start"), music21.tie.Tie("stop")
    s.append(a)
    s.append(b)
    s.append(note("F4", 1, "day", "end"))
    s.append(music21.chord.Chord(["G4", "B4"], quarterLength=1) if chord else note("G4", 1))
    path = tmp_path / f"song.{'mid' if fmt == 'midi' else 'musicxml'}"
    s.write(fmt, fp=str(path))
    return path


def test_musicxml_with_lyrics_ties_and_melisma(tmp_path):
    sc = read_musicxml(song(tmp_path))
    assert [n.pitch for n in sc.notes] == [60, 62, None, 64, 65, 67]
    assert [n.lyric for n in sc.notes] == ["hap-", "py", None, "birth-", "day", None]
    assert [n.slur for n in sc.notes] == [False] * 5 + [True]
    assert sc.notes[3].duration == pytest.approx(3 * Q) and sc.notes[4].onset == pytest.approx(6 * Q)
    assert sc.tempo_bpm == 90 and sc.end == pytest.approx(8 * Q)


def test_midi_with_a_lyric_text(tmp_path):
    sc = read_midi(song(tmp_path, "midi"), "hap-py birth-day _")
    assert [n.pitch for n in sc.notes] == [60, 62, None, 64, 65, 67]
    assert [n.lyric for n in sc.notes] == ["hap-", "py", None, "birth-", "day", None] and sc.notes[-1].slur
    assert sc.notes[4].onset == pytest.approx(6 * Q, abs=0.01)
    assert lyric_tokens("hap-py _ to you") == ["hap-", "py", "_", "to", "you"]
    with pytest.raises(ScoreReadError, match="5 notes but 4 lyric tokens"):
        read_midi(song(tmp_path, "midi"), "hap-py birth-day")


def test_bad_score_files_are_one_line_errors(tmp_path):
    with pytest.raises(ScoreReadError, match="chord of 2 notes"):
        read_musicxml(song(tmp_path, chord=True))
    with pytest.raises(ScoreReadError, match="not found"):
        read_musicxml(tmp_path / "none.musicxml")
    with pytest.raises(ScoreReadError, match="unknown format"):
        read_score(tmp_path / "song.txt")
    with pytest.raises(ScoreReadError, match="needs its lyrics"):
        read_score(song(tmp_path, "midi"))
    with pytest.raises(ScoreReadError, match="without a lyric after a rest"):
        read_midi(song(tmp_path, "midi"), "hap-py _ day _")


def test_frames_sum_exactly_and_the_vowel_carries_the_note(tmp_path):
    from ns2.data.synthetic.singing import is_vowel, is_zero_length

    sc = read_musicxml(song(tmp_path))
    fr = score_frames(sc, frame_rate=FR)
    total = int(round(sc.end * FR))
    assert sum(fr.durations) == total == fr.f0.size
    assert len(fr.phonemes) == len(fr.durations) == len(fr.word_index)
    assert fr.text == "happy birthday"
    ours = [p for p in fr.phonemes if p not in ("<sil>", "|")]
    from ns2.text import Tokenizer

    assert ours == [p for p in Tokenizer("en-us")("happy birthday").phonemes if p != "|"]
    ends = np.cumsum(fr.durations)
    starts = ends - np.asarray(fr.durations)
    for p, d in zip(fr.phonemes, fr.durations):
        if is_zero_length(p):
            assert d == 0
        elif p != "<sil>" and not is_vowel(p):
            assert 1 <= d <= 0.08 * FR + 1  # consonants: bounded
    # the rest is silent and unvoiced; each note's vowel frames are at the written pitch
    a, b = fr.notes[2]
    assert np.all(fr.f0[a:b] == 0)
    sil = [k for k, p in enumerate(fr.phonemes) if p == "<sil>"]
    assert any(starts[k] <= a and ends[k] >= b for k in sil)
    for (a, b), n in zip(fr.notes, sc.notes):
        if n.pitch is not None:
            assert np.allclose(fr.f0[a:b], 440 * 2 ** ((n.pitch - 69) / 12), rtol=1e-4)
    # "birth-" holds its vowel for the tied half + quarter: the longest phoneme of the song
    longest = int(np.argmax(fr.durations))
    assert is_vowel(fr.phonemes[longest]) and fr.word_index[longest] == 1
    # the melisma G4 continues "day"'s vowel: no new phoneme starts inside it
    a, b = fr.notes[5]
    assert not np.any((starts > a) & (starts < b - 1) & (np.asarray(fr.durations) > 0))
    assert fr.as_score()["durations"] == fr.durations


def test_transpose_vibrato_and_portamento(tmp_path):
    sc = read_musicxml(song(tmp_path))
    base = score_frames(sc, frame_rate=FR)
    up = score_frames(transpose_score(sc, 12), frame_rate=FR)
    assert up.durations == base.durations and np.allclose(up.f0, 2 * base.f0, rtol=1e-4)
    assert np.allclose(score_frames(sc, frame_rate=FR, transpose=-3).f0, base.f0 * 2 ** (-3 / 12), rtol=1e-4)
    vib = score_frames(sc, frame_rate=FR, vibrato=(5.5, 50.0), vibrato_delay_s=0.2)
    voiced = base.f0 > 0
    cents = 1200 * np.log2(vib.f0[voiced] / base.f0[voiced])
    assert 40 < cents.max() <= 50.01 and -50.01 <= cents.min() < -40
    glide = score_frames(sc, frame_rate=FR, portamento_s=0.1)
    a, _ = glide.notes[1]  # D4 after C4: starts near C4 and reaches D4 after 100 ms
    assert base.f0[a] > glide.f0[a] > 0.99 * 440 * 2 ** ((60 - 69) / 12)
    assert glide.f0[a + 9] == pytest.approx(base.f0[a + 9], rel=1e-4)
    with pytest.raises(ValueError, match="Hz"):
        transpose_score(sc, 60)


def test_mandarin_tone_letters_take_no_time_and_apical_vowels_carry_the_note(tmp_path):
    """是 (ʂ ʅ ˥˩): the tone letter gets no frames, the apical vowel ʅ the note's time beyond the consonant."""
    s = music21.stream.Stream()
    s.append(music21.tempo.MetronomeMark(number=60))
    n = music21.note.Note("A4", quarterLength=1)
    n.lyrics = [music21.note.Lyric(text="是")]
    s.append(n)
    path = tmp_path / "shi.musicxml"
    s.write("musicxml", fp=str(path))
    out = score_frames(read_score(path), frame_rate=FR, language="cmn")
    d = dict(zip(out.phonemes, out.durations))
    assert "ʅ" in d and d["ʅ"] > d.get("ʂ", 0) and sum(v for k, v in d.items() if set(k) <= set("˥˦˧˨˩")) == 0
    assert sum(out.durations) == out.f0.size == 80  # one second at 80 frames/s


def test_reference_pitch_replaces_the_notes_on_sung_frames(tmp_path):
    from ns2.data.singing.convert import with_reference_pitch

    frames = score_frames(read_score(song(tmp_path)), frame_rate=FR)
    sung = frames.f0 > 0
    half = np.repeat(frames.f0, 2)[::4] * 2.0  # half as many frames, an octave up
    half[:3] = 0.0  # an unvoiced start of the reference: the written pitch stays there
    out = with_reference_pitch(frames, half)
    assert out.durations == frames.durations and out.phonemes == frames.phonemes
    assert (out.f0[~sung] == 0).all()
    mid = np.flatnonzero(sung)[len(np.flatnonzero(sung)) // 2]
    assert out.f0[mid] == pytest.approx(2 * frames.f0[mid], rel=0.05)
    T, N = frames.f0.size, half.size
    near = np.clip(np.rint((np.arange(T) + 0.5) * N / T - 0.5).astype(int), 0, N - 1)
    kept = sung & (near < 3)  # sung frames opposite the reference's unvoiced start
    assert kept.any()
    np.testing.assert_array_equal(out.f0[kept], frames.f0[kept])
    up = with_reference_pitch(frames, half, transpose=-12)  # transposing the reference back down
    assert up.f0[mid] == pytest.approx(frames.f0[mid], rel=0.05)
    with pytest.raises(ValueError, match="no voiced frames"):
        with_reference_pitch(frames, np.zeros(10))
