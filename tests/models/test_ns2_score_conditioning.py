"""Score conditioning of NaturalSpeech 2's predictors (``score_conditioning``, beyond the paper): the note
embedding, the switch (off = today's network exactly), what the predictors read, the dataset's notes
field and the synthesizer's derivation of notes from a score."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from test_ns2_modules import D, TINY, ids, tiny

from ns2.data.dataset import TTSDataset, collate, note_inputs
from ns2.data.manifest import Utterance
from ns2.inference.score import note_starts, parse_score, score_notes
from ns2.inference.synthesizer import SynthesisError
from ns2.models.ns2 import NaturalSpeech2, NoteEmbedding
from ns2.models.ns2.note_embedding import NO_SCORE, NOTE, REST

H = TINY["hidden"]


def inputs(seed: int = 1):
    """A batch of two: item 0 sung (7 phonemes, notes), item 1 spoken (5 phonemes, no notes)."""
    g = torch.Generator().manual_seed(seed)
    ph = torch.randint(1, TINY["vocab_size"], (2, 7), generator=g)
    pm = torch.ones(2, 7, dtype=torch.bool)
    pm[1, 5:] = False
    dur = torch.randint(1, 4, (2, 7), generator=g) * pm
    dur[0, 2] = 0  # a zero-length phoneme (a stress mark)
    t_max = int(dur.sum(-1).max())
    note_pitch = torch.tensor([[0.0, 60, 60, 62, 62, 0, 67], [0, 0, 0, 0, 0, 0, 0]])
    note_start = torch.tensor([[0, 1, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    return dict(
        phonemes=ph, phoneme_mask=pm, durations=dur,
        log_f0=5 + 0.1 * torch.randn(2, t_max, generator=g), z_t=torch.randn(2, D, t_max, generator=g),
        t=torch.rand(2, generator=g), z_prompt=torch.randn(2, D, 6, generator=g),
        prompt_mask=torch.ones(2, 6, dtype=torch.bool),
    ), note_pitch, note_start


def run(model: NaturalSpeech2, x: dict, **notes):
    return model(x["phonemes"], x["phoneme_mask"], x["durations"], x["log_f0"], x["z_t"], x["t"], x["z_prompt"],
                 x["prompt_mask"], **notes)


def close(a, b, tol=1e-6):
    return torch.allclose(a, b, atol=tol, rtol=0)


# --- the note embedding -------------------------------------------------------------------------------
def test_note_embedding_states_shapes_and_masks():
    emb = NoteEmbedding(H)
    pitch = torch.tensor([[0.0, 60, 62, 0, 0], [0, 0, 0, 0, 0]])
    start = torch.tensor([[0, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    assert emb.states(pitch, mask).tolist() == [[REST, NOTE, NOTE, REST, REST], [NO_SCORE] * 5]
    e = emb(pitch, start, mask)
    assert e.shape == (2, H, 5) and not e[0, :, 4].any() and not e[1, :, 3:].any()  # zero at padding
    # speech: one constant vector, whatever note_start says (onsets count on notes only)
    speech = emb.state.weight[NO_SCORE]
    assert close(e[1, :, 0], speech) and close(e[1, :, 1], speech)
    assert close(emb(None, None, mask, like=pitch)[1], e[1])
    # the pitch is a linear feature: one octave up moves a note by the same vector everywhere
    up = emb(pitch + 12 * (pitch > 0), start, mask)
    step = up - e
    assert close(step[0, :, 1], step[0, :, 2], 1e-5) and close(step[0, :, 1], emb.pitch.weight[:, 0], 1e-5)
    assert close(step[0, :, 0], torch.zeros(H))  # a rest has no pitch
    with pytest.raises(ValueError, match="note_start"):
        emb(pitch, start[:, :3], mask)


def test_regulate_notes_repeats_pitch_and_marks_onset_frames():
    model = tiny(score_conditioning=True)
    x, pitch, start = inputs()
    fp, fs = model.regulate_notes(pitch, start, x["durations"], x["phoneme_mask"])
    c, frame_mask = model.regulate(torch.zeros(2, 1, 7), x["durations"], x["phoneme_mask"])
    assert fp.shape == fs.shape == frame_mask.shape
    want = torch.repeat_interleave(pitch[0], x["durations"][0])
    assert torch.equal(fp[0, : len(want)], want)
    first = (x["durations"][0].cumsum(0) - x["durations"][0])[start[0]]
    assert torch.nonzero(fs[0]).flatten().tolist() == sorted(set(first.tolist()))
    assert not fs[1].any() and not (fs & ~frame_mask).any()
    assert model.regulate_notes(None, None, x["durations"], x["phoneme_mask"]) == (None, None)


# --- the switch ---------------------------------------------------------------------------------------
def test_switch_off_is_todays_network_and_takes_no_notes():
    torch.manual_seed(0)
    default = NaturalSpeech2(**TINY).eval()
    torch.manual_seed(0)
    off = NaturalSpeech2(**TINY, score_conditioning=False).eval()
    assert off.note_embedding is None and not off.score_conditioning
    assert list(off.state_dict()) == list(default.state_dict())
    for (k, a), b in zip(default.state_dict().items(), off.state_dict().values()):
        assert torch.equal(a, b), k
    x, pitch, start = inputs()
    want, got = run(default, x), run(off, x)
    for f in ("z0_hat", "log_duration", "log_f0", "cond"):
        assert close(getattr(got, f), getattr(want, f)), f
    cond_want = default.infer_condition(x["phonemes"], x["phoneme_mask"], x["z_prompt"], x["prompt_mask"])
    cond_got = off.infer_condition(x["phonemes"], x["phoneme_mask"], x["z_prompt"], x["prompt_mask"])
    assert torch.equal(cond_got.durations, cond_want.durations) and close(cond_got.cond, cond_want.cond)
    with pytest.raises(ValueError, match="without score_conditioning"):
        run(off, x, note_pitch=pitch, note_start=start)
    with pytest.raises(ValueError, match="without score_conditioning"):
        off.infer_condition(x["phonemes"], x["phoneme_mask"], x["z_prompt"], x["prompt_mask"], note_pitch=pitch)


def test_switch_on_adds_the_note_embedding_only():
    """Built last: every other box starts from the same weights as with the switch off."""
    torch.manual_seed(0)
    off = NaturalSpeech2(**TINY)
    torch.manual_seed(0)
    on = NaturalSpeech2(**TINY, score_conditioning=True)
    extra = set(on.state_dict()) - set(off.state_dict())
    assert extra and all(k.startswith("note_embedding.") for k in extra)
    for k, v in off.state_dict().items():
        assert torch.equal(on.state_dict()[k], v), k


def test_switch_on_shapes_and_the_predictors_read_the_notes():
    model = tiny(score_conditioning=True)
    x, pitch, start = inputs()
    out = run(model, x, note_pitch=pitch, note_start=start)
    t_max = x["z_t"].shape[-1]
    assert out.z0_hat.shape == (2, D, t_max) and out.log_duration.shape == (2, 7) and out.log_f0.shape == (2, t_max)
    assert not out.log_f0[~out.frame_mask].any() and not out.log_duration[~x["phoneme_mask"]].any()
    higher = run(model, x, note_pitch=pitch + 5 * (pitch > 0), note_start=start)
    sung = out.frame_mask[0]
    assert (higher.log_f0[0, sung] - out.log_f0[0, sung]).abs().max() > 1e-3  # the pitch predictor reads the notes
    assert (higher.log_duration[0] - out.log_duration[0]).abs().max() > 1e-3  # so does the duration predictor
    moved = run(model, x, note_pitch=pitch, note_start=torch.roll(start, 1, -1) & (pitch > 0))
    assert (moved.log_f0[0, sung] - out.log_f0[0, sung]).abs().max() > 1e-4  # and the onsets
    # the diffusion condition is the ground truth's either way
    assert close(higher.cond, out.cond)


def test_speech_items_are_unaffected_by_note_inputs():
    model = tiny(score_conditioning=True)
    x, pitch, start = inputs()
    out = run(model, x, note_pitch=pitch, note_start=start)
    other = run(model, x, note_pitch=pitch.flip(-1) * 1.1, note_start=start.flip(-1))  # the sung item's notes change
    none = run(model, x)  # no item has a score
    fm = out.frame_mask[1]
    for o in (other, none):
        assert close(o.log_f0[1, fm], out.log_f0[1, fm], 1e-5) and close(o.log_duration[1], out.log_duration[1], 1e-5)
        assert close(o.z0_hat[1], out.z0_hat[1], 1e-5)
    # a speech item alone is the same as in the mixed batch (no notes leak across items)
    alone = {k: v[1:, ...] for k, v in x.items()}
    n_fr = int(x["durations"][1].sum())
    alone["z_t"], alone["log_f0"] = alone["z_t"][..., :n_fr], alone["log_f0"][..., :n_fr]
    solo = run(model, alone, note_pitch=pitch[1:], note_start=start[1:])
    assert close(solo.log_f0[0], out.log_f0[1, :n_fr], 1e-5) and close(solo.log_duration[0], out.log_duration[1], 1e-5)


def test_sung_item_is_padding_invariant_with_notes():
    model = tiny(score_conditioning=True)
    x, pitch, start = inputs()
    out = run(model, x, note_pitch=pitch, note_start=start)
    padded = dict(x)
    padded["phonemes"] = torch.cat([x["phonemes"], torch.randint(1, 9, (2, 3))], -1)
    padded["phoneme_mask"] = torch.cat([x["phoneme_mask"], torch.zeros(2, 3, dtype=torch.bool)], -1)
    padded["durations"] = torch.cat([x["durations"], torch.zeros(2, 3, dtype=torch.long)], -1)
    pp = torch.cat([pitch, torch.full((2, 3), 70.0)], -1)  # garbage notes on padded phonemes
    ps = torch.cat([start, torch.ones(2, 3, dtype=torch.bool)], -1)
    again = run(model, padded, note_pitch=pp, note_start=ps)
    assert close(again.log_f0, out.log_f0, 1e-5) and close(again.log_duration[:, :7], out.log_duration, 1e-5)


def test_infer_condition_predicts_from_the_notes():
    model = tiny(score_conditioning=True)
    x, pitch, start = inputs()
    args = (x["phonemes"][:1], x["phoneme_mask"][:1], x["z_prompt"][:1], x["prompt_mask"][:1])
    d = x["durations"][:1]
    a = model.infer_condition(*args, durations=d, note_pitch=pitch[:1], note_start=start[:1])
    b = model.infer_condition(*args, durations=d, note_pitch=pitch[:1] + 7 * (pitch[:1] > 0), note_start=start[:1])
    assert a.log_f0.shape == (1, int(d.sum())) and (a.log_f0 - b.log_f0).abs().max() > 1e-3
    # given pitch: the notes change nothing
    f0 = model.infer_condition(*args, durations=d, log_f0=a.log_f0, note_pitch=pitch[:1])
    assert close(f0.cond, model.infer_condition(*args, durations=d, log_f0=a.log_f0).cond)


# --- the dataset's notes field -----------------------------------------------------------------------
PHONES = ["<sil>", "l", "ˈ", "iː", "oʊ", "|", "b", "ɔː", "t", "<sil>"]
DURS = [4, 2, 0, 6, 5, 0, 2, 6, 2, 3]
SCORE = [
    {"lyric": "<sil>", "pitch": 0, "start": 0.0, "duration": 0.05, "phoneme_start": 0, "phoneme_end": 1, "rest": True},
    {"lyric": "liː", "pitch": 57, "start": 0.05, "duration": 0.1, "phoneme_start": 1, "phoneme_end": 4},
    {"lyric": "oʊ", "pitch": 59, "start": 0.15, "duration": 0.0625, "phoneme_start": 4, "phoneme_end": 5},
    {"lyric": "bɔːt", "pitch": 59, "start": 0.2125, "duration": 0.125, "phoneme_start": 5, "phoneme_end": 9},
    {"lyric": "<sil>", "pitch": 0, "start": 0.3375, "duration": 0.0375, "phoneme_start": 9, "phoneme_end": 10, "rest": True},
]


def sung_utt(**kw) -> Utterance:
    base = dict(id="a", audio="a.wav", sample_rate=16000, duration=0.375, speaker="s", text="leo bought",
                kind="singing", phonemes=PHONES, durations=DURS, frame_rate=80.0, num_frames=sum(DURS), score=SCORE)
    return Utterance(**{**base, **kw})


def test_note_inputs_from_the_manifest_score():
    pitch, start = note_inputs(sung_utt())
    assert pitch.tolist() == [0, 57, 57, 57, 59, 59, 59, 59, 59, 0]
    assert start.tolist() == [False, True, False, False, True, True, False, False, False, False]
    speech_pitch, speech_start = note_inputs(sung_utt(kind="speech", score=None))
    assert not speech_pitch.any() and not speech_start.any() and speech_pitch.dtype == np.float32


def test_dataset_delivers_notes_only_when_asked(tmp_path):
    utts = [sung_utt(), sung_utt(id="b", kind="speech", score=None, phonemes=PHONES[:5], durations=DURS[:5],
                                 num_frames=sum(DURS[:5]))]
    plain = TTSDataset(tmp_path / "m.jsonl", fields=("phonemes", "durations"), utterances=utts)
    assert "note_pitch" not in plain[0] and "note_pitch" not in collate([plain[0], plain[1]])
    ds = TTSDataset(tmp_path / "m.jsonl", fields=("phonemes", "durations", "notes"), utterances=utts)
    a, b = ds[0], ds[1]
    assert a["note_pitch"].shape == a["phonemes"].shape and a["note_start"].dtype == torch.bool
    batch = collate([b, a])
    assert batch["note_pitch"].shape == batch["phonemes"].shape == (2, 10)
    assert not batch["note_pitch"][0].any() and not batch["note_start"][0].any()  # speech, then padding
    assert batch["note_pitch"][1].tolist() == note_inputs(utts[0])[0].tolist()
    # a crop keeps whole phonemes and slices the notes with them
    cropped = TTSDataset(tmp_path / "m.jsonl", fields=("phonemes", "durations", "notes"), utterances=utts,
                         max_frames_per_item=14, seed=3)
    item = cropped[0]
    assert item["note_pitch"].shape == item["durations"].shape and int(item["durations"].sum()) == item["num_frames"]


# --- notes from a score at synthesis -------------------------------------------------------------------
def score_f0(notes=SCORE, frames=sum(DURS), rate=80.0):
    hz = np.zeros(frames)
    spans = []
    for n in notes:
        a, b = int(round(n["start"] * rate)), int(round((n["start"] + n["duration"]) * rate))
        spans.append((a, b))
        if not n.get("rest"):
            hz[a:b] = 440 * 2 ** ((n["pitch"] - 69) / 12)
    return hz, spans


def test_score_notes_agree_with_the_training_notes():
    want_pitch, want_start = note_inputs(sung_utt())
    hz, spans = score_f0()
    pitch, start = score_notes(DURS, hz, spans)
    np.testing.assert_allclose(pitch, want_pitch, atol=1e-4)
    assert start.tolist() == want_start.tolist()
    # without the notes' spans: onsets where the pitch moves (59 -> 59 merges)
    _, merged = score_notes(DURS, hz)
    assert merged.tolist() == [False, True, False, False, True, False, False, False, False, False]
    assert note_starts([0, 60, 60, 0, 60, 61.0]).tolist() == [False, True, False, False, True, True]


def test_parse_score_carries_the_notes():
    hz, spans = score_f0()
    sc = parse_score({"phonemes": PHONES, "durations": DURS, "f0": hz, "note_frames": spans}, "x", None)
    assert sc.note_pitch.shape == sc.note_start.shape == (1, len(PHONES))
    assert sc.note_start[0].tolist() == note_inputs(sung_utt())[1].tolist()
    given = parse_score({"phonemes": PHONES, "durations": DURS, "note_pitch": [0, 50] + [52] * 8}, "x", None)
    assert given.note_pitch[0, 1] == 50 and given.note_start[0].tolist()[:3] == [False, True, True]
    assert parse_score({"phonemes": PHONES, "durations": DURS}, "x", None).note_pitch is None
    with pytest.raises(SynthesisError, match="note_pitch of shape"):
        parse_score({"phonemes": PHONES, "durations": DURS, "note_pitch": [60, 61]}, "x", None)
    with pytest.raises(SynthesisError, match="note_start without note_pitch"):
        parse_score({"phonemes": PHONES, "durations": DURS, "note_start": [0] * 10}, "x", None)
