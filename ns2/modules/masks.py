"""Padding masks: the one convention used by every ns2 module.

A mask is a bool tensor that is **true on valid positions** and false on padding: ``mask: [B, T]``.
Modules zero their outputs at padded positions, never attend to padded keys, and convolve padded
inputs as zeros, so a sample's outputs do not depend on what it is batched with.
"""
from __future__ import annotations

import torch

__all__ = ["sequence_mask", "lengths_of", "apply_mask", "check_mask", "attention_bias_mask"]


def sequence_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """lengths: [B] (int) -> mask: [B, T] bool, true where t < length; T = max_len or max(lengths)."""
    if lengths.dim() != 1:
        raise ValueError(f"lengths must have shape [B], got {tuple(lengths.shape)}")
    t = int(lengths.max().item()) if max_len is None else int(max_len)
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


def lengths_of(mask: torch.Tensor) -> torch.Tensor:
    """mask: [B, T] -> lengths [B] (long): the number of valid positions per item."""
    return mask.long().sum(-1)


def apply_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded positions of a channel-first tensor. x: [B, C, T], mask: [B, T] -> [B, C, T]."""
    if mask is None:
        return x
    return x * mask[:, None, :].to(x.dtype)


def check_mask(mask: torch.Tensor | None, x: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """A bool mask [B, T] matching x: [B, ..., T] (channel-first); None means every position is valid."""
    b, t = x.shape[0], x.shape[-1]
    if mask is None:
        return torch.ones(b, t, dtype=torch.bool, device=x.device)
    if mask.dim() != 2 or mask.shape[0] != b or mask.shape[1] != t:
        raise ValueError(f"{name} must have shape [B, T] = [{b}, {t}], got {tuple(mask.shape)}")
    return mask.to(device=x.device, dtype=torch.bool)


def attention_bias_mask(key_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The boolean ``attn_mask`` for scaled_dot_product_attention from a key mask [B, Tk].

    Returns (attn_mask [B, 1, 1, Tk], has_keys [B]). An item without any valid key would produce NaN;
    its mask is opened to all keys and ``has_keys`` is false, so the caller zeros its output.
    """
    has_keys = key_mask.any(-1)
    safe = key_mask | ~has_keys[:, None]
    return safe[:, None, None, :], has_keys
