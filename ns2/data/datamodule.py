"""Lightning datamodule over a prepared manifest: frame-budget batches, per-split loaders, resumable.

* ``train``/``valid``/``test`` loaders read the manifest's splits; batches come from
  :class:`~ns2.data.sampler.FrameBucketSampler` (shuffled for training, in length order otherwise).
* Distributed: the sampler shards by rank itself (world size and rank from the trainer, else from
  ``torch.distributed``), every rank gets the same number of batches; run with
  ``Trainer(use_distributed_sampler=False)`` (every trainer config does).
* Workers are seeded from ``(seed, epoch, rank, worker)`` (numpy, random, torch); item randomness
  (crops, prompt spans) is seeded per ``(seed, epoch, index)`` inside the dataset.
* Resuming mid-epoch: the training loader counts the batches it handed out; the datamodule's
  ``state_dict()`` (saved by Lightning in every checkpoint) holds the sampler's epoch and that count,
  and ``load_state_dict()`` makes the next epoch iteration yield only the remaining batches. The
  loader itself also implements ``state_dict``/``load_state_dict``, so Lightning treats it as resumable.
"""
from __future__ import annotations

import logging
import math
import os
import random
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ns2.data.dataset import PromptConfig, TTSDataset
from ns2.data.manifest import read_manifest
from ns2.data.sampler import FrameBucketSampler

log = logging.getLogger(__name__)

SPLITS = {"train": "train", "val": "valid", "test": "test"}


class WorkerInit:
    """``worker_init_fn`` seeding numpy, random and torch from ``(seed, epoch, rank, worker_id)``."""

    def __init__(self, seed: int, sampler: FrameBucketSampler, rank: int = 0):
        self.seed, self.sampler, self.rank = int(seed), sampler, int(rank)

    def __call__(self, worker_id: int) -> None:
        ss = np.random.SeedSequence([self.seed, self.sampler.epoch, self.rank, worker_id])
        s = int(ss.generate_state(1, dtype=np.uint64)[0] % (2**63 - 1))
        np.random.seed(s % 2**32)
        random.seed(s)
        torch.manual_seed(s)


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over a :class:`FrameBucketSampler` that counts the batches it has handed out."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.consumed = 0

    def __iter__(self) -> Iterator[Any]:
        self.consumed = self.batch_sampler.resume_offset()  # type: ignore[union-attr]
        for batch in super().__iter__():
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict(consumed=self.consumed)  # type: ignore[union-attr]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)  # type: ignore[union-attr]
        self.consumed = int(state.get("consumed", 0))


