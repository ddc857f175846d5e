"""The run's final weights reach last.ckpt even when training stops between scheduled saves; a pre-emption
signal writes last.ckpt before a requeue handler installed earlier (submitit's, Lightning's) runs."""
from __future__ import annotations

import os
import signal

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from ns2.lit.callbacks import ModelCheckpoint, Preemption


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.lin(x).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_last_checkpoint_holds_the_final_step(tmp_path):
    data = DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=4)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=-1, every_n_train_steps=5)
    trainer = L.Trainer(max_steps=7, callbacks=[ckpt], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(Tiny(), data)
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 7
    scheduled = [p for p in tmp_path.glob("*.ckpt") if p.name != "last.ckpt"]
    assert [torch.load(p, weights_only=True)["global_step"] for p in scheduled] == [5]


class SignalAt(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)


def test_preemption_writes_last_ckpt_then_calls_the_earlier_handler(tmp_path):
    seen = []

    def requeue(signum, frame):  # what submitit's handler does: requeue, relying on the checkpoint on disk
        seen.append((signum, torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"]))

    data = DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=4)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=-1, every_n_train_steps=100)
    trainer = L.Trainer(max_steps=12, callbacks=[ckpt, Preemption(), SignalAt(3)], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    old = signal.signal(signal.SIGUSR1, requeue)
    try:
        trainer.fit(Tiny(), data)
        assert signal.getsignal(signal.SIGUSR1) is requeue  # given back after training
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert seen == [(signal.SIGUSR1, 4)]  # the batch in flight finished, then the checkpoint, then the requeue
    assert trainer.global_step == 4
