"""DDP that has run: NS2 tiny, the codec and the aligner trained through ``ns2 train trainer=ddp`` on two
CPU processes (gloo). Each rank trains on its own batches, the two together cover the epoch, gradients are
averaged (both ranks hold the same parameters after training, which moved them), and NS2's two-process
checkpoint continues on one process."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from ns2_lit_helpers import REPO, finish, run_dir, start

from ns2.data.manifest import read_manifest

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]


def common(corpus, root: Path, probe: Path) -> list[str]:
    return [f"data.root={corpus.root}", f"paths.root_dir={root}", "run_name=ddp", "logger=csv",
            "+trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "trainer.check_val_every_n_epoch=1000",
            "trainer.max_epochs=1", "trainer.max_steps=-1", "callbacks.model_checkpoint.every_n_train_steps=1",
            "+callbacks.probe._target_=ddp_probe.Probe", f"+callbacks.probe.out={probe}"]


SYSTEMS = {
    "ns2": (["experiment=ns2/tiny", "data.datamodule.max_frames=200", "model.warmup_steps=2"], "ns2_tiny"),
    "codec": (["experiment=codec/tiny", "data.datamodule.max_frames=128"], "codec_tiny"),
    "aligner": (["experiment=aligner/tiny", "data.datamodule.max_frames=200"], "aligner_tiny"),
}


def train_ddp(corpus, root: Path, system: str) -> tuple[list[dict], str]:
    args, _ = SYSTEMS[system]
    extra = [f"codec.source={corpus.codec_file}"] if system == "ns2" else []
    probe = root / "probe"
    out = finish(start([*args, *extra, *common(corpus, root, probe), *DDP], {"PYTHONPATH": str(Path(__file__).parent)}),
                 timeout=600)
    assert "Starting with 2 processes" in out, out[-3000:]
    ranks = [torch.load(probe / f"rank{r}.pt", map_location="cpu", weights_only=True) for r in range(2)]
    assert all(r["world_size"] == 2 for r in ranks), out[-3000:]
    return ranks, " ".join(args + extra)


def assert_disjoint_cover(ranks: list[dict], train_ids: set[str]) -> None:
    """The ranks' batches cover the epoch; the only shared batch is the one repeated to even them up."""
    mine = [[frozenset(b) for b in r["batches"]] for r in ranks]
    assert len(mine[0]) == len(mine[1]) > 0
    assert set().union(*mine[0], *mine[1]) == train_ids
    everything = mine[0] + mine[1]
    repeated = len(everything) - len(set(everything))
    assert repeated <= 1, "a distributed sampler pads at most one batch for two ranks"
    if repeated == 0:
        assert not set().union(*mine[0]) & set().union(*mine[1])


def assert_synchronised(ranks: list[dict]) -> None:
    a, b = ranks[0]["final"], ranks[1]["final"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between the ranks after training"
    moved = [k for k in a if a[k].is_floating_point() and not torch.equal(a[k], ranks[0]["initial"][k])]
    assert moved, "training changed no parameter"


@pytest.mark.slow
@pytest.mark.parametrize("system", list(SYSTEMS))
def test_ddp_two_processes(corpus, tmp_path, system):
    ranks, _ = train_ddp(corpus, tmp_path, system)
    train_ids = {u.id for u in read_manifest(corpus.manifest) if u.split == "train"}
    assert_disjoint_cover(ranks, train_ids)
    assert_synchronised(ranks)
    if system != "ns2":
        return
    # NS2's two-process checkpoint continues on one process
    step = ranks[0]["global_step"]
    ckpt_dir = run_dir(tmp_path, "ddp", SYSTEMS[system][1]) / "checkpoints"
    assert (ckpt_dir / "last.ckpt").is_file()
    args, _ = SYSTEMS[system]
    out = finish(start([*args, f"codec.source={corpus.codec_file}", *common(corpus, tmp_path, tmp_path / "probe1"),
                        "resume=true", "trainer.max_epochs=2", f"trainer.max_steps={step + 2}"],
                       {"PYTHONPATH": str(Path(__file__).parent)}))
    assert re.search(r"resume=true: continuing from \S+last\.ckpt", out), out[-3000:]
    single = torch.load(tmp_path / "probe1" / "rank0.pt", map_location="cpu", weights_only=True)
    assert single["world_size"] == 1 and single["global_step"] == step + 2
    for k, v in ranks[0]["final"].items():  # it started from the two-process weights
        assert torch.equal(single["initial"][k], v), k
