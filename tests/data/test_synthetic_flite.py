"""The synthetic corpus's Flite engine: CMU voices with segment times mapped onto the front end's phones."""
from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")
pytest.importorskip("parselmouth")

from ns2.data.manifest import read_manifest  # noqa: E402
from ns2.data.synthetic import generate_corpus  # noqa: E402
from ns2.data.synthetic.alignment import AlignmentError, align_events, text_items  # noqa: E402
from ns2.data.synthetic.flite_alignment import flite_events, phone_cost, warp  # noqa: E402
from ns2.data.synthetic.flite_synth import flite_available, get_flite  # noqa: E402
from ns2.data.synthetic.speakers import _flite_distance, make_flite_speakers  # noqa: E402

if not flite_available():
    if os.environ.get("NS2_FLITE_TEST") == "required":
        raise RuntimeError("NS2_FLITE_TEST=required but the Flite libraries are missing (run `make install`)")
    pytest.skip("Flite libraries not installed (`make install` unpacks Debian's libflite1)", allow_module_level=True)

SIL, WB = "<sil>", "|"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("flite") / "mini"
    return root, generate_corpus(root, "mini", seed=0, engine="flite")


def _reference(text):
    from ns2.data.synthetic.generate import _reference as ref

    return ref(text, "en-us")


# ------------------------------------------------------------------------------- synthesis
def test_flite_is_deterministic_and_times_cover_the_audio():
    f = get_flite()
    a = f.synthesize("The quiet baker carried a basket.", "rms", seed=3)
    b = f.synthesize("The quiet baker carried a basket.", "rms", seed=3)
    assert np.array_equal(a.audio, b.audio)
    assert a.sample_rate == 16000 and a.audio.dtype == np.int16
    assert a.segments[0].start == 0.0 and a.segments[0].name == "pau"
    assert all(x.end == y.start for x, y in zip(a.segments, a.segments[1:]))
    assert abs(a.segments[-1].end - a.audio.size / a.sample_rate) < 0.01
    assert [s.word_text for s in a.segments if s.word == 3][0] == "carried"
    slow = f.synthesize("The quiet baker carried a basket.", "rms", duration_stretch=1.4, seed=3)
    assert slow.audio.size > 1.25 * a.audio.size


def test_unknown_voice_and_empty_text_are_one_line_errors():
    from ns2.data.synthetic.flite_synth import FliteError

    with pytest.raises(FliteError, match="unknown Flite voice 'bob'"):
        get_flite().synthesize("hello", "bob")
    with pytest.raises(FliteError, match="empty text"):
        get_flite().synthesize("  ", "rms")


# ------------------------------------------------------------------------------- alignment
def test_warp_covers_both_strings_monotonically():
    path = warp(["hh", "aa", "r", "b", "er"], ["h", "ɑːɹ", "b", "ɚ"])
    assert path[0] == (0, 0) and path[-1] == (3, 4)
    assert all(i2 - i1 in (0, 1) and j2 - j1 in (0, 1) for (i1, j1), (i2, j2) in zip(path, path[1:]))
    assert (1, 1) in path and (1, 2) in path  # the r-coloured vowel takes Flite's "aa" and "r"
    assert (2, 3) in path and (3, 4) in path
    assert phone_cost("ae", "æ") == 0.0 and phone_cost("ae", "ɪ") == 0.4 and phone_cost("ae", "k") == 1.0
    with pytest.raises(AlignmentError, match="no entry"):
        phone_cost("xx", "a")


def test_vowels_land_on_flite_vowels():
    """Known answer: in "the cat sat on the mat", each æ lies (>= 80 %) inside Flite's ``ae``."""
    from ns2.text import DEFAULT_SYMBOLS

    text = "the cat sat on the mat."
    out = get_flite().synthesize(text, "rms")
    ref = _reference(text)
    al = align_events(flite_events(out.segments, text, ref, out.sample_rate), out.audio, out.sample_rate, text,
                      DEFAULT_SYMBOLS, reference=ref, pause_rms=None)
    ae = [s for s in out.segments if s.name == "ae"]
    ours = [t for p, t in zip(al.phonemes, al.times) if p == "æ"]
    assert len(ae) == len(ours) == 3
    for seg, (a, b) in zip(ae, ours):
        overlap = max(0.0, min(b, seg.end) - max(a, seg.start))
        assert overlap >= 0.8 * (b - a) and overlap >= 0.8 * (seg.end - seg.start)


