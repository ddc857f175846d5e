"""Frame-budget bucketing: budget, determinism, resume, distributed shards."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ns2.data.sampler import FrameBucketSampler


def lengths(n: int = 300, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(40, 900, size=n).tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 600), min_size=1, max_size=200), st.integers(100, 3000), st.integers(0, 5),
       st.sampled_from([None, 1, 7, 50]))
def test_budget_and_coverage(lens, max_frames, epoch, width):
    s = FrameBucketSampler(lens, max_frames, seed=1, bucket_width=width)
    s.set_epoch(epoch)
    batches = list(s)
    assert len(batches) == len(s)
    for b in batches:
        assert len(b) == 1 or max(lens[i] for i in b) * len(b) <= max_frames
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lens)))


def test_deterministic_per_epoch_and_constant_length():
    lens = lengths()
    a, b = FrameBucketSampler(lens, 4000, seed=3), FrameBucketSampler(lens, 4000, seed=3)
    sizes = set()
    epochs = []
    for e in range(4):
        a.set_epoch(e), b.set_epoch(e)
        ea, eb = list(a), list(b)
        assert ea == eb
        epochs.append(ea)
        sizes.add(len(ea))
    assert sizes == {len(a)}
    assert epochs[0] != epochs[1]
    assert list(FrameBucketSampler(lens, 4000, seed=4)) != epochs[0]


def test_shuffle_off_is_length_ordered():
    lens = lengths(100)
    s = FrameBucketSampler(lens, 3000, shuffle=False, bucket_width=1)
    flat = [i for b in s for i in b]
    assert [lens[i] for i in flat] == sorted(lens)
    assert list(s) == list(FrameBucketSampler(lens, 3000, shuffle=False, bucket_width=1))


def test_oversized_items_and_batch_cap():
    s = FrameBucketSampler([100, 5000, 120, 6000, 90], 1000, shuffle=False)
    batches = list(s)
    assert [1] in batches and [3] in batches
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    capped = FrameBucketSampler([10] * 50, 1000, max_batch_size=8)
    assert max(len(b) for b in capped) == 8


def test_resume_mid_epoch():
    lens = lengths()
    s = FrameBucketSampler(lens, 4000, seed=7)
    s.set_epoch(2)
    full = list(s)
    it = iter(s)
    seen = [next(it) for _ in range(5)]
    assert seen == full[:5]
    state = s.state_dict()
    assert state["epoch"] == 2 and state["consumed"] == 5
    fresh = FrameBucketSampler(lens, 4000, seed=7)
    fresh.load_state_dict(state)
    fresh.set_epoch(2)  # what Lightning does at the start of the resumed epoch
    assert list(fresh) == full[5:]
    assert list(fresh) == full  # the epoch after the resumed part: whole again
    fresh.load_state_dict(state)
    fresh.set_epoch(3)  # moved on: no skipping
    assert len(list(fresh)) == len(s)
    mismatched = FrameBucketSampler(lens[:-10], 4000, seed=7)
    mismatched.load_state_dict(state)
    assert len(list(mismatched)) == len(mismatched)


@pytest.mark.parametrize("drop_last", [True, False])
def test_ranks_disjoint_and_equal(drop_last):
    lens = lengths(301)
    shards = [FrameBucketSampler(lens, 2500, seed=5, num_replicas=3, rank=r, drop_last=drop_last) for r in range(3)]
    for s in shards:
        s.set_epoch(1)
    got = [list(s) for s in shards]
    assert len({len(g) for g in got}) == 1 and len(got[0]) == len(shards[0])
    ids = [[i for b in g for i in b] for g in got]
    union = set().union(*map(set, ids))
    if drop_last:
        assert sum(len(x) for x in ids) == len(union)  # no item on two ranks
    else:
        assert union == set(range(len(lens)))


def test_with_epoch_and_lightning_handle():
    s = FrameBucketSampler([10, 20, 30], 100, with_epoch=True)
    s.sampler.set_epoch(4)  # Lightning calls set_epoch on batch_sampler.sampler
    assert s.epoch == 4
    (batch,) = list(s)
    assert sorted(batch) == [(0, 4), (1, 4), (2, 4)]
    with pytest.raises(ValueError, match="rank"):
        FrameBucketSampler([1], 10, num_replicas=2, rank=2)
