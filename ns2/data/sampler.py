"""Batches by a frame budget: similar lengths together, a padded batch never over ``max_frames``.

:class:`FrameBucketSampler` is a batch sampler (``DataLoader(batch_sampler=...)``). For each epoch it

1. sorts the items into length buckets ``length // bucket_width`` (shuffled inside a bucket,
   seeded by ``(seed, epoch)``);
2. packs them greedily in that order: a batch takes items while ``cap * batch_size <= max_frames``,
   where ``cap`` is the largest length of the buckets in the batch (so ``max_len * batch_size`` of
   the real lengths is within budget too);
3. shuffles the order of the batches and deals them to the ``num_replicas`` ranks in turn.

Because the budget uses bucket maxima, the number of batches does not depend on the shuffle: every
epoch has the same ``len()``. Each rank gets the same number of batches: the batch list is padded by
repeating batches from its start (``drop_last=False``) or cut (``drop_last=True``) to a multiple of
``num_replicas``. An item longer than ``max_frames`` gets a batch of its own (the dataset's
``max_frames_per_item`` crops such items instead).

Resuming: ``state_dict()`` records the epoch and how many of this rank's batches were consumed;
after ``load_state_dict()`` the next iteration of that epoch yields exactly the remaining batches.
Lightning calls ``set_epoch`` on ``batch_sampler.sampler``, which is a small handle forwarding to
this sampler.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

log = logging.getLogger(__name__)


class _EpochHandle:
    """What Lightning finds at ``batch_sampler.sampler``: forwards ``set_epoch`` and ``resume_offset``."""

    def __init__(self, owner: "FrameBucketSampler"):
        self.owner = owner

    def resume_offset(self) -> int:
        """The owner's :meth:`FrameBucketSampler.resume_offset`."""
        return self.owner.resume_offset()

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.owner.lengths)

    def __iter__(self) -> Iterator[int]:
        return (i for batch in self.owner for i in batch)


