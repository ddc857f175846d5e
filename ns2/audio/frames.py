"""The codec frame grid: frame ``j`` covers samples ``[j * hop, (j + 1) * hop)``."""
from __future__ import annotations

import numpy as np

__all__ = ["frame_centres", "num_frames"]


def num_frames(num_samples: int, hop_length: int) -> int:
    """Codec frames covering ``num_samples`` samples: ``ceil(num_samples / hop_length)``."""
    return -(-int(num_samples) // int(hop_length))


def frame_centres(num_frames: int, hop_length: int, sample_rate: int) -> np.ndarray:
    """Times (s) of the frame centres: ``[T]``."""
    return (np.arange(num_frames, dtype=np.float64) + 0.5) * hop_length / sample_rate
