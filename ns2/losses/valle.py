"""VALL-E's losses: token cross-entropy of the AR decoder (codebook 1 and EOS) and of the NAR decoder
(one codebook ``j`` per step), each a mean over the tokens it covers, never over padding.

* AR: the audio segment ``[BOS, c_1..c_T]`` predicts ``[c_1..c_T, EOS]`` (:func:`ar_sequences`); its
  loss covers the ``T + 1`` targets of each item (optionally not those inside the prompt span).
* NAR: codebook ``j``'s logits at the frames after the prompt prefix (the prompt is given, not predicted).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ar_sequences", "masked_cross_entropy"]


def ar_sequences(codes0: torch.Tensor, frame_mask: torch.Tensor, bos: int, eos: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The AR decoder's inputs and targets from codebook-1 codes.

    codes0: [B, T] (padded); frame_mask: [B, T] (right padding) -> (inputs [B, T + 1] = BOS then the
    codes, targets [B, T + 1] = the codes then EOS at each item's end, mask [B, T + 1] of the valid
    targets). Padded entries are 0.
    """
    b, t = codes0.shape
    lengths = frame_mask.long().sum(-1)
    codes0 = codes0.long() * frame_mask
    inputs = torch.cat([torch.full((b, 1), bos, dtype=torch.long, device=codes0.device), codes0], dim=1)
    targets = torch.cat([codes0, torch.zeros(b, 1, dtype=torch.long, device=codes0.device)], dim=1)
    targets[torch.arange(b, device=codes0.device), lengths] = eos
    mask = torch.arange(t + 1, device=codes0.device)[None, :] <= lengths[:, None]
    return inputs * mask, targets, mask


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and top-1 accuracy over the tokens where ``mask`` is true.

    logits: [B, T, V]; targets: [B, T] (any value where masked); mask: [B, T] -> (loss, accuracy), scalars
    in float32. No valid token at all gives a zero loss that still has a gradient path.
    """
    mask = mask.bool()
    n = mask.sum()
    if int(n) == 0:
        return logits.float().sum() * 0.0, logits.new_zeros((), dtype=torch.float32)
    sel = logits[mask].float()
    tgt = targets[mask].long()
    loss = F.cross_entropy(sel, tgt)
    acc = (sel.argmax(-1) == tgt).float().mean()
    return loss, acc
