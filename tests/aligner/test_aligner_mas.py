import itertools

import numpy as np
import pytest
import torch

from ns2.data.aligner.mas import diagonal_path, mas, maximum_path, path_to_durations


def brute_force(log_p: np.ndarray) -> tuple[float, np.ndarray]:
    """Best monotonic path by enumerating every split of T frames into L non-empty runs."""
    T, L = log_p.shape
    best, best_path = -np.inf, None
    for cuts in itertools.combinations(range(1, T), L - 1):
        bounds = (0, *cuts, T)
        path = np.zeros((T, L), dtype=np.int32)
        for j in range(L):
            path[bounds[j]:bounds[j + 1], j] = 1
        score = float((log_p * path).sum())
        if score > best:
            best, best_path = score, path
    return best, best_path


def test_mas_equals_brute_force_on_random_matrices():
    rng = np.random.default_rng(0)
    for _ in range(200):
        L = int(rng.integers(1, 6))
        T = int(rng.integers(L, 10))
        log_p = np.log(rng.dirichlet(np.ones(L), size=T))
        score, ref = brute_force(log_p)
        path = mas(log_p)
        assert np.isclose((log_p * path).sum(), score)
        assert np.array_equal(path, ref)


def test_path_is_monotonic_contiguous_and_covers_every_token():
    rng = np.random.default_rng(1)
    for _ in range(50):
        L = int(rng.integers(1, 30))
        T = int(rng.integers(L, 120))
        path = mas(rng.standard_normal((T, L)))
        assert (path.sum(1) == 1).all()  # one token per frame
        tokens = path.argmax(1)
        assert tokens[0] == 0 and tokens[-1] == L - 1
        assert set(np.diff(tokens)) <= {0, 1}
        assert (path.sum(0) >= 1).all() and path.sum() == T


def test_batched_maximum_path_respects_lengths_and_matches_single_runs():
    g = torch.Generator().manual_seed(2)
    log_p = torch.randn(5, 40, 12, generator=g)
    frames = torch.tensor([40, 13, 25, 12, 30])
    tokens = torch.tensor([12, 5, 12, 12, 1])
    path = maximum_path(log_p, frames, tokens)
    d = path_to_durations(path)
    for b in range(5):
        t, n = int(frames[b]), int(tokens[b])
        assert path[b, t:].sum() == 0 and path[b, :, n:].sum() == 0
        assert np.array_equal(path[b, :t, :n].numpy().astype(np.int32), mas(log_p[b, :t, :n].numpy()))
        assert int(d[b].sum()) == t and (d[b, :n] >= 1).all() and (d[b, n:] == 0).all()


def test_random_lengths_durations_sum_to_frames():
    rng = np.random.default_rng(3)
    for _ in range(20):
        B = int(rng.integers(1, 6))
        tokens = rng.integers(1, 20, size=B)
        frames = tokens + rng.integers(0, 50, size=B)
        x = torch.from_numpy(rng.standard_normal((B, int(frames.max()), int(tokens.max()))).astype(np.float32))
        d = path_to_durations(maximum_path(x, torch.from_numpy(frames), torch.from_numpy(tokens)))
        assert d.sum(-1).tolist() == frames.tolist()


def test_too_few_frames():
    with pytest.raises(ValueError, match="frames >= tokens"):
        mas(np.zeros((3, 5)))
    x = torch.zeros(2, 6, 8)
    with pytest.raises(ValueError, match="item 1 has 3 frames for 8 tokens"):
        maximum_path(x, torch.tensor([6, 3]), torch.tensor([4, 8]))
    path = maximum_path(x, torch.tensor([6, 3]), torch.tensor([4, 8]), strict=False)
    assert path[1].sum() == 3 and path_to_durations(path)[1].sum() == 3
    assert np.array_equal(path[1, :3, :8].numpy().astype(np.int32), diagonal_path(3, 8))


def test_masked_entries_are_avoided_when_possible():
    log_p = np.zeros((6, 3))
    log_p[2:4, 0] = -1e4  # frames 2-3 must not stay on token 0
    path = mas(log_p)
    assert path[2:4, 0].sum() == 0