class FrameBucketSampler(Sampler):
    """Frame-budget batch sampler; yields lists of indices (or ``(index, epoch)`` with ``with_epoch``).

    ``lengths``: frames per item. ``bucket_width``: frames per bucket (default: the length range in
    64 buckets; about 95% of a batch budget is then real frames on LibriTTS-like lengths).
    ``max_batch_size`` optionally caps the items per batch. ``repeats``: copies of each item per
    epoch (default one; e.g. singing upsampled); the copies are batched like distinct items.
    """

    def __init__(self, lengths: Sequence[int], max_frames: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, num_replicas: int = 1, rank: int = 0, bucket_width: int | None = None,
                 max_batch_size: int | None = None, with_epoch: bool = False, repeats: Sequence[int] | None = None):
        if max_frames <= 0:
            raise ValueError(f"max_frames must be > 0, got {max_frames}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        self.lengths = np.asarray([int(n) for n in lengths], dtype=np.int64)
        if (self.lengths < 0).any():
            raise ValueError("lengths must be >= 0")
        self.index = np.arange(len(self.lengths))  # pool position -> item
        if repeats is not None:
            reps = np.asarray([int(r) for r in repeats], dtype=np.int64)
            if reps.shape != self.lengths.shape or (reps < 0).any():
                raise ValueError(f"repeats: expected one count >= 0 per item ({len(self.lengths)}), got {reps.shape[0]}")
            self.index = np.repeat(self.index, reps)
            self.lengths = self.lengths[self.index]
        self.max_frames = int(max_frames)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.max_batch_size = int(max_batch_size) if max_batch_size else None
        self.with_epoch = bool(with_epoch)
        if bucket_width is None:
            span = int(self.lengths.max() - self.lengths.min()) if len(self.lengths) else 0
            bucket_width = max(1, math.ceil((span + 1) / 64))
        if bucket_width < 1:
            raise ValueError(f"bucket_width must be >= 1, got {bucket_width}")
        self.bucket_width = int(bucket_width)
        self.epoch = 0
        self._resume_epoch: int | None = None
        self._resume_start = 0
        self._yielded = 0
        self.sampler = _EpochHandle(self)
        self.oversized = int((self.lengths > self.max_frames).sum())
        if self.oversized:
            log.warning("%d items are longer than max_frames=%d and get a batch each (crop them with max_frames_per_item)",
                        self.oversized, self.max_frames)
        self._num_global = len(self._pack(self._order(0)))

    # ------------------------------------------------------------------ planning
    def _order(self, epoch: int) -> np.ndarray:
        buckets = self.lengths // self.bucket_width
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch, 0])
            tie = rng.permutation(len(self.lengths))
        else:
            tie = np.arange(len(self.lengths))
        return np.lexsort((tie, self.lengths if not self.shuffle else tie, buckets))

    def _pack(self, order: np.ndarray) -> list[list[int]]:
        buckets = self.lengths // self.bucket_width
        caps: dict[int, int] = {}
        for b, n in zip(buckets.tolist(), self.lengths.tolist()):
            caps[b] = max(caps.get(b, 0), n)
        batches: list[list[int]] = []
        cur: list[int] = []
        cap = 0
        for i in order.tolist():
            c = max(cap, caps[int(buckets[i])], 1)
            full = self.max_batch_size is not None and len(cur) >= self.max_batch_size
            if cur and (c * (len(cur) + 1) > self.max_frames or full):
                batches.append(cur)
                cur, c = [], max(caps[int(buckets[i])], 1)
            cur.append(i)
            cap = c
        if cur:
            batches.append(cur)
        return batches

    def global_batches(self, epoch: int) -> list[list[int]]:
        """All ranks' batches of ``epoch``, in order, before dealing."""
        batches = [[int(self.index[i]) for i in b] for b in self._pack(self._order(epoch))]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch, 1])
            batches = [batches[k] for k in rng.permutation(len(batches))]
        r = self.num_replicas
        if r > 1 and batches:
            if self.drop_last:
                batches = batches[: len(batches) - len(batches) % r]
            else:
                pad = (-len(batches)) % r
                batches = batches + [batches[k % len(batches)] for k in range(pad)]
        return batches

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's batches of ``epoch`` (default: the current one)."""
        return self.global_batches(self.epoch if epoch is None else epoch)[self.rank::self.num_replicas]

    # ------------------------------------------------------------------ Sampler API
    def __len__(self) -> int:
        n, r = self._num_global, self.num_replicas
        if r == 1:
            return n
        return n // r if self.drop_last else -(-n // r)

    def __iter__(self) -> Iterator[list]:
        epoch = self.epoch
        start = self.resume_offset()
        self._resume_epoch, self._resume_start = None, 0
        mine = self.batches(epoch)
        self._yielded = start
        for batch in mine[start:]:
            self._yielded += 1
            yield [(i, epoch) for i in batch] if self.with_epoch else list(batch)

    def resume_offset(self) -> int:
        """Batches the next iteration skips (non-zero only right after :meth:`load_state_dict`)."""
        return self._resume_start if self._resume_epoch == self.epoch else 0

    def set_epoch(self, epoch: int) -> None:
        epoch = int(epoch)
        if epoch != self.epoch:
            self._yielded = 0
        self.epoch = epoch

    # ------------------------------------------------------------------ resuming
    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """``consumed``: batches of this epoch already used (default: those this sampler yielded)."""
        return {"epoch": self.epoch, "consumed": int(self._yielded if consumed is None else consumed),
                "seed": self.seed, "num_batches": len(self), "num_replicas": self.num_replicas, "rank": self.rank}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue epoch ``state["epoch"]`` after its first ``state["consumed"]`` batches."""
        same = (state.get("seed") == self.seed and state.get("num_batches") == len(self)
                and state.get("num_replicas") == self.num_replicas)
        self.epoch = int(state["epoch"])
        self._yielded = 0
        if not same:
            log.warning("sampler state does not match this data (seed/length/replicas changed): epoch %d restarts", self.epoch)
            return
        self._resume_epoch = self.epoch
        self._resume_start = min(int(state.get("consumed", 0)), len(self))
        self._yielded = self._resume_start
