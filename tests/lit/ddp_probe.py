"""A callback for the DDP tests, given to ``ns2 train`` as ``+callbacks.probe``: each rank writes the ids
of the batches it trained on and its module's state before and after training to ``<out>/rank<r>.pt``."""
from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


class Probe(Callback):
    def __init__(self, out: str):
        self.out, self.batches, self.initial = Path(out), [], None

    def on_train_start(self, trainer, pl_module) -> None:
        self.initial = _state(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(list(batch["ids"]))

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        torch.save({"world_size": trainer.world_size, "batches": self.batches, "initial": self.initial,
                    "final": _state(pl_module), "global_step": trainer.global_step},
                   self.out / f"rank{trainer.global_rank}.pt")
