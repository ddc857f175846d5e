"""NS2Lit on a corpus of speech and singing: losses logged per kind, score conditioning through training
(the dataset's notes field), and the score_conditioning ablation's fast_dev_run through ``ns2 train``."""
from __future__ import annotations

import lightning as L
import pytest
import torch

from ns2_lit_helpers import TINY_NET, Corpus, make_corpus, tiny_codec
from ns2.codec import load_codec
from ns2.data.datamodule import TTSDataModule
from ns2.data.manifest import read_manifest, write_manifest
from ns2.lit import NS2Lit
from ns2.lit.ns2 import KindMeans

FIELDS = ["phonemes", "durations", "f0", "codes"]
SUNG = {"s0_0", "s1_1", "s2_2", "s4_0"}  # train items and one valid item become singing, with a score


def with_score(u):
    """The utterance as a sung item: every word one note (pitches 55, 57, ...), every <sil> a rest."""
    notes, k, n = [], 0, len(u.phonemes)
    t0 = 0.0
    while k < n:
        j = k + 1
        if u.phonemes[k] != "<sil>":
            while j < n and u.phonemes[j] not in ("|", "<sil>"):
                j += 1
            j += j < n and u.phonemes[j] == "|"
        seconds = sum(u.durations[k:j]) / u.frame_rate
        rest = u.phonemes[k] == "<sil>"
        notes.append({"lyric": "".join(u.phonemes[k:j]), "pitch": 0 if rest else 55 + 2 * len(notes), "start": t0,
                      "duration": max(seconds, 1e-3), "phoneme_start": k, "phoneme_end": j, "rest": rest})
        t0 += seconds
        k = j
    u.kind, u.score = "singing", notes
    return u


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    from ns2.codec import save_codec
    from ns2.data.codes import extract_codes_for_manifest

    root = tmp_path_factory.mktemp("ns2_sung_corpus")
    manifest = make_corpus(root)
    write_manifest(manifest, [with_score(u) if u.id in SUNG else u for u in read_manifest(manifest)])
    codec = tiny_codec().eval()
    codec_file = save_codec(codec, root / "codec.pth")
    extract_codes_for_manifest(codec, manifest, batch_frames=0, shard_size=64, accelerator="cpu")
    return Corpus(root, manifest, codec_file)


def make_lit(corpus, score_conditioning: bool = True, **kwargs) -> NS2Lit:
    torch.manual_seed(0)
    base = dict(warmup_steps=0, num_val_synth=0)
    return NS2Lit({**TINY_NET, "score_conditioning": score_conditioning}, load_codec(corpus.codec_file),
                  **{**base, **kwargs})


def datamodule(corpus, fields=(*FIELDS, "notes"), **kwargs) -> TTSDataModule:
    base = dict(fields=list(fields), max_frames=2400, prompt={"min_frac": 0.2, "max_frac": 0.5, "min_frames": 8})
    dm = TTSDataModule(corpus.manifest, **{**base, **kwargs})
    dm.setup()
    return dm


def items(corpus, *ids, fields=(*FIELDS, "notes")):
    ds = datamodule(corpus, fields).datasets["train"]
    where = {u.id: i for i, u in enumerate(ds.utts)}
    return ds, [ds[where[i]] for i in ids]


