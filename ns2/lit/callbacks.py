"""Callbacks shared by every training run."""
from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint as _ModelCheckpoint

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(_ModelCheckpoint):
    """Lightning's ModelCheckpoint that also writes ``last.ckpt`` when training ends between two
    scheduled saves (``max_steps`` not a multiple of ``every_n_train_steps``, or ``max_time``
    reached): the final weights of a run are never lost. Everything else is unchanged."""

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        if (self.save_last and trainer.global_step > 0 and self._last_global_step_saved != trainer.global_step
                and not self._should_skip_saving_checkpoint(trainer)):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
