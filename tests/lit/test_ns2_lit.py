"""NS2Lit: every experiment config through the CLI's composition, masking of padding and of the prompt span,
overfitting, EMA, and the checkpoint contract (load_ns2_checkpoint)."""
from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from ns2_lit_helpers import TINY_NET, tiny_codec
from ns2.codec import load_codec
from ns2.data.datamodule import TTSDataModule
from ns2.lit import NS2Checkpoint, NS2CheckpointError, NS2Lit, load_ns2_checkpoint
from ns2.data.codes import check_codes_codec
from ns2.lit.ns2 import prompt_latents
from ns2.lit.optim import InverseSqrtSchedule

FIELDS = ["phonemes", "durations", "f0", "codes"]
ABLATIONS = ["no_prompt_predictors", "no_ce_loss", "no_query_attention", "no_diffusion_prompt",
             "prompt_3s", "prompt_5s", "prompt_10s", "score_conditioning"]
DIFFUSION_TERMS = ("data", "score", "ce_rvq")


def make_lit(corpus, **kwargs) -> NS2Lit:
    torch.manual_seed(0)
    base = dict(warmup_steps=0, num_val_synth=0)
    return NS2Lit(dict(TINY_NET), load_codec(corpus.codec_file), **{**base, **kwargs})


def datamodule(corpus, **kwargs) -> TTSDataModule:
    base = dict(fields=FIELDS, max_frames=2400, prompt={"min_frac": 0.2, "max_frac": 0.5, "min_frames": 8})
    return TTSDataModule(corpus.manifest, **{**base, **kwargs})


def first_batch(corpus) -> dict:
    dm = datamodule(corpus)
    dm.setup()
    return next(iter(dm.train_dataloader()))


def fixed_inputs(lit: NS2Lit, batch: dict, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z0 = lit.latents(batch)
    t = 0.05 + 0.9 * torch.rand(z0.shape[0], generator=g)
    return z0, t, torch.randn(z0.shape, generator=g)


def trainer(**kwargs) -> L.Trainer:
    base = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0)
    return L.Trainer(**{**base, **kwargs})


# --- the configs, through `ns2 train` ---------------------------------------------------------------
def run_experiment(compose, corpus, name: str) -> tuple[NS2Lit, dict, TTSDataModule]:
    from ns2.cli.train import build, run_train

    cfg = compose("train", [f"experiment={name}", "debug=fdr", f"codec.source={corpus.codec_file}",
                            f"data.root={corpus.root}"])
    datamodule, module, _ = build(cfg)
    assert isinstance(module, NS2Lit)
    return module, run_train(cfg), datamodule


def test_fast_dev_run_of_the_tiny_experiment(compose, corpus):
    module, metrics, _ = run_experiment(compose, corpus, "ns2/tiny")
    assert module.net.latent_dim == module.codec.latent_dim == 32  # taken from the codec file (latent_dim: null)
    assert module.loss_fn.weights["ce_rvq"] == 0.1 and module.net_kwargs["hidden"] == 32
    assert module.codec.frozen and not any(p.requires_grad for p in module.codec.parameters())
    for key in ("total", "data", "score", "ce_rvq", "duration", "pitch", "grad_norm"):
        assert torch.isfinite(torch.tensor(metrics[f"train/{key}"])), key
    for key in ("total", "data", "score", "ce_rvq", "duration", "pitch", "synth_frames_ratio"):
        assert torch.isfinite(torch.tensor(metrics[f"val/{key}"])), key


