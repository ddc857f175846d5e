"""Fine-tuning from a trained NS2 checkpoint (``experiment=ns2/finetune``, ``model.init_from=``): the
checkpoint a run starts from, the checks that the run's network and codec are the checkpoint's, and the
freezing of every box outside ``model.trainable``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ns2.codec.base import Codec
from ns2.inference.checkpoint import plain

__all__ = ["freeze_except", "load_base", "same_codec", "check_base"]


def freeze_except(net: nn.Module, trainable: Sequence[str]) -> list[str]:
    """Freeze every parameter of ``net`` outside the submodules named in ``trainable`` (direct children
    such as ``prompt_encoder``, ``diffusion``); returns the frozen children's names. Raises ValueError
    for a name that is not a child holding parameters."""
    children = {name: m for name, m in net.named_children() if any(True for _ in m.parameters())}
    unknown = sorted(set(trainable) - set(children))
    if unknown or not trainable:
        raise ValueError(f"NS2Lit: trainable {sorted(trainable)}: expected a non-empty subset of {sorted(children)}")
    frozen = []
    for name, m in children.items():
        keep = name in trainable
        m.requires_grad_(keep)
        if not keep:
            frozen.append(name)
    return frozen


def load_base(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The NS2 checkpoint (training ``.ckpt`` or exported ``.pt``) a fine-tune starts from, and its
    network's constructor arguments."""
    from ns2.inference.checkpoint import _read, load_ns2_checkpoint

    return load_ns2_checkpoint(path), plain(_read(Path(path), "cpu")["ns2"]["net"])


def same_codec(a: Codec, kwargs: Any, state: Mapping[str, Any]) -> bool:
    """Whether codec ``a`` has constructor ``kwargs`` and weights ``state``."""
    own = a.state_dict()
    return plain(kwargs) == plain(a.kwargs) and set(state) == set(own) and all(
        torch.equal(state[k].to(v.device), v) for k, v in own.items() if isinstance(state.get(k), torch.Tensor))


def check_base(base: Any, base_kw: Mapping[str, Any], kw: Mapping[str, Any], codec: Codec, path: Any) -> None:
    if plain(dict(base_kw)) != plain(dict(kw)):
        raise ValueError(f"NS2Lit: init_from={path} has the network {dict(base_kw)}, not model.net {dict(kw)}; "
                         "set model.net=null to take the checkpoint's")
    if codec is not base.codec and not same_codec(codec, base.codec.kwargs, base.codec.state_dict()):
        raise ValueError(f"NS2Lit: init_from={path} was trained with another codec than the one given; "
                         "drop codec.source to take the checkpoint's")
