"""The run's final weights reach last.ckpt even when training stops between scheduled saves."""
from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from ns2.lit.callbacks import ModelCheckpoint


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
