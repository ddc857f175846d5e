"""experiment=ns2/finetune: a couple of steps from a tiny trained checkpoint change the trainable boxes
only; the codec and the frozen boxes keep the checkpoint's weights."""
from __future__ import annotations

import lightning as L
import pytest
import torch

from ns2_lit_helpers import TINY_NET
from ns2.codec import load_codec
from ns2.data.datamodule import TTSDataModule
from ns2.lit import NS2Lit, load_ns2_checkpoint
from ns2.lit.finetune import freeze_except

FIELDS = ["phonemes", "durations", "f0", "codes"]


@pytest.fixture(scope="module")
def base_ckpt(corpus, tmp_path_factory):
    """A tiny NS2 trained for one step on the corpus, saved by Lightning (the ns2 record included)."""
    torch.manual_seed(0)
    lit = NS2Lit(dict(TINY_NET), load_codec(corpus.codec_file), warmup_steps=0, num_val_synth=0)
    dm = TTSDataModule(corpus.manifest, fields=FIELDS, max_frames=2400,
                       prompt={"min_frac": 0.2, "max_frac": 0.5, "min_frames": 8})
    tr = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, max_steps=1, limit_val_batches=0, num_sanity_val_steps=0)
    tr.fit(lit, datamodule=dm)
    path = tmp_path_factory.mktemp("base") / "base.ckpt"
    tr.save_checkpoint(path)
    return path


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_finetune_steps_change_the_trainable_boxes_only(compose, corpus, base_ckpt):
    from ns2.cli.train import build

    cfg = compose("train", ["experiment=ns2/finetune", f"model.init_from={base_ckpt}",
                            f"data.datamodule.manifest={corpus.manifest}", "trainer.max_steps=2",
                            "+trainer.limit_val_batches=0", "callbacks=none", "logger=csv"])
    assert cfg.model.net is None and cfg.model.lr < 1e-3 and cfg.trainer.max_steps == 2
    datamodule, module, trainer = build(cfg)
    base = load_ns2_checkpoint(base_ckpt)
    start = _state(module.net)
    for k, v in base.net.state_dict().items():
        assert torch.equal(start[k], v), f"{k} does not start from the checkpoint's EMA weights"
    codec_before = _state(module.codec)
    assert all(torch.equal(codec_before[k], v) for k, v in base.codec.state_dict().items())

    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2
    after = _state(module.net)
    trainable = set(cfg.model.trainable)
    changed = {k.split(".")[0] for k in after if not torch.equal(after[k], start[k])}
    assert changed == trainable, f"changed {sorted(changed)}, expected {sorted(trainable)}"
    assert {"phoneme_encoder", "pitch_embedding"}.isdisjoint(changed)
    assert all(torch.equal(v, codec_before[k]) for k, v in module.codec.state_dict().items())
    assert not any(p.requires_grad for p in module.codec.parameters())
    opt_params = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert opt_params == {id(p) for n, p in module.net.named_parameters() if n.split(".")[0] in trainable}


def test_init_from_checks_the_network_and_the_names(corpus, base_ckpt):
    with pytest.raises(ValueError, match="set model.net=null"):
        NS2Lit({**TINY_NET, "hidden": 48}, None, init_from=str(base_ckpt))
    with pytest.raises(ValueError, match=r"trainable \['difusion'\]: expected a non-empty subset of"):
        NS2Lit(None, None, init_from=str(base_ckpt), trainable=["difusion"])
    lit = NS2Lit(None, None, init_from=str(base_ckpt), trainable=["diffusion"])
    assert lit.config()["init_from"] == str(base_ckpt) and lit.config()["trainable"] == ["diffusion"]
    assert not any(p.requires_grad for n, p in lit.net.named_parameters() if not n.startswith("diffusion."))
    with pytest.raises(ValueError, match="expected a non-empty subset"):
        freeze_except(lit.net, [])