@pytest.mark.parametrize("name", ABLATIONS)
def test_fast_dev_run_of_every_ablation(compose, corpus, name):
    module, metrics, dm = run_experiment(compose, corpus, f"ns2/ablation/{name}")
    net = module.net_kwargs
    switches = ("use_prompt_in_predictors", "use_query_attention", "use_diffusion_prompt")
    changed = {"no_prompt_predictors": "use_prompt_in_predictors", "no_query_attention": "use_query_attention",
               "no_diffusion_prompt": "use_diffusion_prompt"}.get(name)
    # each ablation is its one delta on the tiny experiment, and nothing else
    assert {k: net[k] for k in switches} == {k: k != changed for k in switches}
    assert (module.loss_fn.weights["ce_rvq"] == 0.0) == (name == "no_ce_loss")
    assert ("train/ce_rvq" in metrics) == (name != "no_ce_loss")
    frame_rate = module.codec.sample_rate // module.codec.hop_length
    prompt_seconds = {"prompt_3s": 3, "prompt_5s": 5, "prompt_10s": 10}.get(name)
    if prompt_seconds is None:
        assert (dm.prompt.min_frac, dm.prompt.max_frac, dm.max_frames_per_item) == (0.1, 0.5, 5 * frame_rate)
    else:  # a fixed prompt of that length, and room for 5 s of target beside it
        frames = prompt_seconds * frame_rate
        start, end = dm.prompt.draw(np.random.default_rng(0), 10 * frames)
        assert end - start == frames and dm.max_frames_per_item == frames + 5 * frame_rate
    assert torch.isfinite(torch.tensor(metrics["train/total"])) and torch.isfinite(torch.tensor(metrics["val/total"]))


def test_paper_and_small_experiments_compose(compose):
    paper = compose("train", ["experiment=ns2/paper", "codec.source=x.pth"])
    assert paper.model.net.hidden == 512 and paper.model.lr == 5e-4 and paper.model.warmup_steps == 32000
    assert paper.trainer.devices * paper.trainer.num_nodes == 16 and paper.data.datamodule.max_frames == 6000
    assert paper.model.autocast_bf16 and paper.model.sampler.steps == 150 and paper.trainer.max_steps == 300000
    small = compose("train", ["experiment=ns2/small", "codec.source=x.pth"])
    assert small.model.net.hidden == 256 and small.trainer.devices == 1
    p3 = compose("train", ["experiment=ns2/ablation/prompt_3s", "codec.source=x.pth"])
    assert p3.data.datamodule.prompt.min_frames == p3.data.datamodule.prompt.max_frames == 240


# --- masking -----------------------------------------------------------------------------------------
def pad_batch(batch: dict, frames: int, phones: int) -> dict:
    """The same batch with ``frames`` more padded frames and ``phones`` more padded phonemes."""
    out = dict(batch)
    for key in ("frame_mask", "prompt_mask", "voiced", "log_f0", "f0", "codes"):
        x = batch[key]
        fill = 7 if key == "codes" else (False if x.dtype == torch.bool else 3.0)
        out[key] = torch.cat([x, x.new_full((*x.shape[:-1], frames), fill)], -1)
    for key in ("phonemes", "phoneme_mask", "durations"):
        x = batch[key]
        out[key] = torch.cat([x, x.new_zeros((*x.shape[:-1], phones))], -1)
    return out


def test_losses_are_unchanged_by_padding(corpus):
    lit = make_lit(corpus).eval()
    batch = first_batch(corpus)
    _, t, noise = fixed_inputs(lit, batch)
    base = lit.compute_losses(batch, t=t, noise=noise)
    padded = pad_batch(batch, frames=13, phones=4)
    junk = torch.randn(*noise.shape[:-1], 13)
    loud = lit.compute_losses(padded, t=t, noise=torch.cat([noise, junk], -1))
    assert set(base) == set(loud) == {"data", "score", "ce_rvq", "duration", "pitch", "total"}
    for k in base:
        torch.testing.assert_close(loud[k], base[k], rtol=2e-4, atol=1e-5, msg=k)


def test_bf16_autocast_runs_the_network_only(corpus):
    lit = make_lit(corpus, autocast_bf16=True).eval()
    batch = first_batch(corpus)
    _, t, noise = fixed_inputs(lit, batch)
    low = lit.compute_losses(batch, t=t, noise=noise)
    lit.autocast_bf16 = False
    full = lit.compute_losses(batch, t=t, noise=noise)
    for k in full:
        assert low[k].dtype == torch.float32 and torch.isfinite(low[k]), k
        torch.testing.assert_close(low[k], full[k], rtol=0.1, atol=0.05, msg=k)