def test_words_keep_the_span_flite_gave_them():
    text = "Anna painted twenty seven lanterns, and the sailor laughed!"
    from ns2.text import normalize

    text = normalize(text, "en-us")
    out = get_flite().synthesize(text, "slt")
    ref = _reference(text)
    events = flite_events(out.segments, text, ref, out.sample_rate)
    words = [e for e in events if e.kind == "word"]
    assert len(words) == len(text_items(text).words)
    for k, w in enumerate(words):
        segs = [s for s in out.segments if s.word == k]
        assert abs(w.sample - segs[0].start * out.sample_rate) <= 1
    with pytest.raises(AlignmentError, match="Flite read"):
        flite_events(out.segments, text + " extra", ref, out.sample_rate)


# ------------------------------------------------------------------------------- speakers and corpus
def test_flite_speakers_are_distinct_and_seeded():
    a = make_flite_speakers(24, 6, seed=0)
    assert a == make_flite_speakers(24, 6, seed=0) and a != make_flite_speakers(24, 6, seed=1)
    assert len({s.id for s in a}) == 30 and sum(s.held_out for s in a) == 6
    assert min(_flite_distance(x, y) for i, x in enumerate(a) for y in a[i + 1:]) >= 1.5
    assert {s.gender for s in a} == {"female", "male"}
    f0 = {g: [s.f0 for s in a if s.gender == g] for g in ("female", "male")}
    assert min(f0["female"]) > max(f0["male"])


def test_corpus_matches_the_front_end_and_covers_the_audio(corpus):
    import soundfile as sf

    from ns2.text import Tokenizer

    root, path = corpus
    utts = read_manifest(path)
    assert {u.kind for u in utts} == {"speech", "singing"}
    tok = Tokenizer("en-us")
    for u in utts:
        info = sf.info(str(u.audio_path(root)))
        assert info.samplerate == 22050 and u.sample_rate == 22050
        times = np.asarray(u.phoneme_times)
        assert times[0, 0] == 0.0 and math.isclose(times[-1, 1], info.frames / 22050, abs_tol=1e-6)
        assert np.all(times[1:, 0] == times[:-1, 1]) and np.all(times[:, 1] >= times[:, 0])
        if u.kind == "speech":
            ours = [p for p in u.phonemes if p not in (SIL, WB)]
            assert ours == [p for p in tok(u.text).phonemes if p != WB], u.id
            assert u.extra["voice"].startswith("flite-")


def test_corpus_is_deterministic(corpus, tmp_path):
    root, path = corpus
    again = generate_corpus(tmp_path / "again", "mini", seed=0, engine="flite", num_workers=2)
    assert again.read_bytes() == path.read_bytes()
    for u in read_manifest(path)[:6]:
        a, b = u.audio_path(root), u.audio_path(tmp_path / "again")
        assert hashlib.md5(a.read_bytes()).digest() == hashlib.md5(b.read_bytes()).digest()



def test_an_offline_recogniser_reads_it_and_voices_stay_apart(corpus, tmp_path):
    """The corpus's purpose: held-out speech the offline recogniser transcribes (domain LM), and
    speakers resemblyzer tells apart (same voice vs different voice SIM)."""
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("resemblyzer")
    import itertools

    import soundfile as sf

    from ns2.data.audio import resample
    from ns2.data.synthetic.lm import synthetic_domain_lm
    from ns2.metrics.asr import PocketsphinxRecognizer
    from ns2.metrics.sim import ResemblyzerSimilarity, cosine
    from ns2.metrics.wer import aggregate_wer, word_errors

    root, path = corpus
    utts = [u for u in read_manifest(path) if u.kind == "speech"]
    wavs = {u.id: resample(sf.read(u.audio_path(root), dtype="float32")[0], 22050, 16000) for u in utts}
    asr = PocketsphinxRecognizer(lm=synthetic_domain_lm(tmp_path))
    test = [u for u in utts if u.split == "test"]
    wer = aggregate_wer([word_errors(u.extra["normalized_text"], asr.transcribe(wavs[u.id])) for u in test])
    assert wer["corpus_wer"] <= 0.25, wer
    sim = ResemblyzerSimilarity()
    emb = {u.id: sim.embed(wavs[u.id], 16000) for u in utts}
    same, diff = [], []
    for a, b in itertools.combinations(utts, 2):
        (same if a.speaker == b.speaker else diff).append(cosine(emb[a.id], emb[b.id]))
    assert np.mean(same) - np.mean(diff) >= 0.2, (np.mean(same), np.mean(diff))
