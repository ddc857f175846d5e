"""CodecLit: fast_dev_run through the CLI's composition, overfitting, resuming, example logging."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from codec_train_helpers import tiny_codec, tiny_discriminator
from ns2.data.datamodule import TTSDataModule
from ns2.lit import CodecLit, codec_from_checkpoint


def manifest(root: Path) -> Path:
    return root / "data" / "synthetic-mini" / "prepared" / "manifest.jsonl"


class Record(L.Callback):
    """train/* metrics after every batch."""

    def __init__(self):
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")})


def trainer(**kwargs) -> L.Trainer:
    base = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0)
    return L.Trainer(**{**base, **kwargs})


def test_fast_dev_run_of_the_tiny_experiment(compose, prepared_corpus):
    from ns2.cli.train import build, run_train

    cfg = compose("train", ["experiment=codec/tiny", "debug=fdr", f"data.root={prepared_corpus}/data/synthetic-mini"])
    assert cfg.model.codec.n_codebooks == 4 and cfg.data.datamodule.fields == ["audio"]
    _, module, _ = build(cfg)
    assert isinstance(module, CodecLit) and module.loss_weights["mel"] == 15.0
    metrics = run_train(cfg)
    for key in ("mel", "adv_gen", "feat", "commitment", "codebook", "loss_g", "loss_d", "grad_norm_g", "grad_norm_d"):
        assert torch.isfinite(torch.tensor(metrics[f"train/{key}"])), key
    assert "val/mel" in metrics and "val/si_sdr" in metrics


def test_paper_experiment_composes(compose):
    cfg = compose("train", ["experiment=codec/ns2_paper"])
    assert cfg.model.lr == 2e-4 and cfg.model.weight_decay == 0.0
    assert cfg.model.codec.n_codebooks == 16 and cfg.model.codec.codebook_size == 1024
    assert cfg.trainer.strategy == "ddp_find_unused_parameters_true" and cfg.trainer.max_steps == 880000


def test_generator_mel_loss_falls_when_overfitting(prepared_corpus):
    L.seed_everything(0)
    dm = TTSDataModule(manifest(prepared_corpus), fields=["audio"], max_frames=4 * 64, max_frames_per_item=64)
    module = CodecLit(tiny_codec(), tiny_discriminator(), lr=2e-3, segment_frames=16, num_audio_examples=0)
    rec = Record()
    steps = 25
    trainer(max_steps=2 * steps, overfit_batches=1, limit_val_batches=0, callbacks=[rec]).fit(module, dm)
    mel = [r["train/mel"] for r in rec.rows]
    assert len(mel) == steps and module.generator_step == steps
    first, last = sum(mel[:5]) / 5, sum(mel[-5:]) / 5
    print(f"mel loss: first 5 steps {first:.3f}, last 5 steps {last:.3f}")
    assert last < 0.75 * first, mel
    assert all(r["train/lr"] < 2e-3 for r in rec.rows)  # the exponential decay runs


def test_resume_restores_optimisers_and_schedulers(prepared_corpus, tmp_path):
    def fit(max_steps, ckpt_path=None):
        L.seed_everything(0)
        dm = TTSDataModule(manifest(prepared_corpus), fields=["audio"], max_frames=2 * 32, max_frames_per_item=32)
        module = CodecLit(tiny_codec(), tiny_discriminator(), segment_frames=8, num_audio_examples=0,
                          mel_n_mels=[20, 40], mel_window_lengths=[128, 512])
        ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=2)
        seen = {}

        class Peek(L.Callback):
            def on_train_start(self, tr, pl_module):
                seen["global_step"] = tr.global_step
                seen["opt_steps"] = [int(next(iter(o.state.values()))["step"]) if o.state else 0 for o in tr.optimizers]
                seen["sched"] = [c.scheduler.last_epoch for c in tr.lr_scheduler_configs]

        trainer(max_steps=max_steps, limit_val_batches=0, enable_checkpointing=True, callbacks=[ckpt, Peek()]).fit(
            module, dm, ckpt_path=ckpt_path)
        return module, seen

    fit(4)
    state = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    assert len(state["optimizer_states"]) == 2 and len(state["lr_schedulers"]) == 2
    module, seen = fit(6, tmp_path / "last.ckpt")
    assert seen == {"global_step": 4, "opt_steps": [2, 2], "sched": [2, 2]}
    assert module.generator_step == 3
    codec = codec_from_checkpoint(tmp_path / "last.ckpt")  # the trained codec alone, rebuilt
    for (k, a), b in zip(module.codec.state_dict().items(), codec.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_validation_logs_audio_and_plots_to_tensorboard(prepared_corpus, tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dm = TTSDataModule(manifest(prepared_corpus), fields=["audio"], max_frames=2 * 32, max_frames_per_item=32)
    module = CodecLit(tiny_codec(), tiny_discriminator(), num_audio_examples=1, mel_n_mels=[20], mel_window_lengths=[256])
    tb = TensorBoardLogger(tmp_path, name="tb")
    trainer(logger=tb, limit_val_batches=1).validate(module, dm)
    tb.experiment.flush()
    acc = EventAccumulator(tb.log_dir, size_guidance={"audio": 0, "images": 0}).Reload()
    assert {"val/example_0/reconstruction", "val/example_0/reference"} <= set(acc.Tags()["audio"])
    assert "val/example_0/mel" in acc.Tags()["images"]


def test_codec_is_required_and_exportable(tmp_path):
    with pytest.raises(ValueError, match="no codec given"):
        CodecLit(None)
    from ns2.codec import load_codec

    module = CodecLit(tiny_codec(), None)
    assert module.generator_step == 0 and len(module.configure_optimizers()[0]) == 1
    path = module.save_codec(tmp_path / "codec.pth")
    back = load_codec(path)
    for (k, a), b in zip(module.codec.state_dict().items(), back.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def harmonic_codec(seed: int = 0):
    from ns2.codec import RVQCodec

    torch.manual_seed(seed)
    return RVQCodec(encoder_dim=8, encoder_rates=[2, 4, 5, 5], latent_dim=32, n_codebooks=4, codebook_size=128,
                    codebook_dim=8, quantizer_dropout=0.5, sample_rate=16000, decoder="harmonic",
                    decoder_options={"channels": 32, "layers": 2, "n_harmonics": 32, "n_noise_bands": 16})


def test_fast_dev_run_of_the_tiny_harmonic_experiment(compose, prepared_corpus):
    from ns2.cli.train import run_train

    cfg = compose("train", ["experiment=codec/tiny_harmonic", "debug=fdr",
                            f"data.root={prepared_corpus}/data/synthetic-mini"])
    assert cfg.model.codec.decoder == "harmonic" and cfg.data.datamodule.fields == ["audio", "f0"]
    metrics = run_train(cfg)
    for key in ("f0", "voicing", "mel", "loss_g"):
        assert torch.isfinite(torch.tensor(metrics[f"train/{key}"])), key
    assert "val/f0" in metrics and "val/voicing" in metrics


def test_harmonic_decoder_learns_f0_and_needs_f0_targets(prepared_corpus):
    L.seed_everything(0)
    dm = TTSDataModule(manifest(prepared_corpus), fields=["audio", "f0"], max_frames=4 * 64, max_frames_per_item=64)
    module = CodecLit(harmonic_codec(), None, lr=3e-3, segment_frames=32, num_audio_examples=0,
                      mel_n_mels=[20, 40], mel_window_lengths=[128, 512])
    rec = Record()
    trainer(max_steps=30, overfit_batches=1, limit_val_batches=0, callbacks=[rec]).fit(module, dm)
    f0 = [r["train/f0"] for r in rec.rows]
    first, last = sum(f0[:3]) / 3, sum(f0[-3:]) / 3
    print(f"f0 loss (natural-log L1): first 3 steps {first:.3f}, last 3 steps {last:.3f}")
    assert last < 0.5 * first, f0
    # without F0 in the batch the decoder's supervised terms cannot be computed: a clear error
    no_f0 = TTSDataModule(manifest(prepared_corpus), fields=["audio"], max_frames=4 * 64, max_frames_per_item=64)
    with pytest.raises(KeyError, match="add 'f0' to data.datamodule.fields"):
        trainer(max_steps=1, limit_val_batches=0).fit(module, no_f0)


def test_frame_aligned_crops_keep_audio_and_frame_targets_together():
    from ns2.lit.codec import crop_segments

    audio = torch.arange(2 * 2000, dtype=torch.float32).reshape(2, 2000)
    x, starts = crop_segments(audio, torch.tensor([2000, 1500]), 200, 3, random=True, aligned=True,
                              return_starts=True, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 600) and bool((starts % 200 == 0).all())
    assert bool((starts[1] + 600 <= 1500))
    assert torch.equal(x[:, 0, 0], audio[torch.arange(2), starts])