class TTSDataModule(L.LightningDataModule):
    """Datamodule of a prepared manifest; ``max_frames`` is the frame budget of one padded batch."""

    def __init__(self, manifest: str | os.PathLike, fields: Sequence[str] = ("phonemes", "durations", "f0", "audio"),
                 max_frames: int = 12000, num_workers: int = 0, seed: int = 0,
                 prompt: Mapping[str, Any] | PromptConfig | bool | None = None, max_frames_per_item: int | None = None,
                 bucket_width: int | None = None, max_batch_size: int | None = None,
                 val_max_frames: int | None = None, symbols: Any = None, pin_memory: bool = False,
                 persistent_workers: bool = False, drop_last: bool = False, singing_upsample: float = 1.0):
        super().__init__()
        if singing_upsample < 0:
            raise ValueError(f"singing_upsample must be >= 0 (copies of each singing item per epoch), got {singing_upsample}")
        self.singing_upsample = float(singing_upsample)
        self.manifest = Path(manifest)
        self.fields = tuple(str(f) for f in fields)
        self.max_frames = int(max_frames)
        self.val_max_frames = int(val_max_frames) if val_max_frames else self.max_frames
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.prompt = PromptConfig.create(dict(prompt) if isinstance(prompt, Mapping) else prompt)
        self.max_frames_per_item = max_frames_per_item
        self.bucket_width = bucket_width
        self.max_batch_size = max_batch_size
        self.symbols = symbols
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.drop_last = bool(drop_last)
        self.datasets: dict[str, TTSDataset] = {}
        self._train_loader: ResumableLoader | None = None
        self._pending_state: dict[str, Any] | None = None

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        utts = read_manifest(self.manifest)
        for key, split in SPLITS.items():
            self.datasets[key] = TTSDataset(
                self.manifest, self.fields, symbols=self.symbols, max_frames_per_item=self.max_frames_per_item,
                prompt=self.prompt if self.prompt is not None else False, seed=self.seed, split=split, utterances=utts)
        sizes = {k: len(d) for k, d in self.datasets.items()}
        log.info("datamodule %s: %s utterances per split", self.manifest, sizes)
        if not sizes["train"]:
            log.warning("%s has no train utterances", self.manifest)

    def world(self) -> tuple[int, int]:
        """``(num_replicas, rank)`` from the trainer, else ``torch.distributed``, else ``(1, 0)``."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return int(trainer.world_size), int(trainer.global_rank)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    # ------------------------------------------------------------------ loaders
    def _loader(self, key: str, train: bool) -> DataLoader:
        self.setup()
        ds = self.datasets[key]
        replicas, rank = self.world()
        trainer = getattr(self, "trainer", None)
        shuffle = train and not (trainer is not None and getattr(trainer, "overfit_batches", 0))
        sampler = FrameBucketSampler(ds.frame_lengths(), self.max_frames if train else self.val_max_frames,
                                     shuffle=shuffle, seed=self.seed, drop_last=self.drop_last and train,
                                     num_replicas=replicas, rank=rank, bucket_width=self.bucket_width,
                                     max_batch_size=self.max_batch_size, with_epoch=train,
                                     repeats=self.repeats(ds) if train else None)
        cls = ResumableLoader if train else DataLoader
        # A generator of its own: starting an epoch's iterator then draws its base seed without touching
        # the global RNG, so a run resumed mid-epoch draws the same training noise as an uninterrupted one.
        generator = torch.Generator().manual_seed(self.seed * 1000 + rank)
        loader = cls(ds, batch_sampler=sampler, collate_fn=ds.collate, num_workers=self.num_workers,
                     worker_init_fn=WorkerInit(self.seed, sampler, rank), pin_memory=self.pin_memory,
                     persistent_workers=self.persistent_workers, generator=generator)
        return loader

    def repeats(self, ds: TTSDataset) -> list[int] | None:
        """Copies per epoch of each training item: ``singing_upsample`` for singing (the paper mixes
        upsampled singing into speech; a fraction k spreads exactly: the j-th singing item gets
        floor((j+1)k) - floor(jk) copies), one for speech. None when nothing is upsampled. Copies of
        an item share its crop and prompt within an epoch; their diffusion times and noise differ."""
        if self.singing_upsample == 1.0:
            return None
        k, j, out = self.singing_upsample, 0, []
        for u in ds.utts:
            if u.kind == "singing":
                out.append(int(math.floor((j + 1) * k + 1e-9) - math.floor(j * k + 1e-9)))
                j += 1
            else:
                out.append(1)
        return out

    def train_dataloader(self) -> DataLoader:
        loader = self._loader("train", train=True)
        self._train_loader = loader  # type: ignore[assignment]
        if self._pending_state is not None:
            loader.load_state_dict(self._pending_state)  # type: ignore[union-attr]
            self._pending_state = None
        return loader

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    # ------------------------------------------------------------------ resuming
    def state_dict(self) -> dict[str, Any]:
        if self._train_loader is not None:
            return {"train_sampler": self._train_loader.state_dict()}
        if self._pending_state is not None:
            return {"train_sampler": dict(self._pending_state)}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("train_sampler")
        if not state:
            return
        if self._train_loader is not None:
            self._train_loader.load_state_dict(state)
        else:
            self._pending_state = dict(state)
