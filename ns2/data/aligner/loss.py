"""Aligner losses (One TTS Alignment To Rule Them All, Badlani et al. 2022; RAD-TTS).

* :func:`forward_sum_loss`: the likelihood of all monotonic alignments of the text to the frames,
  summed with the CTC forward algorithm. Each utterance's attention log-probabilities over its ``L``
  tokens get a blank class prepended (a constant ``blank_logprob`` before renormalisation), the
  target sequence is ``1..L`` (every token, in order), and ``torch.nn.functional.ctc_loss`` sums over
  all monotonic paths. Padded tokens are excluded from the renormalisation and padded frames/tokens
  from the recursion, so an item's loss does not depend on how it was padded. ``reduction="mean"``
  divides each item's negative log-likelihood by its token count and averages over the batch, as
  CTC does.
* :func:`binarization_loss`: ``KL(hard || soft)`` with a one-hot hard alignment reduces to
  ``-sum(hard * log soft) / sum(hard)``, the mean negative log soft-attention on the MAS path; it
  pulls the soft attention toward the hard one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["forward_sum_loss", "binarization_loss"]

_MASKED = -1e4


def forward_sum_loss(attn_logprob: torch.Tensor, token_lengths: torch.Tensor, frame_lengths: torch.Tensor,
                     blank_logprob: float = -1.0) -> torch.Tensor:
    """attn_logprob: [B, 1, T, L]; token_lengths, frame_lengths: [B] -> scalar loss.

    Items with fewer frames than tokens have no monotonic alignment; their infinite loss is zeroed
    (``zero_infinity``) rather than poisoning the batch.
    """
    if attn_logprob.dim() != 4 or attn_logprob.shape[1] != 1:
        raise ValueError(f"forward_sum_loss: attn_logprob must be shaped [B, 1, T, L], got {tuple(attn_logprob.shape)}")
    B, _, T, L = attn_logprob.shape
    token_lengths = token_lengths.to(attn_logprob.device).long()
    frame_lengths = frame_lengths.to(attn_logprob.device).long()
    x = attn_logprob[:, 0].float()  # [B, T, L]
    key_pad = torch.arange(L, device=x.device)[None, :] >= token_lengths[:, None]  # [B, L]
    x = x.masked_fill(key_pad[:, None, :], _MASKED)
    x = F.pad(x, (1, 0), value=blank_logprob)  # [B, T, L + 1], class 0 = blank
    x = torch.log_softmax(x, dim=-1)
    targets = torch.arange(1, L + 1, device=x.device)[None].expand(B, L)  # [B, L]
    return F.ctc_loss(
        x.transpose(0, 1), targets, input_lengths=frame_lengths, target_lengths=token_lengths,
        blank=0, reduction="mean", zero_infinity=True,
    )


def binarization_loss(attn_hard: torch.Tensor, attn_soft: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """attn_hard, attn_soft: [B, 1, T, L] (hard one-hot on valid frames, zero on padding) -> scalar."""
    if attn_hard.shape != attn_soft.shape:
        raise ValueError(f"binarization_loss: attn_hard {tuple(attn_hard.shape)} and attn_soft {tuple(attn_soft.shape)} must match")
    hard = attn_hard.detach().float()
    log_soft = torch.log(attn_soft.float().clamp(min=eps))
    return -(hard * log_soft).sum() / hard.sum().clamp(min=1.0)
