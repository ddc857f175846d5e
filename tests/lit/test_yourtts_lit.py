"""YourTTSLit: its experiment configs through the CLI's composition, a batch overfit through the GAN loop, the
checkpoint contract, YourTTSSynthesizer (seeded, speed), ``ns2 synth`` picking it, and one-line errors."""
from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from ns2.data.datamodule import TTSDataModule
from ns2.inference.checkpoint import NS2CheckpointError
from ns2.inference.synthesizer import SynthesisError
from ns2.inference.yourtts import YourTTSSynthesizer, load_yourtts_checkpoint
from ns2.lit import YourTTSLit
from ns2.text import DEFAULT_SYMBOLS

FIELDS = ["phonemes", "durations", "audio"]
TINY = dict(vocab_size=len(DEFAULT_SYMBOLS) + 8, hidden=32, ffn=64, heads=2, layers=1, dropout=0.0, posterior_layers=2,
            flow_couplings=2, flow_layers=1, dp_channels=32, upsample_rates=[5, 5, 8], upsample_kernel_sizes=[15, 15, 16],
            upsample_initial_channel=32, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]])
DISC = {"_target_": "ns2.models.yourtts.discriminator.VITSDiscriminator", "periods": [2, 3],
        "period_channels": [4, 8, 16, 16, 16], "scale_channels": [4, 8, 16, 16, 16, 16], "scale_groups": [1, 4, 4, 4, 4, 1]}
SPK = {"_target_": "ns2.models.yourtts.speaker_encoder.ResemblyzerSpeakerEncoder", "mode": "utterance"}


def make_lit(**kwargs) -> YourTTSLit:
    torch.manual_seed(0)
    base = dict(num_val_synth=1, segment_frames=8, lr=2e-3, n_fft=256, win_length=256, n_mels=40)
    return YourTTSLit(dict(TINY), DISC, SPK, **{**base, **kwargs})


def datamodule(corpus, **kwargs) -> TTSDataModule:
    return TTSDataModule(corpus.manifest, **{**dict(fields=FIELDS, max_frames=2400), **kwargs})


def first_batch(corpus) -> dict:
    dm = datamodule(corpus)
    dm.setup()
    return next(iter(dm.train_dataloader()))


def test_fast_dev_run_of_the_yourtts_experiments(compose, corpus):
    from ns2.cli.train import build, run_train

    for name in ("yourtts/tiny", "yourtts/small", "yourtts/paper"):
        overrides = [f"experiment={name}", "debug=fdr", f"data.root={corpus.root}", "model/scale=yourtts_tiny",
                     "trainer.accelerator=cpu", "trainer.devices=1", "++trainer.strategy=auto", "trainer.precision=32-true",
                     "++trainer.num_nodes=1", "data.datamodule.num_workers=0", "data=synthetic"]
        cfg = compose("train", overrides)
        _, module, _ = build(cfg)
        assert isinstance(module, YourTTSLit) and module.net.hop_length == 200
        assert module.speaker_consistency is (name == "yourtts/paper")
        metrics = run_train(cfg)
        keys = {"train/mel", "train/kl", "train/duration", "train/adv_gen", "train/feat", "train/loss_d"}
        assert keys <= set(metrics) and all(np.isfinite(metrics[k]) for k in keys), (name, metrics)
        assert ("train/speaker" in metrics) is (name == "yourtts/paper")


def test_bad_settings_are_refused_in_one_line(corpus):
    with pytest.raises(ValueError, match="does not cover the symbol table"):
        YourTTSLit({**TINY, "vocab_size": 10}, DISC, SPK)
    with pytest.raises(ValueError, match="speaker_dim=512 differs from the required 256"):
        YourTTSLit({**TINY, "speaker_dim": 512}, DISC, SPK)
    with pytest.raises(ValueError, match="unknown loss_weights"):
        YourTTSLit(dict(TINY), DISC, SPK, loss_weights={"ce_rvq": 1.0})
    with pytest.raises(ValueError, match="hop of 200, not 256"):
        YourTTSLit({**TINY, "hop_length": 256}, DISC, SPK)
    lit = make_lit()
    batch = first_batch(corpus)
    batch["audio"] = batch["audio"][:, :-200]
    with pytest.raises(ValueError, match="data.hop_length must equal the product of upsample_rates"):
        lit.inputs(batch)


def test_speaker_embedding_from_the_prompt_span_reads_only_that_span(corpus):
    lit = make_lit(speaker_from="prompt")
    dm = datamodule(corpus, prompt={"min_frac": 0.5, "max_frac": 0.5, "min_frames": 30})
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    emb = lit.speaker_embedding(batch)
    i, hop = 0, 200
    a, b = int(batch["prompt_start"][i]) * hop, int(batch["prompt_end"][i]) * hop
    alone = lit.speaker_encoder(batch["audio"][i : i + 1, a:b])
    torch.testing.assert_close(emb[i : i + 1], alone, atol=1e-5, rtol=1e-4)
    spoiled = {**batch, "audio": batch["audio"].clone()}
    spoiled["audio"][i, b:] = torch.randn_like(spoiled["audio"][i, b:])  # audio outside the span changes nothing
    torch.testing.assert_close(lit.speaker_embedding(spoiled)[i], emb[i])


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("yourtts_trained")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    lit = make_lit()
    dm = datamodule(corpus)
    before = lit.generator_losses  # the same losses before and after, on the same fixed segments
    batch = first_batch(corpus)

    def mel_on(lit_) -> float:
        lit_.eval()
        with torch.no_grad():
            g = torch.Generator().manual_seed(0)
            o = lit_.net(**lit_.inputs(batch), segment_frames=lit_.segment_frames, generator=g, noise_scale=0.0)
            return float(before(batch, o, lit_.real_segments(batch, o["wav_slice_start"]), adversarial=False)["mel"])

    start = mel_on(lit)
    steps = 120  # optimiser steps: 60 batches
    tr = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, max_steps=steps, max_epochs=-1, num_sanity_val_steps=0,
                   overfit_batches=1, limit_val_batches=1, check_val_every_n_epoch=50, default_root_dir=out)
    tr.fit(lit, dm)
    end = mel_on(lit)
    path = out / "last.ckpt"
    tr.save_checkpoint(path)
    torch.set_num_threads(threads)
    return lit, batch, tr, path, (start, end)


