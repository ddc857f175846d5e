"""VALLELit: its experiment configs through the CLI's composition, losses that ignore padding, EOS learned on
an overfit batch, the checkpoint contract, and VALLESynthesizer's modes, guard and errors."""
from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from ns2.codec import load_codec
from ns2.data.datamodule import TTSDataModule
from ns2.inference.checkpoint import NS2CheckpointError
from ns2.inference.synthesizer import SynthesisError
from ns2.inference.valle import VALLEItem, VALLESynthesizer, load_valle_checkpoint
from ns2.lit import VALLELit
from ns2.text import DEFAULT_SYMBOLS

FIELDS = ["phonemes", "durations", "codes"]
TINY = dict(vocab_size=len(DEFAULT_SYMBOLS) + 8, dim=32, heads=2, layers=2, ffn=64, dropout=0.0)
PROMPT = {"min_frac": 0.2, "max_frac": 0.4, "min_frames": 4, "at_start": True}


def make_lit(corpus, **kwargs) -> VALLELit:
    torch.manual_seed(0)
    base = dict(warmup_steps=0, num_val_synth=0, schedule="inverse_sqrt")
    return VALLELit(dict(TINY), load_codec(corpus.codec_file), **{**base, **kwargs})


def datamodule(corpus, **kwargs) -> TTSDataModule:
    return TTSDataModule(corpus.manifest, **{**dict(fields=FIELDS, max_frames=2400, prompt=PROMPT), **kwargs})


def first_batch(corpus) -> dict:
    dm = datamodule(corpus)
    dm.setup()
    return next(iter(dm.train_dataloader()))


def test_fast_dev_run_of_the_valle_experiments(compose, corpus):
    from ns2.cli.train import build, run_train

    for name in ("valle/tiny", "valle/small", "valle/paper"):
        overrides = [f"experiment={name}", "debug=fdr", f"codec.source={corpus.codec_file}", f"data.root={corpus.root}",
                     "model/scale=valle_tiny", "trainer.accelerator=cpu", "trainer.devices=1", "++trainer.strategy=auto",
                     "trainer.precision=32-true", "++trainer.num_nodes=1", "data.datamodule.num_workers=0", "data=synthetic"]
        cfg = compose("train", overrides)
        _, module, _ = build(cfg)
        assert isinstance(module, VALLELit) and (module.net.n_q, module.net.codebook_size) == (4, 128)  # the codec's
        metrics = run_train(cfg)
        assert np.isfinite(metrics["train/total"]) and {"train/ar", "train/nar"} <= set(metrics), (name, metrics)


def test_ns2_sizes_are_refused_with_the_valle_scale_names(corpus):
    with pytest.raises(ValueError, match="valle_tiny"):
        VALLELit({**TINY, "hidden": 32}, load_codec(corpus.codec_file))
    with pytest.raises(ValueError, match="n_q=8 differs from the codec's 4"):
        VALLELit({**TINY, "n_q": 8}, load_codec(corpus.codec_file))


def pad_batch(batch: dict, frames: int, phones: int) -> dict:
    out = dict(batch)
    for key in ("frame_mask", "codes"):
        x = batch[key]
        fill = False if x.dtype == torch.bool else 7
        out[key] = torch.cat([x, x.new_full((*x.shape[:-1], frames), fill)], -1)
    for key in ("phonemes", "phoneme_mask"):
        x = batch[key]
        out[key] = torch.cat([x, x.new_zeros((*x.shape[:-1], phones))], -1)
    return out


def test_losses_ignore_padding_and_the_prompt(corpus):
    lit = make_lit(corpus).eval()
    batch = first_batch(corpus)
    assert bool((batch["prompt_start"] == 0).all()) and bool((batch["prompt_end"] > 0).all())
    base = lit.compute_losses(batch, stage=2)
    padded = lit.compute_losses(pad_batch(batch, frames=11, phones=3), stage=2)
    assert set(base) == {"ar", "ar_acc", "nar", "nar_acc", "total"}
    for k in base:
        torch.testing.assert_close(padded[k], base[k], rtol=1e-4, atol=1e-5, msg=k)
    # the NAR loss does not look at the prompt's codebook-2 codes (they are given, not predicted) ...
    changed = dict(batch)
    changed["codes"] = batch["codes"].clone()
    changed["codes"][:, 2, 0] = (changed["codes"][:, 2, 0] + 1) % 128
    nar_only = make_lit(corpus, ar_weight=0.0).eval()
    a, b = nar_only.compute_losses(batch, stage=2), nar_only.compute_losses(changed, stage=2)
    assert not torch.equal(a["nar"], b["nar"])  # ... but reads them as input
    target = dict(batch)
    target["codes"] = batch["codes"].clone()
    end = int(batch["prompt_end"][0])
    target["codes"][0, 2, end] = (target["codes"][0, 2, end] + 1) % 128
    assert not torch.equal(nar_only.compute_losses(target, stage=2)["nar"], a["nar"])
    bad = dict(batch)
    bad["prompt_start"] = batch["prompt_start"] + 1
    with pytest.raises(ValueError, match="at_start=true"):
        lit.compute_losses(bad)


