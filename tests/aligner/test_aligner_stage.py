import math

import numpy as np
import pytest
import soundfile as sf
import torch

from ns2.data.aligner.infer import Aligner, load_aligner, save_aligner
from ns2.data.aligner.model import AlignerModel
from ns2.data.aligner.stage import align_manifest, align_utterance
from ns2.data.manifest import Utterance
from ns2.modules.mel import MelSpectrogram


@pytest.fixture()
def table():
    from ns2.text.symbols import SymbolTable

    return SymbolTable(["<pad>", "<bos>", "<eos>", "<sil>", "|", "a", "b", "c", "d", "e", "f", "g"], "tones-test")


@pytest.fixture()
def aligner(table):
    torch.manual_seed(0)
    model = AlignerModel(len(table), hidden_dim=32, attn_dim=16, text_layers=1, mel_layers=1, dropout=0.0)
    return Aligner(model, MelSpectrogram(), table, (table.word_boundary_id,))


def utterance(root, uid: str, phonemes: list[str], seconds: float, sr: int = 16000, num_frames=None) -> Utterance:
    rng = np.random.default_rng(abs(hash(uid)) % 2**32)
    n = int(round(seconds * sr))
    path = root / "audio" / f"{uid}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * rng.standard_normal(n)).astype(np.float32), sr, subtype="FLOAT")
    return Utterance(id=uid, audio=f"audio/{uid}.wav", sample_rate=sr, duration=n / sr, speaker="s", text="x",
                     phonemes=phonemes, frame_rate=80.0 if num_frames is not None else None, num_frames=num_frames)


def test_durations_cover_every_frame_and_boundaries_get_none(tmp_path, aligner):
    utts = [
        utterance(tmp_path, "u1", ["<sil>", "a", "b", "|", "c", "<sil>"], 0.5),
        utterance(tmp_path, "u2", ["a", "|", "b", "|", "c", "d"], 0.3333, num_frames=27),
        utterance(tmp_path, "u3", ["<sil>", "e", "f", "g", "|", "a", "<sil>"], 1.01),
        utterance(tmp_path, "u4", ["b", "c"], 0.2, sr=22050),  # resampled to the aligner's rate
    ]
    out = align_manifest(aligner, utts, tmp_path, batch_size=3)
    assert [u.id for u in out] == ["u1", "u2", "u3", "u4"]
    for u in out:
        u.validate()
        samples = sf.info(str(u.audio_path(tmp_path))).frames
        if u.sample_rate != 16000:
            samples = round(samples * 16000 / u.sample_rate)
        assert u.frame_rate == 80.0 and u.num_frames == math.ceil(samples / 200)
        assert sum(u.durations) == u.num_frames and len(u.durations) == len(u.phonemes)
        assert all((d == 0) == (p == "|") for d, p in zip(u.durations, u.phonemes))
        assert 0.0 < u.extra["align_confidence"] <= 1.0
    # batching does not change the result
    single = [align_utterance(aligner, u, tmp_path) for u in utts]
    assert [u.durations for u in single] == [u.durations for u in out]


def test_bad_items_raise_or_are_quarantined(tmp_path, aligner):
    good = utterance(tmp_path, "good", ["a", "b"], 0.2)
    short = utterance(tmp_path, "short", ["a", "b", "c", "d", "e"], 0.03)
    unknown = utterance(tmp_path, "unknown", ["a", "zz"], 0.2)
    stale = utterance(tmp_path, "stale", ["a", "b"], 0.2, num_frames=99)
    missing = Utterance(id="missing", audio="audio/nope.wav", sample_rate=16000, duration=1.0, speaker="s", text="x",
                        phonemes=["a"])
    with pytest.raises(ValueError, match="'short'.*too short"):
        align_manifest(aligner, [good, short], tmp_path)
    quarantine: list[dict] = []
    out = align_manifest(aligner, [good, short, unknown, stale, missing], tmp_path, quarantine=quarantine)
    assert [u.id for u in out] == ["good"]
    reasons = {q["id"]: q["reason"] for q in quarantine}
    assert set(reasons) == {"short", "unknown", "stale", "missing"}
    assert "zz" in reasons["unknown"] and "99" in reasons["stale"] and "unreadable" in reasons["missing"]
    assert all(q["stage"] == "aligner" and q["audio"] for q in quarantine)


def test_checkpoint_path_and_bare_model(tmp_path, aligner, table):
    utts = [utterance(tmp_path, "u1", ["<sil>", "a", "|", "b", "<sil>"], 0.4)]
    ref = align_manifest(aligner, utts, tmp_path)
    save_aligner(tmp_path / "aligner.pt", aligner)
    assert align_manifest(tmp_path / "aligner.pt", utts, tmp_path)[0].durations == ref[0].durations
    bare = align_manifest(aligner.model, utts, tmp_path, symbols=table)
    assert bare[0].durations == ref[0].durations
    with pytest.raises(FileNotFoundError):
        load_aligner(tmp_path / "none.pt")