def test_an_overfit_batch_lowers_the_mel_loss(trained):
    lit, _, tr, _, (start, end) = trained
    print(f"mel L1 on the fixed segments: {start:.3f} -> {end:.3f}")
    assert end < 0.8 * start
    assert np.isfinite(float(tr.callback_metrics["val/loss"]))
    assert 0 < float(tr.callback_metrics["val/length_ratio"]) < 10


def test_checkpoint_round_trips_and_synthesizes_seeded(trained, corpus):
    lit, *_, path, _ = trained
    ckpt = load_yourtts_checkpoint(path)
    for k, v in lit.net.state_dict().items():
        torch.testing.assert_close(ckpt.net.state_dict()[k], v)
    assert not any(k.startswith("disc") for k in ckpt.net.state_dict())
    assert ckpt.symbols == lit.symbols and ckpt.sample_rate == 16000 and ckpt.languages == ["en-us"]
    synth = YourTTSSynthesizer.from_checkpoint(path)
    wav, _ = sf.read(str(next(corpus.root.rglob("*.wav"))), dtype="float32")
    prompt = np.tile(wav, 3)
    a, sr = synth.synthesize("hello there", prompt, 16000, seed=3)
    assert sr == 16000 and a.ndim == 1 and np.isfinite(a).all() and len(a) == synth.last_info["frames"] * 200
    b, _ = synth.synthesize("hello there", prompt, 16000, seed=3)
    c, _ = synth.synthesize("hello there", prompt, 16000, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    al = synth.last_alignment  # the timing of the last output (c), for the harness's prosody measures
    assert al["frame_rate"] == 80.0 and sum(al["durations"]) * 200 == len(c)
    assert al["phonemes"] == synth.symbols.decode(synth.frontend.ids("hello there"))
    slow = YourTTSSynthesizer.from_checkpoint(path, length_scale=2.0, noise_scale_dp=0.0)
    fast = YourTTSSynthesizer.from_checkpoint(path, length_scale=1.0, noise_scale_dp=0.0)
    n_slow = len(slow.synthesize("hello there", prompt, 16000)[0])
    n_fast = len(fast.synthesize("hello there", prompt, 16000)[0])
    assert n_slow == pytest.approx(2 * n_fast, rel=0.25)
    with pytest.raises(SynthesisError, match="takes no score"):
        synth.synthesize("hello", prompt, 16000, score={"notes": []})
    with pytest.raises(SynthesisError, match="prompt"):
        synth.synthesize("hello", prompt[:100], 16000)


def test_ns2_synth_picks_yourtts_from_the_checkpoint(trained, corpus, tmp_path):
    from ns2.cli.synth import run_synth

    *_, path, _ = trained
    full, sr = sf.read(str(next(corpus.root.rglob("*.wav"))), dtype="float32")
    sf.write(tmp_path / "p.wav", np.tile(full, 3), sr)
    summary = run_synth({"ckpt": str(path), "system": "auto", "text": "hello", "prompt": str(tmp_path / "p.wav"),
                         "out": str(tmp_path / "o.wav"), "noise_scale": 0.3, "seed": 0, "device": "cpu"})
    out, out_sr = sf.read(str(tmp_path / "o.wav"))
    assert out_sr == 16000 and len(out) > 0, summary


def test_checkpoint_errors_are_one_line(trained, tmp_path):
    *_, path, _ = trained
    raw = torch.load(path, map_location="cpu", weights_only=True)
    valle_like = {**{k: v for k, v in raw.items() if k != "yourtts"}, "valle": {"kind": "valle"}}
    torch.save(valle_like, tmp_path / "valle.ckpt")
    with pytest.raises(NS2CheckpointError, match="a VALL-E checkpoint, not a YourTTS checkpoint") as e:
        load_yourtts_checkpoint(tmp_path / "valle.ckpt")
    assert "\n" not in str(e.value)
    bad = {**raw, "yourtts": {**raw["yourtts"], "speaker_encoder": {"target": "os.system", "kwargs": {}}}}
    torch.save(bad, tmp_path / "bad.ckpt")
    with pytest.raises(NS2CheckpointError, match="expected a class of the ns2 package"):
        load_yourtts_checkpoint(tmp_path / "bad.ckpt")


def test_cached_speaker_embeddings_equal_fresh_ones(corpus):
    lit = make_lit()
    batch = first_batch(corpus)
    first = lit.speaker_embedding(batch)
    assert len(lit._spk_cache) == len(batch["ids"])
    fresh = lit.speaker_encoder(batch["audio"], batch["frame_lengths"] * 200)
    torch.testing.assert_close(first, fresh)
    torch.testing.assert_close(lit.speaker_embedding(batch), first)  # from the cache
    moved = {**batch, "frame_offset": batch["frame_offset"] + 1, "audio": batch["audio"].flip(-1)}
    assert not torch.allclose(lit.speaker_embedding(moved), first)  # another crop is embedded anew