def overfit(corpus, steps: int, out_dir) -> tuple[VALLELit, dict, L.Trainer]:
    L.seed_everything(0)
    lit = make_lit(corpus, lr=3e-3, warmup_steps=10, num_val_synth=2)
    dm = datamodule(corpus)
    tr = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, max_steps=steps, max_epochs=-1, num_sanity_val_steps=0,
                   overfit_batches=1, limit_val_batches=1, check_val_every_n_epoch=steps, default_root_dir=out_dir)
    tr.fit(lit, dm)
    return lit, first_batch(corpus), tr


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("valle_trained")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    lit, batch, tr = overfit(corpus, 250, out)
    path = out / "last.ckpt"
    tr.save_checkpoint(path)
    torch.set_num_threads(threads)
    return lit, batch, tr, path


def continuation_items(batch: dict, n: int) -> tuple[list[VALLEItem], list[int]]:
    items, true = [], []
    for i in range(n):
        n_ph, n_fr, tp = int(batch["phoneme_mask"][i].sum()), int(batch["frame_mask"][i].sum()), int(batch["prompt_end"][i])
        items.append(VALLEItem(batch["phonemes"][i, :n_ph], batch["codes"][i, :, :tp], n_ph, seed=i))
        true.append(n_fr - tp)
    return items, true


def test_eos_is_learned_on_an_overfit_batch(trained):
    lit, batch, tr, _ = trained
    lit.eval()
    losses = lit.compute_losses(batch, stage=1)
    print("after 250 steps:", {k: round(float(v), 3) for k, v in losses.items()})
    assert losses["ar_acc"] > 0.9
    synth = lit.synthesizer(temperature=0.0)
    items, true = continuation_items(batch, int(batch["codes"].shape[0]))
    results = synth.generate(items)
    assert all(r.eos for r in results), [r.eos for r in results]
    ratios = [r.codes.shape[-1] / t for r, t in zip(results, true)]
    assert np.median(ratios) == pytest.approx(1.0, abs=0.1), ratios
    # validation logged the synthesis path's EOS rate
    assert tr.callback_metrics["val/eos_rate"] >= 0.5


def test_batched_generation_equals_one_item_at_a_time(trained):
    lit, batch, *_ = trained
    synth = lit.synthesizer(top_k=4, temperature=1.0)
    items, _ = continuation_items(batch, 3)
    together = synth.generate(items)
    for item, res in zip(items, together):
        alone = synth.generate([item])[0]
        assert alone.eos == res.eos and torch.equal(alone.codes, res.codes)


def test_checkpoint_round_trips_and_synthesizes(trained, corpus, tmp_path):
    lit, batch, _, path = trained
    ckpt = load_valle_checkpoint(path)
    for k, v in lit.net.state_dict().items():
        torch.testing.assert_close(ckpt.net.state_dict()[k], v)
    assert ckpt.symbols == lit.symbols and ckpt.codec.n_q == 4
    synth = VALLESynthesizer.from_checkpoint(path, mode="continuation", temperature=0.0)
    wav, _ = sf.read(str(next(corpus.root.rglob("*.wav"))), dtype="float32")
    out, sr = synth.synthesize("hello", np.tile(wav, 3), 16000, seed=0)
    assert sr == 16000 and out.ndim == 1 and np.isfinite(out).all()
    assert synth.last_info["eos"] is True and synth.last_info["frames"] * 200 == len(out)
    with pytest.raises(SynthesisError, match="prompt_text: missing"):
        VALLESynthesizer.from_checkpoint(path).synthesize("hello", np.tile(wav, 3), 16000)
    guarded = VALLESynthesizer.from_checkpoint(path, mode="continuation", max_seconds=0.02, temperature=0.0)
    with pytest.raises(SynthesisError, match="no EOS"):
        guarded.synthesize("hello there, a longer sentence", np.tile(wav, 3), 16000)
    assert guarded.last_info["eos"] is False and guarded.last_info["frames"] <= 2


def test_checkpoint_errors_are_one_line(trained, tmp_path):
    *_, path = trained
    raw = torch.load(path, map_location="cpu", weights_only=True)
    ns2_like = {**{k: v for k, v in raw.items() if k != "valle"}, "ns2": {"kind": "ns2"}}
    torch.save(ns2_like, tmp_path / "ns2.ckpt")
    with pytest.raises(NS2CheckpointError, match="an NS2 checkpoint, not a VALL-E checkpoint") as e:
        load_valle_checkpoint(tmp_path / "ns2.ckpt")
    assert "\n" not in str(e.value)
    (tmp_path / "cut.ckpt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(NS2CheckpointError, match="not a readable torch file"):
        load_valle_checkpoint(tmp_path / "cut.ckpt")
    with pytest.raises(NS2CheckpointError, match="no such file"):
        load_valle_checkpoint(tmp_path / "missing.ckpt")


def test_ns2_synth_picks_the_system_from_the_checkpoint(trained, corpus, tmp_path):
    from ns2.cli.synth import run_synth

    *_, path = trained
    wav = next(corpus.root.rglob("*.wav"))
    full, sr = sf.read(str(wav), dtype="float32")
    sf.write(tmp_path / "p.wav", np.tile(full, 3), sr)
    summary = run_synth({"ckpt": str(path), "system": "auto", "text": "hello", "prompt": str(tmp_path / "p.wav"),
                         "prompt_text": "hello there", "out": str(tmp_path / "o.wav"), "temperature": 0.0,
                         "device": "cpu"})
    assert summary["ok"] == 1 and (tmp_path / "o.wav").is_file()
