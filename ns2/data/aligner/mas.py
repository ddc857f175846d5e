"""Monotonic alignment search (MAS): the most likely monotonic, contiguous text-to-frame path.

Given log-probabilities ``log_p[t, j]`` of frame ``t`` belonging to token ``j`` (``T`` frames, ``L``
tokens, ``T >= L``), MAS finds the path that starts at token 0 on frame 0, ends at token ``L - 1`` on
frame ``T - 1``, and on each frame either stays on its token or moves to the next one, maximising
``sum_t log_p[t, path(t)]``. Every token gets at least one frame and the frames per token sum to ``T``.

Dynamic programme: ``Q[0, 0] = log_p[0, 0]``, ``Q[0, j > 0] = -inf``,
``Q[t, j] = log_p[t, j] + max(Q[t-1, j], Q[t-1, j-1])``; backtrack from ``(T - 1, L - 1)``. Ties prefer
advancing (``j - 1``). Cost ``O(T * L)`` per utterance, compiled with numba.

When ``T < L`` no such path exists; :func:`maximum_path` raises unless ``strict=False``, in which
case those items get a diagonal path (frame ``t`` -> token ``round(t * (L - 1) / (T - 1))``) that
leaves some tokens with 0 frames but still sums to ``T``.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

__all__ = ["mas", "maximum_path", "diagonal_path", "path_to_durations"]

_NEG = -1e30


@numba.njit(cache=True, nogil=True)
def _mas(log_p: np.ndarray, path: np.ndarray) -> None:  # pragma: no cover - compiled
    """log_p: [T, L] float (T >= L >= 1); writes a one-hot path into ``path`` ([T, L], zeros)."""
    T, L = log_p.shape
    q = np.full((T, L), _NEG, dtype=np.float64)
    step = np.zeros((T, L), dtype=np.int8)  # 1 if the best predecessor of (t, j) is (t-1, j-1)
    q[0, 0] = log_p[0, 0]
    for t in range(1, T):
        lo = max(0, L - (T - t))  # tokens that can still reach (T-1, L-1)
        hi = min(L - 1, t)  # tokens reachable from (0, 0)
        for j in range(lo, hi + 1):
            stay = q[t - 1, j]
            move = q[t - 1, j - 1] if j > 0 else _NEG
            if j > 0 and move >= stay:
                q[t, j] = log_p[t, j] + move
                step[t, j] = 1
            else:
                q[t, j] = log_p[t, j] + stay
    j = L - 1
    for t in range(T - 1, -1, -1):
        path[t, j] = 1
        if t > 0 and step[t, j] == 1:
            j -= 1


@numba.njit(cache=True, nogil=True)
def _mas_batch(log_p: np.ndarray, t_lens: np.ndarray, l_lens: np.ndarray, path: np.ndarray) -> None:  # pragma: no cover
    for b in range(log_p.shape[0]):
        _mas(log_p[b, : t_lens[b], : l_lens[b]], path[b, : t_lens[b], : l_lens[b]])


def mas(log_p: np.ndarray) -> np.ndarray:
    """log_p: [T, L] (T >= L >= 1) -> one-hot path [T, L] (int32) of the best monotonic alignment."""
    log_p = np.asarray(log_p, dtype=np.float64)
    if log_p.ndim != 2:
        raise ValueError(f"mas: log_p must be shaped [T, L], got {log_p.shape}")
    T, L = log_p.shape
    if L < 1 or T < L:
        raise ValueError(f"mas: need frames >= tokens >= 1, got {T} frames for {L} tokens")
    path = np.zeros((T, L), dtype=np.int32)
    _mas(np.nan_to_num(log_p, nan=_NEG, neginf=_NEG), path)
    return path


def diagonal_path(T: int, L: int) -> np.ndarray:
    """A monotonic path [T, L] (int32) assigning frame t to token round(t * (L - 1) / max(T - 1, 1))."""
    path = np.zeros((T, L), dtype=np.int32)
    if T and L:
        idx = np.rint(np.arange(T) * (L - 1) / max(T - 1, 1)).astype(np.int64)
        path[np.arange(T), idx] = 1
    return path


def maximum_path(log_p: torch.Tensor, frame_lengths: torch.Tensor, token_lengths: torch.Tensor,
                 strict: bool = True) -> torch.Tensor:
    """Batched MAS over valid regions.

    log_p: [B, T, L] float; frame_lengths, token_lengths: [B] -> path: [B, T, L] (same dtype as
    ``log_p``, on its device), one-hot over tokens on each valid frame, zero on padding.
    Items with ``frames < tokens`` raise ``ValueError`` (or get :func:`diagonal_path` when
    ``strict=False``); items with 0 frames or 0 tokens get an all-zero path.
    """
    if log_p.dim() != 3:
        raise ValueError(f"maximum_path: log_p must be shaped [B, T, L], got {tuple(log_p.shape)}")
    B, T, L = log_p.shape
    t_lens = frame_lengths.detach().cpu().numpy().astype(np.int64).reshape(-1)
    l_lens = token_lengths.detach().cpu().numpy().astype(np.int64).reshape(-1)
    if len(t_lens) != B or len(l_lens) != B:
        raise ValueError(f"maximum_path: lengths must be shaped [{B}], got {len(t_lens)} and {len(l_lens)}")
    if (t_lens > T).any() or (l_lens > L).any() or (t_lens < 0).any() or (l_lens < 0).any():
        raise ValueError(f"maximum_path: lengths exceed the padded shape [{T}, {L}]: frames {t_lens.tolist()}, tokens {l_lens.tolist()}")
    short = (t_lens < l_lens) & (t_lens > 0)
    if strict and short.any():
        b = int(np.flatnonzero(short)[0])
        raise ValueError(f"maximum_path: item {b} has {t_lens[b]} frames for {l_lens[b]} tokens; MAS needs frames >= tokens")
    x = log_p.detach().float().cpu().numpy().astype(np.float64)
    x = np.nan_to_num(x, nan=_NEG, neginf=_NEG, posinf=-_NEG)
    path = np.zeros((B, T, L), dtype=np.int32)
    ok = (t_lens >= l_lens) & (l_lens > 0)
    idx = np.flatnonzero(ok)
    if len(idx):
        sub = np.zeros((len(idx), T, L), dtype=np.int32)
        _mas_batch(np.ascontiguousarray(x[idx]), t_lens[idx], l_lens[idx], sub)
        path[idx] = sub
    for b in np.flatnonzero(short):
        path[b, : t_lens[b], : l_lens[b]] = diagonal_path(int(t_lens[b]), int(l_lens[b]))
    return torch.from_numpy(path).to(device=log_p.device, dtype=log_p.dtype)


def path_to_durations(path: torch.Tensor) -> torch.Tensor:
    """path: [..., T, L] one-hot -> durations: [..., L] (long), frames per token."""
    return path.sum(dim=-2).round().long()
