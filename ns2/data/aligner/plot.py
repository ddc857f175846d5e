"""Alignment plots: the mel spectrogram above the soft attention with the hard (MAS) path drawn over it.

Uses matplotlib's Agg backend (no display needed). :func:`plot_alignment` returns the figure (and
writes a PNG atomically when ``path`` is given); :func:`plot_utterance` aligns one manifest utterance
with a trained aligner and draws it (``python -m ns2.data.aligner plot``); :func:`figure_to_array`
renders a figure to an RGB array for loggers that take images.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

__all__ = ["plot_alignment", "plot_utterance", "figure_to_array"]


def _np(x) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    while x.ndim > 2 and x.shape[0] == 1:
        x = x[0]
    return x


def plot_alignment(attn_soft, attn_hard=None, mel=None, tokens: Sequence[str] | None = None,
                   title: str | None = None, path: str | os.PathLike | None = None, dpi: int = 100):
    """Draw one utterance's alignment.

    attn_soft: [T, L] (or [1, T, L]) soft attention; attn_hard: [T, L] one-hot path (optional);
    mel: [n_mels, T] (optional); tokens: L labels for the token axis (optional). Inputs may be
    tensors or arrays, already cropped to the utterance's valid frames and tokens.
    Returns a matplotlib ``Figure``; with ``path`` the PNG is also written (atomically).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    soft = _np(attn_soft)
    if soft is None or soft.ndim != 2:
        raise ValueError(f"plot_alignment: attn_soft must be shaped [T, L], got {None if soft is None else soft.shape}")
    T, L = soft.shape
    hard = _np(attn_hard)
    if hard is not None and hard.shape != (T, L):
        raise ValueError(f"plot_alignment: attn_hard must be shaped {(T, L)}, got {hard.shape}")
    spec = _np(mel)
    if spec is not None and (spec.ndim != 2 or spec.shape[1] != T):
        raise ValueError(f"plot_alignment: mel must be shaped [n_mels, {T}], got {spec.shape}")
    if tokens is not None and len(tokens) != L:
        raise ValueError(f"plot_alignment: got {len(tokens)} token labels for {L} tokens")

    rows = 2 if spec is not None else 1
    width = min(max(6.0, T / 25.0), 24.0)
    height = (2.5 if spec is not None else 0.0) + min(max(3.0, L / 6.0), 12.0)
    fig = Figure(figsize=(width, height), dpi=dpi)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [1, 2] if rows == 2 else [1]})[:, 0]
    if spec is not None:
        axes[0].imshow(spec, aspect="auto", origin="lower", interpolation="none", cmap="magma")
        axes[0].set_ylabel("mel bin")
    ax = axes[-1]
    im = ax.imshow(soft.T, aspect="auto", origin="lower", interpolation="none", cmap="viridis", vmin=0.0)
    fig.colorbar(im, ax=list(axes), pad=0.01, fraction=0.03)
    if hard is not None and T:
        frames = np.flatnonzero(hard.sum(1) > 0)
        ax.plot(frames, hard[frames].argmax(1), color="red", linewidth=1.0, drawstyle="steps-mid", alpha=0.8)
    if tokens is not None and L <= 120:
        ax.set_yticks(np.arange(L))
        ax.set_yticklabels(list(tokens), fontsize=max(4, min(9, int(400 / max(L, 1)))))
    ax.set_xlabel("frame")
    ax.set_ylabel("token")
    if title:
        axes[0].set_title(title)
    if path is not None:
        from ns2.utils.io import atomic_open

        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
    return fig


def figure_to_array(fig) -> np.ndarray:
    """Render a matplotlib figure to an RGB array [H, W, 3] uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def plot_utterance(aligner, utt, root: str | os.PathLike, path: str | os.PathLike | None = None, dpi: int = 100):
    """Align one manifest utterance and draw it: its mel above the soft attention over the aligned
    tokens (phones and ``<sil>``), with the hard path in red.

    aligner: anything :func:`~ns2.data.aligner.infer.load_aligner` takes; utt: an
    :class:`~ns2.data.manifest.Utterance` whose audio resolves against ``root``. Returns
    ``(figure, durations)``, the durations being one entry per phoneme of ``utt`` (summing to its frames).
    """
    import torch

    from ns2.data.aligner.infer import load_aligner
    from ns2.data.aligner.stage import _load_item

    al = load_aligner(aligner)
    try:
        ids, wav, frames = _load_item(al, utt, root)
    except ValueError as e:
        raise ValueError(f"utterance {utt.id!r}: {e}") from None
    ids_t = torch.tensor([ids], dtype=torch.long)
    res = al.align_batch(ids_t, torch.ones_like(ids_t, dtype=torch.bool), torch.from_numpy(wav)[None],
                         torch.tensor([len(wav)]), return_output=True)
    out = res.output
    n = int(out.token_lengths[0])
    keep = out.align_mask[0].cpu().tolist()
    labels = [p for p, k in zip(utt.phonemes, keep) if k]
    with torch.no_grad():
        mel = al.mel(torch.from_numpy(wav)[None].to(al.device))[0, :, :frames]
    title = f"{utt.id}  ({frames} frames, {n} aligned tokens, confidence {res.confidence[0]:.2f})"
    fig = plot_alignment(out.attn_soft[0, 0, :frames, :n], out.attn_hard[0, 0, :frames, :n], mel, labels,
                         title=title, path=path, dpi=dpi)
    return fig, res.durations[0]
