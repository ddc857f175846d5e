"""TTSDataset items and prompts, collate masks, and the datamodule (loaders, workers, resume under Lightning)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ns2.data.datamodule import TTSDataModule
from ns2.data.dataset import PromptConfig, TTSDataset, collate
from ns2.data.manifest import Utterance, write_manifest
from ns2.text.symbols import SymbolTable

SYMBOLS = SymbolTable(["<pad>", "<bos>", "<eos>", "<sil>", "|", "a", "b", "c", "d"], version="test-v1")
SR, HOP = 16000, 200
FIELDS = ("phonemes", "durations", "f0", "audio", "codes")


def make_prepared(root: Path, n: int = 24, seed: int = 0) -> Path:
    """A prepared manifest: wavs at 16 kHz, F0 and codes on the 80 Hz grid, durations summing to num_frames."""
    rng = np.random.default_rng(seed)
    utts = []
    for i in range(n):
        frames = int(rng.integers(30, 160))
        samples = frames * HOP - int(rng.integers(0, HOP))  # not a whole number of frames
        x = (0.1 * np.sin(2 * np.pi * 200 * np.arange(samples) / SR)).astype(np.float32)
        sf.write(_mk(root / "audio") / f"u{i}.wav", x, SR)
        L = int(rng.integers(3, 12))
        cuts = np.sort(rng.choice(np.arange(1, frames), size=L - 1, replace=False))
        durations = np.diff(np.concatenate([[0], cuts, [frames]])).tolist()
        f0 = np.where(np.arange(frames) % 7 < 4, 100.0 + i, 0.0).astype(np.float32)
        np.save(_mk(root / "f0") / f"u{i}.npy", f0)
        np.save(_mk(root / "codes") / f"u{i}.npy", np.tile(np.arange(frames), (3, 1)).astype(np.int16))
        phonemes = [["a", "b", "c", "d", "|"][k % 5] for k in range(L)]
        utts.append(Utterance(id=f"u{i}", audio=f"audio/u{i}.wav", sample_rate=SR, duration=samples / SR,
                              speaker=f"s{i % 3}", text="abc", split="valid" if i % 6 == 5 else "train",
                              phonemes=phonemes, word_index=[0] * L, durations=durations, frame_rate=SR / HOP,
                              num_frames=frames, features={"f0": f"f0/u{i}.npy", "codes": f"codes/u{i}.npy"}))
    write_manifest(root / "manifest.jsonl", utts)
    return root / "manifest.jsonl"


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


@pytest.fixture()
def manifest(tmp_path) -> Path:
    return make_prepared(tmp_path)


def test_item_fields_and_alignment(manifest):
    ds = TTSDataset(manifest, FIELDS, symbols=SYMBOLS, seed=1)
    item = ds[0]
    u = ds.utts[0]
    T = u.num_frames
    assert item["phonemes"].dtype == torch.long and item["phonemes"].tolist() == SYMBOLS.encode(u.phonemes)
    assert item["durations"].sum().item() == T == item["num_frames"]
    assert item["f0"].shape == (T,) and item["voiced"].dtype == torch.bool and item["log_f0"].shape == (T,)
    assert torch.isfinite(item["log_f0"]).all()
    assert item["audio"].shape == (T * HOP,)
    assert item["codes"].shape == (3, T) and item["codes"].dtype == torch.long
    assert 0 <= item["prompt_start"] <= item["prompt_end"] < T
    only = TTSDataset(manifest, ("durations",), seed=1)[0]
    assert "audio" not in only and "phonemes" not in only and "durations" in only
    with pytest.raises(ValueError, match="unknown dataset fields"):
        TTSDataset(manifest, ("mel",))
    bare = make_prepared(manifest.parent / "bare", n=2)
    with pytest.raises(ValueError, match="lacks"):
        TTSDataset(bare, ("phonemes",), symbols=SYMBOLS, utterances=[ds.utts[0].replace(phonemes=None, word_index=None, durations=None)])


def test_prompt_spans_vary_and_are_deterministic(manifest):
    ds = TTSDataset(manifest, ("durations",), seed=0, prompt={"min_frac": 0.2, "max_frac": 0.4, "min_frames": 5})
    spans = [(ds[(i, 0)]["prompt_start"], ds[(i, 0)]["prompt_end"]) for i in range(len(ds))]
    assert spans == [(ds[(i, 0)]["prompt_start"], ds[(i, 0)]["prompt_end"]) for i in range(len(ds))]
    starts = [s for s, _ in spans]
    assert len(set(starts)) > len(ds) // 2 and sum(s > 0 for s in starts) > len(ds) // 2  # not always at the start
    for i, (s, e) in enumerate(spans):
        T = ds.utts[i].num_frames
        assert 0 <= s < e < T + 1 and e - s >= 5 and e - s <= max(5, round(0.4 * T))
    other_epoch = [(ds[(i, 1)]["prompt_start"], ds[(i, 1)]["prompt_end"]) for i in range(len(ds))]
    assert other_epoch != spans
    ds.set_epoch(1)
    assert (ds[0]["prompt_start"], ds[0]["prompt_end"]) == other_epoch[0]
    rng = np.random.default_rng(0)
    assert PromptConfig().draw(rng, 1) == (0, 0)
    assert TTSDataset(manifest, ("durations",), prompt=False)[0]["prompt_end"] == 0


def test_crop_keeps_alignment(manifest):
    full = TTSDataset(manifest, FIELDS, symbols=SYMBOLS, seed=2)
    ds = TTSDataset(manifest, FIELDS, symbols=SYMBOLS, seed=2, max_frames_per_item=40)
    assert max(ds.frame_lengths()) <= 40
    for i in range(len(ds)):
        item, ref = ds[i], full[i]
        T, a = item["num_frames"], item["frame_offset"]
        assert T <= 40 and item["durations"].sum().item() == T
        assert torch.equal(item["f0"], ref["f0"][a:a + T])
        assert torch.equal(item["codes"], ref["codes"][:, a:a + T])
        assert torch.equal(item["audio"], ref["audio"][a * HOP:(a + T) * HOP])
        assert len(item["phonemes"]) == len(item["durations"])


def test_collate_masks(manifest):
    ds = TTSDataset(manifest, FIELDS, symbols=SYMBOLS, seed=0)
    items = [ds[i] for i in (0, 1, 2)]
    b = ds.collate(items)
    T = max(it["num_frames"] for it in items)
    L = max(len(it["phonemes"]) for it in items)
    assert b["frame_mask"].shape == (3, T) and b["phoneme_mask"].shape == (3, L)
    assert b["phonemes"].shape == (3, L) and b["durations"].shape == (3, L)
    assert b["f0"].shape == (3, T) and b["voiced"].shape == (3, T) and b["codes"].shape == (3, 3, T)
    assert b["audio"].shape == (3, T * HOP)
    for k, it in enumerate(items):
        n, l = it["num_frames"], len(it["phonemes"])
        assert b["frame_mask"][k].sum() == n and b["frame_mask"][k, :n].all()
        assert b["phoneme_mask"][k].sum() == l
        assert (b["phonemes"][k, l:] == SYMBOLS.pad_id).all()
        assert b["durations"][k].sum() == n
        assert not b["voiced"][k, n:].any()
        s, e = it["prompt_start"], it["prompt_end"]
        assert b["prompt_mask"][k].nonzero().flatten().tolist() == list(range(s, e))
        assert b["audio_lengths"][k] == n * HOP
    assert collate(items, pad_id=7)["phonemes"][b["phoneme_mask"] == 0].eq(7).all()
    with pytest.raises(ValueError, match="empty"):
        collate([])


def test_datamodule_iterates_and_resumes(manifest):
    dm = TTSDataModule(manifest, fields=FIELDS, max_frames=400, num_workers=0, seed=3, symbols=SYMBOLS)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) > 1
    for b in batches:
        assert b["frame_mask"].shape[1] * len(b["ids"]) <= 400 or len(b["ids"]) == 1
    assert sorted(i for b in batches for i in b["ids"]) == sorted(u.id for u in dm.datasets["train"].utts)
    val = list(dm.val_dataloader())
    assert sum(len(b["ids"]) for b in val) == len(dm.datasets["val"]) == 4
    # resume: two batches consumed in epoch 1, then a new datamodule continues with the rest
    loader.batch_sampler.sampler.set_epoch(1)
    full = [b["ids"] for b in loader]
    it = iter(loader)
    next(it), next(it)
    state = dm.state_dict()
    assert state["train_sampler"]["consumed"] == 2 and state["train_sampler"]["epoch"] == 1
    dm2 = TTSDataModule(manifest, fields=FIELDS, max_frames=400, num_workers=0, seed=3, symbols=SYMBOLS)
    dm2.load_state_dict(state)
    rest = [b["ids"] for b in dm2.train_dataloader()]
    assert rest == full[2:]


@pytest.mark.parametrize("factor, expected", [(1.0, 1), (4.0, 4), (2.5, 2.5), (0.0, 0)])
def test_singing_is_upsampled_and_every_batch_says_its_kind(tmp_path, factor, expected):
    from ns2.data.manifest import read_manifest

    path = make_prepared(tmp_path, n=24)
    utts = read_manifest(path)
    sung = {u.id for k, u in enumerate(utts) if k % 4 == 0 and u.split == "train"}  # 4 train items sing
    write_manifest(path, [u.replace(kind="singing") if u.id in sung else u for u in utts])
    dm = TTSDataModule(path, fields=FIELDS, max_frames=400, seed=3, symbols=SYMBOLS, singing_upsample=factor)
    batches = list(dm.train_dataloader())
    seen = [(i, k) for b in batches for i, k in zip(b["ids"], b["kinds"])]
    assert {k for i, k in seen if i in sung} <= {"singing"} and {k for i, k in seen if i not in sung} == {"speech"}
    speech = [u.id for u in dm.datasets["train"].utts if u.id not in sung]
    assert sorted(i for i, _ in seen if i not in sung) == sorted(speech)  # speech once each
    n_sung = sum(1 for i, _ in seen if i in sung)
    assert n_sung == int(expected * len(sung))
    if factor >= 1:
        assert {i for i, _ in seen if i in sung} == sung
    assert len(dm.train_dataloader()) == len(batches)
    with pytest.raises(ValueError, match="singing_upsample must be >= 0"):
        TTSDataModule(path, singing_upsample=-1)


def test_datamodule_with_workers_matches(manifest):
    kw = dict(fields=("durations", "f0"), max_frames=600, seed=5, symbols=SYMBOLS)
    serial = [b["prompt_start"].tolist() for b in TTSDataModule(manifest, num_workers=0, **kw).train_dataloader()]
    workers = [b["prompt_start"].tolist() for b in TTSDataModule(manifest, num_workers=2, **kw).train_dataloader()]
    assert serial == workers


def test_lightning_resume_mid_epoch(manifest, tmp_path):
    import lightning as L

    seen: list[tuple[int, list[str]]] = []

    class Stop(Exception):
        pass

    class Tiny(L.LightningModule):
        def __init__(self, stop_at: int | None):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.stop_at = stop_at

        def training_step(self, batch, batch_idx):
            seen.append((self.current_epoch, list(batch["ids"])))
            return (self.w * batch["durations"].float().mean()).sum()

        def on_train_batch_end(self, outputs, batch, batch_idx):
            if self.stop_at is not None and self.global_step == self.stop_at:
                self.trainer.save_checkpoint(tmp_path / "mid.ckpt")
                raise Stop()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    def trainer():
        return L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0)

    def dm():
        return TTSDataModule(manifest, fields=("durations",), max_frames=400, seed=1, symbols=SYMBOLS)

    trainer().fit(Tiny(None), datamodule=dm())
    reference = list(seen)
    per_epoch = sum(1 for e, _ in reference if e == 0)
    seen.clear()
    with pytest.raises(Stop):
        trainer().fit(Tiny(per_epoch + 3), datamodule=dm())  # global_step counts done batches: 3 into epoch 1
    assert seen == reference[: per_epoch + 3]
    seen.clear()
    trainer().fit(Tiny(None), datamodule=dm(), ckpt_path=tmp_path / "mid.ckpt")
    assert seen == reference[per_epoch + 3:]


@pytest.mark.parametrize("tail", [[0], [0, 0], []])
def test_crop_never_empty_with_zero_length_phonemes(tmp_path, tail):
    """Zero-frame phonemes (word boundaries, final punctuation) at any place never give an empty crop."""
    durations = [0, 5, 0, 3, 90, 0, 0, 4, 50, *tail]
    frames = sum(durations)
    u = Utterance(id="z", audio="a.wav", sample_rate=SR, duration=frames * HOP / SR, speaker="s", text="abc",
                  phonemes=["a"] * len(durations), word_index=[0] * len(durations), durations=durations,
                  frame_rate=SR / HOP, num_frames=frames)
    ds = TTSDataset(tmp_path / "m.jsonl", ("durations",), max_frames_per_item=40, utterances=[u])
    for seed in range(300):
        a, b, i, j = ds.crop_window(u, np.random.default_rng(seed))
        assert 0 < b - a <= 40 and 0 <= a < b <= frames
        d = durations[i:j]
        assert sum(d) == b - a or (j == i + 1 and d[0] > 40)


def test_audio_only_crops_have_the_full_budget(tmp_path):
    """Without text fields (codec training) a crop is any window of exactly max_frames_per_item frames,
    not one cut at phoneme boundaries (which can leave a single frame before a long phoneme)."""
    durations = [1, 100, 1, 100]
    frames = sum(durations)
    u = Utterance(id="z", audio="a.wav", sample_rate=SR, duration=frames * HOP / SR, speaker="s", text="abc",
                  phonemes=["a"] * 4, word_index=[0] * 4, durations=durations, frame_rate=SR / HOP, num_frames=frames)
    audio_only = TTSDataset(tmp_path / "m.jsonl", ("audio",), max_frames_per_item=64, utterances=[u])
    text = TTSDataset(tmp_path / "m.jsonl", ("durations",), max_frames_per_item=64, utterances=[u])
    sizes = {text.crop_window(u, np.random.default_rng(k))[1] - text.crop_window(u, np.random.default_rng(k))[0]
             for k in range(200)}
    assert min(sizes) < 64  # phoneme-aligned crops can be short
    for k in range(200):
        a, b, _, _ = audio_only.crop_window(u, np.random.default_rng(k))
        assert b - a == 64 and 0 <= a and b <= frames
