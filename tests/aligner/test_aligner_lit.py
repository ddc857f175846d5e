import csv
from types import SimpleNamespace

import pytest
import torch

from ns2.data.aligner.infer import load_aligner, save_aligner
from ns2.data.aligner.lit import AlignerLit, log_figure
from ns2.data.aligner.model import AlignerModel

VOCAB = 12


@pytest.fixture()
def table():
    from ns2.text.symbols import SymbolTable

    return SymbolTable(["<pad>", "<bos>", "<eos>", "<sil>", "|", "a", "b", "c", "d", "e", "f", "g", "."], "tones-test")


def tiny_model() -> AlignerModel:
    torch.manual_seed(0)
    return AlignerModel(VOCAB + 1, hidden_dim=32, attn_dim=16, text_layers=1, mel_layers=1, dropout=0.0)


class _ImageLogger:
    def __init__(self):
        self.calls = []

    def log_image(self, key, images, step=None):
        self.calls.append((key, images[0].shape, step))


class _Writer:
    def __init__(self):
        self.figures = []

    def add_figure(self, tag, figure, global_step=None, close=True):
        self.figures.append((tag, global_step))


def test_log_figure_sends_to_loggers_that_take_images():
    from ns2.data.aligner.plot import plot_alignment

    fig = plot_alignment(torch.softmax(torch.randn(20, 5), -1))
    wandb_like, tb_like = _ImageLogger(), SimpleNamespace(experiment=_Writer())
    csv_like = SimpleNamespace(experiment=SimpleNamespace())
    assert log_figure([wandb_like, tb_like, csv_like, object()], "val/alignment", fig, 7) == 2
    assert wandb_like.calls[0][0] == "val/alignment" and wandb_like.calls[0][1][2] == 3 and wandb_like.calls[0][2] == 7
    assert tb_like.experiment.figures == [("val/alignment", 7)]


def test_binarization_weight_schedule():
    lit = AlignerLit(tiny_model(), binarization_start_step=10, binarization_weight=2.0, binarization_warmup_steps=4, symbols=None)
    assert [lit.bin_weight(s) for s in (0, 9, 10, 11, 13, 100)] == [0.0, 0.0, 0.5, 1.0, 2.0, 2.0]


def test_vocab_smaller_than_the_symbol_table_is_an_error():
    with pytest.raises(ValueError, match="vocab_size"):
        AlignerLit(tiny_model(), symbols="default")


def test_fit_logs_plots_and_checkpoints(tmp_path, tone_batch, table):
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    g = torch.Generator().manual_seed(0)
    train = [tone_batch(2, VOCAB, g) for _ in range(4)]
    val = [tone_batch(2, VOCAB, g) for _ in range(2)]
    for b in train + val:
        b.pop("true_durations")
    lit = AlignerLit(tiny_model(), lr=1e-3, warmup=2, binarization_start_step=2, symbols=table,
                     plot_every_n_val_batches=1, plot_dir=tmp_path / "plots")
    assert lit.skip_ids == (0, 1, 2, 4, 12)  # <pad> <bos> <eos> | .
    loggers = [CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")]
    trainer = L.Trainer(max_steps=4, limit_val_batches=2, val_check_interval=4, logger=loggers, accelerator="cpu",
                        devices=1, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, log_every_n_steps=1)
    loader = lambda xs: torch.utils.data.DataLoader(xs, batch_size=None)  # noqa: E731
    trainer.fit(lit, loader(train), loader(val))
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2
    assert list((tmp_path / "tb").rglob("events.out.tfevents*"))
    rows = list(csv.DictReader(open(next((tmp_path / "csv").rglob("metrics.csv")))))
    keys = {k for r in rows for k, v in r.items() if v}
    assert {"train/forward_sum", "train/binarization", "val/forward_sum", "val/path_confidence"} <= keys

    ckpt = tmp_path / "aligner.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = load_aligner(ckpt)
    assert loaded.symbols == table and loaded.skip_ids == (0, 1, 2, 4, 12)
    ids, audio = val[0]["phonemes"][0], val[0]["audio"][0, : int(val[0]["audio_lengths"][0])]
    expected = lit.aligner().durations(ids, audio)
    assert loaded.durations(ids, audio) == expected
    assert lit.model.training  # inference does not leave the model in eval mode

    save_aligner(tmp_path / "plain.pt", loaded)
    again = load_aligner(tmp_path / "plain.pt")
    assert again.durations(ids, audio) == expected
    assert sum(expected) == int(val[0]["frame_lengths"][0])
    assert all((d == 0) == (i in (1, 2, 4)) for d, i in zip(expected, ids.tolist()))


def test_batches_from_the_dataset_collate(tmp_path, table):
    import numpy as np
    import soundfile as sf

    from ns2.data.dataset import TTSDataset
    from ns2.data.manifest import Utterance, write_manifest

    rng = np.random.default_rng(0)
    utts = []
    for k, (phonemes, samples) in enumerate([(["<sil>", "a", "|", "b", "c", ".", "<sil>"], 7000),
                                             (["a", "d", "|", "e"], 4321)]):
        path = tmp_path / "audio" / f"u{k}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(samples)).astype(np.float32), 16000, subtype="FLOAT")
        utts.append(Utterance(id=f"u{k}", audio=f"audio/u{k}.wav", sample_rate=16000, duration=samples / 16000,
                              speaker="s", text="x", phonemes=phonemes, frame_rate=80.0, num_frames=-(-samples // 200)))
    write_manifest(tmp_path / "manifest.jsonl", utts)
    ds = TTSDataset(tmp_path / "manifest.jsonl", fields=("phonemes", "audio"), symbols=table, prompt=False)
    batch = ds.collate([ds[0], ds[1]])
    lit = AlignerLit(tiny_model(), symbols=table, binarization_start_step=0)
    x = lit.prepare(batch)
    assert x["mel"].shape == (2, 80, batch["frame_mask"].shape[1])
    out = lit(x)
    assert out.durations.sum(-1).tolist() == batch["frame_lengths"].tolist()
    losses = lit.losses(x, out, lit.bin_weight(0))
    assert torch.isfinite(losses["loss"]) and "binarization" in losses
