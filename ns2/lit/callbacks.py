"""Callbacks shared by every training run: checkpoints that never lose the final weights, the RNG
states a resumed run needs to draw what an uninterrupted one draws, and a checkpoint on pre-emption."""
from __future__ import annotations

import logging
import os
import random
import signal
import threading
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks import ModelCheckpoint as _ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

__all__ = ["ModelCheckpoint", "RNGState", "Preemption", "last_checkpoint_path"]

log = logging.getLogger(__name__)


class ModelCheckpoint(_ModelCheckpoint):
    """Lightning's ModelCheckpoint that also writes ``last.ckpt`` when training ends between two
    scheduled saves (``max_steps`` not a multiple of ``every_n_train_steps``, or ``max_time``
    reached): the final weights of a run are never lost. Everything else is unchanged."""

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        if (self.save_last and trainer.global_step > 0 and self._last_global_step_saved != trainer.global_step
                and not self._should_skip_saving_checkpoint(trainer)):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def save_last_now(self, trainer) -> str:
        """Write ``last.ckpt`` of this step now (pre-emption) and count it as this step's save, so
        ``on_train_end`` does not write it again from a later state."""
        path = last_checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        self._last_global_step_saved = trainer.global_step
        return path


def last_checkpoint_path(trainer) -> str:
    """Where the run's ``last.ckpt`` lives: the checkpoint callback's folder, else ``<root>/checkpoints``."""
    cb = trainer.checkpoint_callback
    if isinstance(cb, _ModelCheckpoint) and cb.dirpath:
        return os.path.join(cb.dirpath, cb.CHECKPOINT_NAME_LAST + cb.FILE_EXTENSION)
    return os.path.join(trainer.default_root_dir, "checkpoints", "last.ckpt")


# ---------------------------------------------------------------------------------------------- RNG
def rng_state() -> dict[str, Any]:
    """This process's torch (CPU and CUDA), numpy and ``random`` states, as tensors, lists and numbers
    only (a checkpoint holding them still loads with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "random": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    r = state["random"]
    random.setstate((r["version"], tuple(r["internal"]), r["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGState(Callback):
    """Saves every rank's RNG states in each checkpoint and restores them when training resumes.

    Lightning checkpoints keep the weights, optimiser, schedulers, loops and the datamodule's sampler
    position, not the random generators: a resumed run would draw other diffusion noise, times and
    dropout masks than the uninterrupted run. The states are taken when the checkpoint is written (after
    the optimiser step of its batch) and put back just before the first training batch after the resume
    (``on_train_batch_start``), so nothing in between (loader start-up, setup hooks) shifts them.
    Resuming with another number of ranks gives rank ``r`` the saved state of rank ``r mod n``.
    """

    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] | None = None

    def state_dict(self) -> dict[str, Any]:
        state = rng_state()
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            states: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(states, state)
            return {"ranks": states}
        return {"ranks": [state]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = list(state_dict.get("ranks") or []) or None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending is None:
            return
        states, self._pending = self._pending, None
        if len(states) != trainer.world_size:
            log.warning("RNG states saved by %d rank(s), resumed on %d: rank r takes rank r mod %d's state",
                        len(states), trainer.world_size, len(states))
        set_rng_state(states[trainer.global_rank % len(states)])


# ---------------------------------------------------------------------------------------- pre-emption
class Preemption(Callback):
    """Writes ``last.ckpt`` before a pre-empted run exits, so ``resume=true`` continues where it stopped.

    - SIGTERM (what schedulers send before killing a job): Lightning's own handler ends the run at the end
      of the current batch with ``SIGTERMException``; this callback then writes the checkpoint.
    - ``signals`` (default SIGUSR1 and SIGUSR2: SLURM's ``--signal=USR1@<seconds>`` warning, and the one
      submitit asks for): the run stops at the end of the current batch (all ranks agree) and
      ``last.ckpt`` is written on the way out. A handler that
      was installed before training (submitit's requeue under ``hydra/launcher=slurm``, Lightning's SLURM
      auto-requeue under a plain ``srun``) runs after the checkpoint is written, so the job is requeued
      with nothing lost.
    """

    def __init__(self, signals: tuple[str, ...] | list[str] = ("SIGUSR1", "SIGUSR2")) -> None:
        self.signals = tuple(str(s) for s in signals)
        for name in self.signals:
            if not isinstance(getattr(signal, name, None), signal.Signals):
                raise ValueError(f"Preemption: {name!r} is not a signal of this platform; expected e.g. SIGUSR1")
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        self.requested = signal.Signals(signum).name

    def on_train_start(self, trainer, pl_module) -> None:
        self.requested = None
        if threading.current_thread() is not threading.main_thread():
            return
        for name in self.signals:
            sig = getattr(signal, name)
            self._previous[sig] = signal.signal(sig, self._handler)

    def _restore(self) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.strategy.reduce_boolean_decision(self.requested is not None, all=False):
            log.warning("%s received at step %d: stopping after this batch and writing last.ckpt",
                        self.requested or "a pre-emption signal (on another rank)", trainer.global_step)
            trainer.should_stop = True
            self.save(trainer)
            sig = getattr(signal, self.requested or self.signals[0])
            previous = self._previous.get(sig)
            self._restore()
            if callable(previous):  # e.g. submitit's requeue: now that last.ckpt is on disk
                previous(sig, None)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore()
        if isinstance(exception, SIGTERMException):
            log.warning("SIGTERM at step %d: writing last.ckpt before exit", trainer.global_step)
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()

    @staticmethod
    def save(trainer) -> None:
        if trainer.global_step > 0:
            cb = trainer.checkpoint_callback
            if isinstance(cb, ModelCheckpoint):
                path = cb.save_last_now(trainer)
            else:
                path = last_checkpoint_path(trainer)
                trainer.save_checkpoint(path)
            log.warning("checkpoint written: %s (resume with resume=true and the same run_name)", path)