@pytest.mark.parametrize("backend", ["eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_compile_switch_keeps_losses_and_checkpoint_keys(corpus, backend):
    plain_lit = make_lit(corpus).eval()
    lit = make_lit(corpus, compile={"modules": ["diffusion", "prompt_encoder"], "backend": backend}).eval()
    assert lit.net.diffusion._compiled_call_impl is not None and lit.net.duration_predictor._compiled_call_impl is None
    assert list(lit.state_dict()) == list(plain_lit.state_dict())  # checkpoints load either way
    assert lit.config()["compile"] == {"modules": ["diffusion", "prompt_encoder"], "backend": backend}
    batch = first_batch(corpus)
    _, t, noise = fixed_inputs(lit, batch)
    got, want = lit.compute_losses(batch, t=t, noise=noise), plain_lit.compute_losses(batch, t=t, noise=noise)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-5, msg=k)
    with pytest.raises(ValueError, match=r"compile.modules \['difusion'\]: expected a non-empty subset of"):
        make_lit(corpus, compile={"modules": ["difusion"]})


def test_prompt_span_is_excluded_from_the_diffusion_losses(corpus):
    lit = make_lit(corpus).eval()
    batch = first_batch(corpus)
    z0, t, noise = fixed_inputs(lit, batch)
    z_prompt, p_mask = prompt_latents(z0, batch["prompt_start"], batch["prompt_end"])
    assert torch.equal(p_mask.sum(-1), batch["prompt_mask"].sum(-1)) and p_mask.sum() > 0
    base = lit.compute_losses(batch, z0=z0, t=t, noise=noise, z_prompt=z_prompt)

    def perturbed(where: torch.Tensor) -> dict:
        """Change the target inside ``where`` [B, T], keeping the network's inputs (z_t, prompt) as they were."""
        z1 = z0 + 3.0 * torch.randn_like(z0) * where[:, None, :]
        mean1, std = lit.sde.marginal(z1, t)
        eps1 = noise + (lit.sde.marginal(z0, t)[0] - mean1) / std  # same z_t = α z1 + σ ε1
        return lit.compute_losses(batch, z0=z1, t=t, noise=eps1, z_prompt=z_prompt)

    inside = perturbed(batch["prompt_mask"])
    for k in DIFFUSION_TERMS + ("duration", "pitch"):
        torch.testing.assert_close(inside[k], base[k], rtol=1e-4, atol=1e-6, msg=k)
    outside = perturbed(batch["frame_mask"] & ~batch["prompt_mask"])
    assert outside["data"] > 2 * base["data"]  # the same change on target frames counts


# --- optimisation --------------------------------------------------------------------------------------
class Record(L.Callback):
    def __init__(self):
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")})


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """30 steps on one batch; returns (module, batch, loss before on fixed inputs, records, checkpoint path)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    out = tmp_path_factory.mktemp("ns2_trained")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one_thread fixture
    L.seed_everything(0)
    lit = make_lit(corpus, lr=3e-3, warmup_steps=5, ema_decay=0.9, num_val_synth=1,
                   val_sampler={"name": "dpm_solver_pp", "steps": 4})
    batch = first_batch(corpus)
    fixed = fixed_inputs(lit, batch)
    lit.eval()
    with torch.no_grad():
        before = lit.compute_losses(batch, z0=fixed[0], t=fixed[1], noise=fixed[2])
    rec = Record()
    tr = trainer(max_steps=30, overfit_batches=1, limit_val_batches=1, check_val_every_n_epoch=30, callbacks=[rec],
                 logger=TensorBoardLogger(out, name="tb"))
    tr.fit(lit, datamodule(corpus))
    path = out / "last.ckpt"
    tr.save_checkpoint(path)
    torch.set_num_threads(threads)
    return lit, batch, fixed, before, rec.rows, path, out


def test_overfitting_one_batch_lowers_the_loss(trained):
    lit, batch, (z0, t, noise), before, rows, _, _ = trained
    assert len(rows) == 30 and lit.global_step == 30
    lit.eval()
    with torch.no_grad():
        after = lit.compute_losses(batch, z0=z0, t=t, noise=noise)
    print("fixed-input losses before/after 30 steps:", {k: (round(float(before[k]), 3), round(float(after[k]), 3))
                                                        for k in before})
    assert after["total"] < 0.6 * before["total"]  # 0.48 / 0.51 of it with two different noise streams
    for k in ("data", "duration", "pitch"):
        assert after[k] < before[k], k
    lrs = [r["train/lr"] for r in rows]
    assert lrs[0] < lrs[4] and lrs[-1] < lrs[5]  # warmup, then decay


def test_validation_logs_synthesis_media(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    *_, out = trained
    events = EventAccumulator(str(next(Path(out, "tb").rglob("events.out.tfevents.*")).parent),
                              size_guidance={"audio": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"val/synth_0/synthesis", "val/synth_0/reference"} <= set(tags["audio"]), tags["audio"]
    assert "val/synth_0/plots" in tags["images"] and "val/synth_frames_ratio" in tags["scalars"]


def test_checkpoint_round_trips_through_load_ns2_checkpoint(trained):
    lit, batch, (z0, t, noise), *_, path, _ = trained
    raw = torch.load(path, map_location="cpu", weights_only=True)
    rec = raw["ns2"]
    assert rec["kind"] == "ns2" and rec["version"] == 1 and rec["net"]["latent_dim"] == 32
    assert rec["symbols"]["version"] == "ipa-v1" and (rec["sampler"]["name"], rec["sampler"]["steps"]) == ("dpm_solver_pp", 10)
    assert raw["hyper_parameters"]["lr"] == 3e-3
    for k, v in rec["ema"].items():  # one storage on disk: the record's tensors are the state_dict's
        assert v.untyped_storage().data_ptr() == raw["state_dict"][f"ema.{k}"].untyped_storage().data_ptr()

    ckpt = load_ns2_checkpoint(path)
    assert isinstance(ckpt, NS2Checkpoint) and ckpt.step == 30 and ckpt.symbols == lit.symbols
    assert ckpt.language == "en-us" and ckpt.config["ema_decay"] == 0.9 and ckpt.frame_rate == 80.0
    assert not ckpt.net.training and not ckpt.codec.training and (ckpt.sde.beta_min, ckpt.sde.beta_max) == (0.05, 20.0)
    from ns2.data.codes import codec_signature

    assert codec_signature(ckpt.codec) == codec_signature(lit.codec)
    lit.eval()
    with torch.no_grad():
        ours = lit.compute_losses(batch, lit.ema, z0=z0, t=t, noise=noise)
        theirs = lit.compute_losses(batch, ckpt.net, z0=z0, t=t, noise=noise)
        raw_net = lit.compute_losses(batch, lit.net, z0=z0, t=t, noise=noise)
    for k in ours:
        torch.testing.assert_close(theirs[k], ours[k], rtol=0, atol=0, msg=k)
    assert not torch.equal(raw_net["data"], ours["data"])  # the EMA differs from the raw weights
    plain_net = load_ns2_checkpoint(path, ema=False).net
    assert all(torch.equal(a, b) for a, b in zip(plain_net.state_dict().values(), lit.net.state_dict().values()))
    lit.on_load_checkpoint(raw)  # resuming with the same network and codec
    with pytest.raises(ValueError, match="another codec"):
        NS2Lit(dict(TINY_NET), tiny_codec(seed=1)).on_load_checkpoint(raw)


def test_load_ns2_checkpoint_errors_are_one_clear_line(tmp_path):
    cases = {
        tmp_path / "missing.ckpt": "no such file",
        tmp_path / "garbage.ckpt": "refused by torch.load|not a readable torch file",
        tmp_path / "codec.ckpt": "a CodecLit checkpoint",
        tmp_path / "other.ckpt": "kind 'valle'",
        tmp_path / "dac.pth": "a codec weight file",
    }
    (tmp_path / "garbage.ckpt").write_bytes(b"\x00not a checkpoint" * 10)
    torch.save({"state_dict": {"codec.w": torch.zeros(1), "discriminator.w": torch.zeros(1)},
                "codec": {"class": "RVQCodec", "kwargs": {}}, "pytorch-lightning_version": "2.6"}, tmp_path / "codec.ckpt")
    torch.save({"ns2": {"kind": "valle", "version": 1}, "state_dict": {}}, tmp_path / "other.ckpt")
    torch.save({"state_dict": {}, "metadata": {"kwargs": {}}}, tmp_path / "dac.pth")
    for path, words in cases.items():
        with pytest.raises(NS2CheckpointError, match=words) as err:
            load_ns2_checkpoint(path)
        msg = str(err.value)
        assert "\n" not in msg and str(path) in msg and "NS2" in msg, msg


# --- pieces --------------------------------------------------------------------------------------------
def test_ema_update_and_frozen_parts(corpus):
    lit = make_lit(corpus, ema_decay=0.9, ema_warmup=False)
    with torch.no_grad():
        for p in lit.net.parameters():
            p.add_(1.0)
    ema_before = [p.clone() for p in lit.ema.parameters()]
    assert lit.update_ema() == 0.9
    for e, e0, n in zip(lit.ema.parameters(), ema_before, lit.net.parameters()):
        torch.testing.assert_close(e, 0.9 * e0 + 0.1 * n)
    warm = make_lit(corpus, ema_decay=0.999)
    assert warm.ema_decay_at(0) == pytest.approx(0.1) and warm.ema_decay_at(10**6) == 0.999
    opt = lit.configure_optimizers()["optimizer"]
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in lit.net.parameters()}
    lit.train()
    assert lit.net.training and not lit.ema.training and not lit.codec.training
    assert not any(p.requires_grad for p in lit.ema.parameters())
    sched = InverseSqrtSchedule(4)
    assert [round(sched(s), 3) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 0.894, 0.816]


def test_construction_errors(corpus):
    codec = load_codec(corpus.codec_file)
    with pytest.raises(ValueError, match="latent_dim=64 differs from the codec's latent_dim=32"):
        NS2Lit({**TINY_NET, "latent_dim": 64}, codec)
    with pytest.raises(ValueError, match="vocab_size=10 does not cover"):
        NS2Lit({**TINY_NET, "vocab_size": 10}, codec)
    with pytest.raises(ValueError, match="no codec given"):
        NS2Lit(dict(TINY_NET), None)
    from ns2.models.ns2 import NaturalSpeech2

    with pytest.raises(TypeError, match="not a built module"):
        NS2Lit(NaturalSpeech2(**{**TINY_NET, "latent_dim": 32}), codec)
    lit = NS2Lit({"_target_": "ns2.models.ns2.NaturalSpeech2", "_convert_": "all", **TINY_NET}, codec)
    assert "_target_" not in lit.net_kwargs and lit.hparams["net"]["latent_dim"] == 32
    partial = NS2Lit(functools.partial(NaturalSpeech2, **TINY_NET), codec)
    assert partial.net_kwargs == lit.net_kwargs
    with pytest.raises(ValueError, match="_target_ must be one of"):
        NS2Lit({"_target_": "torch.nn.Linear", **TINY_NET}, codec)


def test_codes_made_by_another_codec_are_refused(corpus):
    assert check_codes_codec(load_codec(corpus.codec_file), corpus.manifest) is True
    with pytest.raises(ValueError, match="extracted with another codec"):
        check_codes_codec(tiny_codec(seed=1), corpus.manifest)
    assert check_codes_codec(tiny_codec(), corpus.manifest.parent / "elsewhere" / "manifest.jsonl") is False


def test_study_measures_a_checkpoint_on_held_out_speakers(trained, corpus, tmp_path):
    """The learning study runs on a real checkpoint: every number is finite where it should be, the
    mean baselines are those of the train split, and the results are written with provenance."""
    import json

    from ns2.eval.studies.ns2 import run_study

    path = trained[5]
    res = run_study(path, corpus.manifest, tmp_path / "results.json", split="test", per_speaker=2, steps=8,
                    sampler_items=1, audio_dir=tmp_path / "audio", audio_examples=1)
    assert res["n_utterances"] == 2 and res["speakers"] == 1
    for k in ("dur_l1_log", "dur_l1_log_mean_baseline", "pitch_mae_cents", "pitch_mae_cents_mean_baseline",
              "latent_rel_mse", "latent_rel_mse_prompt_mean_baseline", "sampler/dpm_solver_pp_5"):
        assert np.isfinite(res[k]) and res[k] >= 0, k
    assert res["baselines"]["train_items"] == 12
    probe = res["latent_f0_probe"]
    assert (probe["n_train"], probe["n_test"]) == (15, 3) and -1.0 <= probe["r"] <= 1.0 and probe["mae_cents"] >= 0
    assert all(r["prompt_id"] != r["id"] for r in res["records"])  # the prompt is another utterance
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["commit"] and saved["checkpoint"] == str(path) and saved["settings"]["steps"] == 8
    assert len(list((tmp_path / "audio").glob("*_synth.wav"))) == 1


def test_study_pearson_and_item_choice():
    from ns2.data.manifest import Utterance
    from ns2.eval.studies.ns2 import pearson, pick_items

    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))
    utts = [Utterance(id=f"{s}_{i}", audio="a.wav", sample_rate=16000, duration=1.0, speaker=s, text="a", split=sp,
                      phonemes=["a"], word_index=[0], durations=[80], frame_rate=80.0, num_frames=80,
                      features={"codes": "c.npz"})
            for s, sp in (("a", "test"), ("b", "test"), ("c", "train")) for i in range(3)]
    pairs = pick_items(utts, "test", per_speaker=2)
    assert [(u.id, p.id) for u, p in pairs] == [("a_0", "a_1"), ("a_1", "a_2"), ("b_0", "b_1"), ("b_1", "b_2")]


def test_validation_synthesis_is_the_synthesizers_sampling_path(corpus):
    # one sampling path: NS2Lit's validation synthesis gives what NS2Synthesizer.sample_latent gives, and
    # a capped predicted length is rescaled to exactly the cap (fit_durations), as synthesis does
    from ns2.inference import NS2Synthesizer

    lit = make_lit(corpus, val_sampler={"name": "euler_ode", "steps": 3, "tau": 1.0})
    with torch.no_grad():
        lit.ema.duration_predictor.out.bias.fill_(float(np.log1p(6.0)))
    batch = first_batch(corpus)
    z0 = lit.latents(batch)
    n_ph = int(batch["phoneme_mask"][0].sum())
    s, e = int(batch["prompt_start"][0]), int(batch["prompt_end"][0])
    phonemes, z_prompt = batch["phonemes"][:1, :n_ph], z0[:1, :, s:e]
    synth = NS2Synthesizer(lit.ema, lit.codec, lit.sde, lit.symbols, "en-us", sampler="euler_ode", steps=3, tau=1.0)
    with torch.no_grad():
        predicted = int(synth.net.infer_condition(phonemes, None, z_prompt, None).durations.sum())
        cap = predicted - n_ph
        assert cap > n_ph
        z, cond = lit.synthesize_latent(phonemes, z_prompt, seed=3, max_frames=cap)
        want, want_cond = synth.sample_latent(phonemes, z_prompt, seed=3, max_frames=cap)
        free, _ = lit.synthesize_latent(phonemes, z_prompt, seed=3)
    assert int(cond.durations.sum()) == z.shape[-1] == cap
    assert torch.equal(cond.durations, want_cond.durations)
    torch.testing.assert_close(z, want)
    assert free.shape[-1] == predicted
