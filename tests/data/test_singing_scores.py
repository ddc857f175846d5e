import pytest

from ns2.data.singing.notes import Note, NoteScore, midi_to_hz


def test_valid_score_and_pitch():
    s = NoteScore([Note("la", 69, 0.0, 0.5), Note(None, None, 0.5, 0.25), Note("li", 72, 0.75, 0.5)],
                  tempo_bpm=120, source="t")
    assert s.end == pytest.approx(1.25)
    assert midi_to_hz(69) == pytest.approx(440.0)
    assert s.notes[1].is_rest


@pytest.mark.parametrize("notes,msg", [
    ([], "empty score"),
    ([Note("a", 60, 0.0, 1.0), Note("b", 62, 0.5, 1.0)], "note 1 (measure 2): onset 0.500 s overlaps"),
    ([Note("a", None, 0.0, 1.0)], "note 0 (measure 1): lyric 'a' on a rest"),
    ([Note("a", 120, 0.0, 1.0)], "note 0 (measure 1): pitch"),
    ([Note("a", 20, 0.0, 1.0)], "expected 40-1100 Hz"),
])
def test_bad_scores_name_the_note(notes, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")) as e:
        NoteScore(notes, source="x.musicxml", measures=tuple(range(1, len(notes) + 1)))
    assert "\n" not in str(e.value)


def test_music21_lazy_import(monkeypatch):
    import sys
    from ns2.data.singing.notes import require_music21
    monkeypatch.setitem(sys.modules, "music21", None)
    with pytest.raises(ImportError, match=r"pip install 'ns2\[singing\]'"):
        require_music21()
