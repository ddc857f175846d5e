"""Building blocks of the DAC-style codec: the Snake activation and weight-normalised convolutions.

Weight normalisation uses ``torch.nn.utils.parametrizations.weight_norm`` (``dim=0``, as the official
DAC code does with the legacy ``torch.nn.utils.weight_norm``). Its state-dict names are
``<conv>.parametrizations.weight.original0`` (the magnitude g) and ``...original1`` (the direction v);
official DAC checkpoints store the same tensors as ``<conv>.weight_g`` / ``<conv>.weight_v``.
:class:`WNConv1d` and :class:`WNConvTranspose1d` accept both spellings when a state dict is loaded, and
:func:`to_legacy_weight_norm_names` converts ours back to the official ones.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

__all__ = [
    "Snake1d",
    "WNConv1d",
    "WNConvTranspose1d",
    "from_legacy_weight_norm_names",
    "remove_weight_norm",
    "snake",
    "to_legacy_weight_norm_names",
]

_LEGACY_TO_PARAM = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}


def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Snake activation ``x + sin²(αx) / α`` (α per channel).

    x: [B, C, T]; alpha: [1, C, 1]. The 1e-9 keeps α = 0 finite, exactly as in DAC.
    """
    return x + torch.sin(alpha * x).pow(2) * (alpha + 1e-9).reciprocal()


class Snake1d(nn.Module):
    """Snake with one learned frequency α per channel (initialised to 1). x: [B, C, T] -> [B, C, T]."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return snake(x, self.alpha)

    def extra_repr(self) -> str:
        return f"channels={self.alpha.shape[1]}"


class _LegacyWeightNormNames:
    """Mixin: let ``load_state_dict`` read the legacy ``weight_g``/``weight_v`` names of this conv."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D401 - torch hook
        for legacy, ours in _LEGACY_TO_PARAM.items():
            key = prefix + legacy
            if key in state_dict and prefix + ours not in state_dict:
                state_dict[prefix + ours] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class WNConv1d(_LegacyWeightNormNames, nn.Conv1d):
    """``nn.Conv1d`` with weight normalisation over the output channels (dim 0). x: [B, C_in, T]."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        weight_norm(self, name="weight", dim=0)


class WNConvTranspose1d(_LegacyWeightNormNames, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with weight normalisation over dim 0 (the *input* channels, like DAC)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        weight_norm(self, name="weight", dim=0)


def from_legacy_weight_norm_names(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``a.weight_g`` / ``a.weight_v`` -> ``a.parametrizations.weight.original0`` / ``original1``."""
    out = {}
    for key, value in state_dict.items():
        head, _, leaf = key.rpartition(".")
        if leaf in _LEGACY_TO_PARAM:
            key = f"{head}.{_LEGACY_TO_PARAM[leaf]}" if head else _LEGACY_TO_PARAM[leaf]
        out[key] = value
    return out


def to_legacy_weight_norm_names(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`from_legacy_weight_norm_names` (official DAC spelling)."""
    out = {}
    for key, value in state_dict.items():
        for legacy, ours in _LEGACY_TO_PARAM.items():
            if key == ours or key.endswith("." + ours):
                key = key[: len(key) - len(ours)] + legacy
                break
        out[key] = value
    return out


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Bake g·v/‖v‖ into plain ``weight`` tensors in place (faster inference; state-dict names change)."""
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module
