"""Figures of validation examples, rendered to RGB arrays for the loggers (:mod:`ns2.lit.media`)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["attention_image", "log_mel", "mel_image", "synthesis_image"]


def log_mel(wav: np.ndarray, mel: nn.Module) -> np.ndarray:
    """``mel(wav)`` of a waveform [S] on the module's device -> [n_mels, frames] (NumPy)."""
    device = next((b.device for b in mel.buffers()), torch.device("cpu"))
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).to(device)[None]
    return mel(x)[0].cpu().numpy()


def _figure(height: float, dpi: int, width: float = 9.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    return fig, FigureCanvasAgg(fig)


def _mel_panels(fig, specs: Sequence[tuple[np.ndarray, str]], rows: int) -> None:
    """One panel per (spectrogram [n_mels, frames], title), in the first rows, on one colour scale."""
    lo = min(float(s.min()) for s, _ in specs)
    hi = max(float(s.max()) for s, _ in specs)
    for k, (spec, title) in enumerate(specs):
        ax = fig.add_subplot(rows, 1, k + 1)
        ax.imshow(spec, origin="lower", aspect="auto", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("mel bin")


def _render(fig, canvas) -> np.ndarray:
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def mel_image(specs: Sequence[tuple[np.ndarray, str]]) -> np.ndarray:
    """Log-mel panels (spectrogram [n_mels, frames], title), one above the other -> RGB [H, W, 3]."""
    fig, canvas = _figure(2.5 * len(specs), 80, 8.0)
    _mel_panels(fig, specs, len(specs))
    return _render(fig, canvas)


def synthesis_image(ref_mel: np.ndarray, syn_mel: np.ndarray, log_f0: np.ndarray, log_f0_hat: np.ndarray,
                    durations: np.ndarray, durations_hat: np.ndarray) -> np.ndarray:
    """Mel of the reference [n_mels, F] and the synthesis, log-F0 contours [T] and per-phoneme durations
    [L] (reference and predicted) -> RGB [H, W, 3]."""
    fig, canvas = _figure(8.0, 70)
    _mel_panels(fig, ((ref_mel, "reference (codec resynthesis)"), (syn_mel, "synthesis")), 4)
    ax = fig.add_subplot(4, 1, 3)
    ax.plot(np.exp(log_f0), label="reference")
    ax.plot(np.exp(log_f0_hat), label="predicted")
    ax.set_ylabel("F0 (Hz)")
    ax.set_xlabel("frame")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(4, 1, 4)
    idx = np.arange(len(durations))
    ax.bar(idx - 0.2, durations, width=0.4, label="reference")
    ax.bar(idx + 0.2, durations_hat[: len(durations)], width=0.4, label="predicted")
    ax.set_ylabel("frames")
    ax.set_xlabel("phoneme")
    ax.legend(fontsize=8)
    return _render(fig, canvas)


def attention_image(weights: np.ndarray, n_text: int, n_prompt: int, dpi: int = 80) -> np.ndarray:
    """A heat map of attention weights [S, S] over ``[text | audio]`` (rows: queries) with the text and
    prompt boundaries marked -> RGB [H, W, 3] uint8."""
    fig, canvas = _figure(6.0, dpi, width=7.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(weights, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis")
    for edge, colour in ((n_text, "w"), (n_text + n_prompt, "r")):
        ax.axvline(edge - 0.5, color=colour, lw=0.8)
        ax.axhline(edge - 0.5, color=colour, lw=0.8)
    ax.set(xlabel="key (text | prompt | generated)", ylabel="query", title="AR attention, last layer")
    return _render(fig, canvas)
