"""Length regulation (phoneme -> frame level) and the pitch embedding of NaturalSpeech 2.

* :class:`LengthRegulator` repeats every phoneme's hidden state for its duration in frames:
  h [B, H, L] + durations [B, L] (int frames) -> c [B, H, T], frame_mask [B, T].
* :class:`PitchEmbedding` embeds a frame-level log-F0 contour and is added to the frame hiddens,
  c' = c + E(log_f0): the condition of the diffusion model. Bucketed embedding (FastSpeech 2): log-F0
  is quantised into ``n_bins`` log-spaced buckets between ``f0_min`` and ``f0_max`` Hz, each bucket a
  learned vector. log-F0 is the natural log of Hz; feed a continuous contour (unvoiced frames
  interpolated, as the pitch predictor is trained to predict), so that training (ground-truth pitch)
  and inference (predicted pitch) see the same kind of input. Non-finite values (log 0 = −inf for
  unvoiced frames left at 0 Hz) fall into bucket 0.
* :func:`durations_from_log` turns the duration predictor's log(1 + d) into integer frames.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ns2.modules.masks import apply_mask, check_mask

__all__ = ["LengthRegulator", "PitchEmbedding", "durations_from_log", "log_duration_target"]


def log_duration_target(durations: torch.Tensor) -> torch.Tensor:
    """The duration predictor's scale: log(1 + d), d in frames. [B, L] -> [B, L] float."""
    return torch.log1p(durations.float())


def durations_from_log(
    log_dur: torch.Tensor, mask: torch.Tensor | None = None, scale: float = 1.0, min_total: int = 1
) -> torch.Tensor:
    """log(1 + d) [B, L] -> integer frames [B, L] (long): round(scale · (e^y − 1)) clamped at 0, zero at
    padded phonemes; an item whose total would fall under ``min_total`` frames gets the difference on
    its first phoneme (so that every item has frames to synthesise)."""
    d = torch.clamp(torch.round(scale * torch.expm1(log_dur.float())), min=0).long()
    if mask is not None:
        d = d * check_mask(mask, log_dur, "phoneme_mask").long()
    if min_total > 0 and d.shape[-1]:
        short = (min_total - d.sum(-1)).clamp(min=0)
        d[:, 0] += short
    return d


class LengthRegulator(nn.Module):
    """Expand phoneme hiddens by integer durations (no parameters).

    forward(h [B, H, L], durations [B, L] int frames, phoneme_mask [B, L] | None, max_frames int | None)
    -> (c [B, H, T], frame_mask [B, T]); T = max_frames or the longest item's total. Durations of padded
    phonemes count as 0; frames past an item's total are padding (zero). With ``max_frames`` shorter
    than an item's total the item is cropped.
    """

    def forward(
        self,
        h: torch.Tensor,
        durations: torch.Tensor,
        phoneme_mask: torch.Tensor | None = None,
        max_frames: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if durations.shape != (h.shape[0], h.shape[-1]):
            raise ValueError(f"durations must have shape [B, L] = [{h.shape[0]}, {h.shape[-1]}], got {tuple(durations.shape)}")
        if durations.is_floating_point():
            raise ValueError("durations must be integer frames (round predicted durations with durations_from_log)")
        if durations.numel() and int(durations.min()) < 0:
            raise ValueError("durations must be >= 0")
        mask = check_mask(phoneme_mask, h, "phoneme_mask")
        d = durations.long() * mask.long()
        ends = d.cumsum(-1)  # [B, L]
        totals = ends[:, -1] if d.shape[-1] else torch.zeros(d.shape[0], dtype=torch.long, device=d.device)
        t = int(totals.max()) if max_frames is None and totals.numel() else int(max_frames or 0)
        frames = torch.arange(t, device=h.device)
        frame_mask = frames[None, :] < totals[:, None]  # [B, T]
        idx = torch.searchsorted(ends, frames[None, :].expand(d.shape[0], t).contiguous(), right=True)
        idx = idx.clamp(max=max(h.shape[-1] - 1, 0))  # [B, T] phoneme of every frame
        c = torch.gather(h, 2, idx[:, None, :].expand(-1, h.shape[1], -1))
        return apply_mask(c, frame_mask), frame_mask


class PitchEmbedding(nn.Module):
    """Bucketed log-F0 embedding. forward(log_f0 [B, T], frame_mask [B, T] | None) -> [B, H, T].

    Args:
        hidden: H. n_bins: buckets (n_bins − 1 log-spaced boundaries in [f0_min, f0_max] Hz).
        f0_min, f0_max: the covered range (the defaults span speech and singing).
    """

    def __init__(self, hidden: int, n_bins: int = 256, f0_min: float = 50.0, f0_max: float = 1100.0) -> None:
        super().__init__()
        if not 0 < f0_min < f0_max or n_bins < 2:
            raise ValueError(f"need 0 < f0_min < f0_max and n_bins >= 2, got {f0_min}, {f0_max}, {n_bins}")
        self.register_buffer("boundaries", torch.linspace(math.log(f0_min), math.log(f0_max), n_bins - 1), persistent=False)
        self.embedding = nn.Embedding(n_bins, hidden)

    def buckets(self, log_f0: torch.Tensor) -> torch.Tensor:
        """log_f0 [B, T] -> bucket ids [B, T] (long); non-finite values -> 0."""
        x = torch.where(torch.isfinite(log_f0), log_f0.float(), torch.full_like(log_f0.float(), -math.inf))
        return torch.bucketize(x, self.boundaries)

    def forward(self, log_f0: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        if log_f0.dim() != 2:
            raise ValueError(f"log_f0 must be [B, T], got {tuple(log_f0.shape)}")
        e = self.embedding(self.buckets(log_f0)).transpose(1, 2)  # [B, H, T]
        return apply_mask(e, None if frame_mask is None else check_mask(frame_mask, log_f0, "frame_mask"))