def fixed(lit, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    z0 = lit.latents(batch)
    return 0.05 + 0.9 * torch.rand(z0.shape[0], generator=g), torch.randn(z0.shape, generator=g)


def test_notes_reach_the_batch(corpus):
    ds, (sung, spoken) = items(corpus, "s0_0", "s0_1")
    batch = ds.collate([sung, spoken])
    assert batch["kinds"] == ["singing", "speech"]
    assert batch["note_pitch"].shape == batch["note_start"].shape == batch["phonemes"].shape
    assert batch["note_pitch"][0].max() >= 55 and batch["note_start"][0].any()
    assert not batch["note_pitch"][1].any() and not batch["note_start"][1].any()


@pytest.mark.parametrize("score_conditioning", [False, True])
def test_per_kind_losses_are_each_items_loss_alone(corpus, score_conditioning):
    fields = (*FIELDS, "notes") if score_conditioning else FIELDS
    lit = make_lit(corpus, score_conditioning).eval()
    ds, (spoken, sung) = items(corpus, "s1_0", "s1_1", fields=fields)
    batch = ds.collate([spoken, sung])
    t, noise = fixed(lit, batch)
    plain = lit.compute_losses(batch, t=t, noise=noise)
    both = lit.compute_losses(batch, t=t, noise=noise, by_kind=True)
    terms = {"data", "score", "ce_rvq", "duration", "pitch", "total"}
    assert set(plain) == terms and set(both) == terms | {f"{k}/{term}" for k in ("speech", "singing") for term in terms}
    for k in terms:  # the optimised losses are unchanged
        torch.testing.assert_close(both[k], plain[k], rtol=0, atol=0)
    for i, (kind, item) in enumerate([("speech", spoken), ("singing", sung)]):
        alone = ds.collate([item])
        n = int(alone["frame_lengths"][0])
        own = lit.compute_losses(alone, t=t[i : i + 1], noise=noise[i : i + 1, :, :n])
        for k in terms:
            torch.testing.assert_close(both[f"{kind}/{k}"], own[k], rtol=1e-5, atol=1e-5, msg=f"{kind}/{k}")
    assert not torch.allclose(both["speech/total"], both["singing/total"])
    # a batch of one kind: its per-kind terms are the batch's
    one = lit.compute_losses(ds.collate([spoken]), t=t[:1], noise=noise[:1, :, : int(spoken["num_frames"])], by_kind=True)
    assert set(one) == terms | {f"speech/{k}" for k in terms}
    assert all(torch.equal(one[f"speech/{k}"], one[k]) for k in terms)


def test_kind_means_weight_by_items_and_reduce():
    m = KindMeans(["data", "total"])
    m.update("speech", {"data": torch.tensor(1.0), "total": torch.tensor(2.0)}, 3)
    m.update("speech", {"data": torch.tensor(3.0), "total": torch.tensor(4.0)}, 1)
    assert m.compute() == {"speech/data": 1.5, "speech/total": 2.5}  # no singing item: no singing key
    assert m.compute(lambda x: 2 * x) == {"speech/data": 1.5, "speech/total": 2.5}  # two identical ranks
    m.reset()
    assert m.compute() == {}


class Record(L.Callback):
    def __init__(self):
        self.train: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.train.append({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")})


def test_training_and_validation_log_every_kind(corpus):
    lit = make_lit(corpus)
    rec = Record()
    tr = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, max_steps=1, limit_val_batches=1, num_sanity_val_steps=0, callbacks=[rec])
    tr.fit(lit, datamodule(corpus, max_batch_size=16))
    metrics = {k: float(v) for k, v in tr.callback_metrics.items()}
    for stage in ("train", "val"):
        for kind in ("speech", "singing"):
            for term in ("total", "data", "score", "ce_rvq", "duration", "pitch"):
                key = f"{stage}/{kind}/{term}"
                assert key in metrics and torch.isfinite(torch.tensor(metrics[key])), key
    assert "train/total" in rec.train[0] and "train/singing/pitch" in rec.train[0]


def test_score_conditioning_needs_the_notes_field(corpus):
    lit = make_lit(corpus)
    ds, (sung,) = items(corpus, "s0_0", fields=FIELDS)
    with pytest.raises(KeyError, match="fields=\\[phonemes,durations,f0,codes,notes\\]"):
        lit.compute_losses(ds.collate([sung]))
    tr = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, max_steps=1, num_sanity_val_steps=0)
    with pytest.raises(ValueError, match="lacks the notes field"):
        tr.fit(lit, datamodule(corpus, FIELDS))


def test_validation_synthesis_reads_the_notes(corpus):
    lit = make_lit(corpus, num_val_synth=1, val_sampler={"name": "dpm_solver_pp", "steps": 2}).eval()
    ds, (sung,) = items(corpus, "s2_2")
    batch = ds.collate([sung])
    n_ph = int(batch["phoneme_mask"][0].sum())
    z0 = lit.latents(batch)
    s, e = int(batch["prompt_start"][0]), int(batch["prompt_end"][0])
    notes = {"note_pitch": batch["note_pitch"][:, :n_ph], "note_start": batch["note_start"][:, :n_ph]}
    _, cond = lit.synthesize_latent(batch["phonemes"][:, :n_ph], z0[..., s:e], max_frames=200, **notes)
    higher = {**notes, "note_pitch": notes["note_pitch"] + 12 * (notes["note_pitch"] > 0)}
    _, cond_hi = lit.synthesize_latent(batch["phonemes"][:, :n_ph], z0[..., s:e], max_frames=200, **higher)
    assert cond.log_f0.shape[-1] > 0 and not torch.equal(cond.log_f0, cond_hi.log_f0)
    lit.log_synthesis(batch, z0)  # the first validation batch's synthesis passes the notes (no logger: scalars)


def test_fast_dev_run_of_the_score_conditioning_ablation(compose, corpus):
    from ns2.cli.train import build, run_train

    cfg = compose("train", ["experiment=ns2/ablation/score_conditioning", "debug=fdr",
                            f"codec.source={corpus.codec_file}", f"data.root={corpus.root}"])
    dm, module, _ = build(cfg)
    assert isinstance(module, NS2Lit) and module.net.score_conditioning and module.net_kwargs["score_conditioning"]
    assert "notes" in dm.fields and cfg.task_name == "ns2_tiny_score_conditioning"
    metrics = run_train(cfg)
    for key in ("train/total", "val/total", "train/singing/pitch", "train/speech/pitch"):
        assert torch.isfinite(torch.tensor(metrics[key])), key
    # the delta is the switch and the field, nothing else
    tiny = compose("train", ["experiment=ns2/tiny", f"codec.source={corpus.codec_file}"])
    ablation = compose("train", ["experiment=ns2/ablation/score_conditioning", f"codec.source={corpus.codec_file}"])
    assert not tiny.model.net.score_conditioning
    tiny.model.net.score_conditioning = True
    tiny.data.datamodule.fields = [*tiny.data.datamodule.fields, "notes"]
    tiny.task_name = ablation.task_name
    assert tiny.model == ablation.model and tiny.data == ablation.data


def test_resuming_a_checkpoint_from_before_the_switch(corpus):
    """A run started before ``score_conditioning`` existed resumes with the switch at its default (off)."""
    old = make_lit(corpus, False)
    ckpt: dict = {}
    old.on_save_checkpoint(ckpt)
    del ckpt["ns2"]["net"]["score_conditioning"]
    NS2Lit({**TINY_NET, "score_conditioning": False}, load_codec(corpus.codec_file)).on_load_checkpoint(ckpt)
    NS2Lit(dict(TINY_NET), load_codec(corpus.codec_file)).on_load_checkpoint(ckpt)
    with pytest.raises(ValueError, match="differs from model.net"):
        make_lit(corpus, True).on_load_checkpoint(ckpt)
