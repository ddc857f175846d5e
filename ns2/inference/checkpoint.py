"""The NaturalSpeech 2 checkpoint contract: what :class:`~ns2.lit.ns2.NS2Lit` writes, and its loader for synthesis.

A Lightning checkpoint of :class:`~ns2.lit.ns2.NS2Lit` (``ns2 train experiment=ns2/...``) carries, besides
Lightning's own entries (``state_dict``, optimiser and scheduler states, ``hyper_parameters``...), one
self-contained record under ``checkpoint["ns2"]``, made of plain containers and tensors only::

    {"kind": "ns2", "version": 1,
     "net": {...},                   # NaturalSpeech2 constructor kwargs (latent_dim filled in)
     "sde": {"beta_min", "beta_max", "schedule"},
     "sampler": {"name", "steps", "tau", ...},   # the default sampler of synthesis
     "symbols": SymbolTable.to_dict(),
     "language": "en-us",
     "codec": {"class": "RVQCodec", "kwargs": {...}, "state_dict": {...}},  # kwargs as save_codec writes them
     "ema": {...},                   # the EMA network's state_dict: the weights used for synthesis
     "config": {...}}                # NS2Lit's hyperparameters (loss weights, optimiser, ...)

Its tensors are the ones of Lightning's ``state_dict`` (``ema.*``, ``codec.*``): ``torch.save`` stores a
shared storage once, so the record costs no extra space. Everything loads with
``torch.load(..., weights_only=True)``.

>>> ckpt = load_ns2_checkpoint("outputs/ns2_tiny/.../checkpoints/last.ckpt")   # doctest: +SKIP
>>> ckpt.net, ckpt.codec, ckpt.sde, ckpt.symbols, ckpt.sampler                   # doctest: +SKIP
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "KIND",
    "VERSION",
    "NS2Checkpoint",
    "NS2CheckpointError",
    "checkpoint_kind",
    "codec_from_record",
    "read_record",
    "describe_checkpoint",
    "load_ns2_checkpoint",
    "make_record",
    "plain",
]

KIND = "ns2"
VERSION = 1
EXPECTED = "an NS2 training checkpoint (a .ckpt written by `ns2 train experiment=ns2/...`, with an 'ns2' entry)"
RECORD_KINDS = ("ns2", "valle", "yourtts")  # the systems whose training checkpoints carry a record
KIND_NAMES = {"ns2": "an NS2", "valle": "a VALL-E", "yourtts": "a YourTTS"}
RECORD_KEYS = ("net", "sde", "sampler", "symbols", "language", "codec", "ema")


class NS2CheckpointError(ValueError):
    """An NS2 checkpoint could not be loaded; the message is one line naming the file and what was expected."""


@dataclass
class NS2Checkpoint:
    """Everything synthesis needs from an NS2 checkpoint (:func:`load_ns2_checkpoint`).

    ``net``: :class:`~ns2.models.ns2.NaturalSpeech2` with the EMA weights (or the raw ones), eval mode,
    no gradients; ``codec``: the frozen codec it was trained with (eval); ``sde``: the VP-SDE;
    ``symbols``: the phoneme table; ``language``: the text front end's language; ``sampler``: the default
    sampler settings (``get_sampler(**sampler)``, ``name`` included); ``config``: NS2Lit's
    hyperparameters; ``step``, ``epoch``: how far training got; ``path``: the file.
    """

    net: Any
    codec: Any
    sde: Any
    symbols: Any
    language: str
    sampler: dict[str, Any]
    config: dict[str, Any]
    path: Path
    step: int = 0
    epoch: int = 0

    @property
    def frame_rate(self) -> float:
        """Codec frames per second."""
        return self.codec.sample_rate / self.codec.hop_length

    def to(self, device: torch.device | str) -> NS2Checkpoint:
        """Move the network and the codec to ``device`` (in place); returns self."""
        self.net.to(device)
        self.codec.to(device)
        return self


# --- writing -----------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """``value`` as plain Python containers (OmegaConf nodes resolved, tuples as lists, NumPy scalars as
    Python numbers): what ``torch.load(weights_only=True)`` reads back."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor) and getattr(value, "ndim", None) == 0:
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def make_record(
    *,
    net: Mapping[str, Any],
    sde: Mapping[str, Any],
    sampler: Mapping[str, Any],
    symbols: Any,
    language: str,
    codec: Any,
    ema: Mapping[str, torch.Tensor],
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``checkpoint["ns2"]`` record (see the module docstring). ``codec``: a codec with ``kwargs``
    (an :class:`~ns2.codec.rvq.RVQCodec`); ``symbols``: a :class:`~ns2.text.symbols.SymbolTable`;
    ``ema``: the EMA network's state dict (its tensors are stored as they are: no copies)."""
    kwargs = getattr(codec, "kwargs", None)
    if not isinstance(kwargs, Mapping):
        raise NS2CheckpointError(f"cannot record codec {type(codec).__name__}: it has no constructor kwargs")
    return {
        "kind": KIND,
        "version": VERSION,
        "net": plain(net),
        "sde": plain(sde),
        "sampler": plain(sampler),
        "symbols": symbols.to_dict(),
        "language": str(language),
        "codec": {"class": type(codec).__name__, "kwargs": plain(kwargs), "state_dict": codec.state_dict()},
        "ema": dict(ema),
        "config": plain(config or {}),
    }


# --- reading -----------------------------------------------------------------------------------
def _one_line(e: BaseException) -> str:
    text = str(e)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    text = " ".join(text.split())
    return f"{type(e).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


def describe_checkpoint(obj: Any) -> str:
    """What a loaded torch file looks like, in a few words (for error messages)."""
    if not isinstance(obj, Mapping):
        return f"a {type(obj).__name__}, not a checkpoint dict"
    state = obj.get("state_dict")
    keys = list(state) if isinstance(state, Mapping) else []
    meta = obj.get("metadata")
    if "codec" in obj and any(k.startswith("codec.") for k in keys):
        return "a CodecLit checkpoint (codec training)"
    if "aligner" in obj:
        return "an aligner checkpoint"
    if isinstance(meta, Mapping) and "kwargs" in meta:
        return "a codec weight file (DAC format)"
    if "pytorch-lightning_version" in obj or "optimizer_states" in obj:
        prefixes = sorted({k.split(".", 1)[0] for k in keys})[:6]
        return f"a Lightning checkpoint of another module (state_dict prefixes {prefixes})"
    return f"a torch file with keys {sorted(map(str, obj))[:8]}"


def read_record(path: Path, map_location: Any, kind: str = KIND, version: int = VERSION,
                keys: tuple[str, ...] = RECORD_KEYS, expected: str = EXPECTED) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` of a training checkpoint whose ``obj[kind]`` record is of
    that ``kind``, of a version <= ``version``, with ``keys``; anything else is one-line
    :class:`NS2CheckpointError` naming the file and ``expected``. Returns the whole checkpoint."""
    if not path.is_file():
        raise NS2CheckpointError(f"{path}: no such file; expected {expected}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise NS2CheckpointError(f"{path}: refused by torch.load(weights_only=True) ({_one_line(e)}); expected {expected}") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file becomes one line
        raise NS2CheckpointError(f"{path}: not a readable torch file ({_one_line(e)}); expected {expected}") from None
    record = obj.get(kind) if isinstance(obj, Mapping) else None
    if record is None:
        other = [k for k in RECORD_KINDS if k != kind and isinstance(obj, Mapping) and k in obj]
        what = f"{KIND_NAMES.get(other[0], other[0])} checkpoint" if other else describe_checkpoint(obj)
        raise NS2CheckpointError(f"{path}: {what}, not {KIND_NAMES.get(kind, kind)} checkpoint; expected {expected}")
    if not isinstance(record, Mapping) or record.get("kind") != kind:
        got = record.get("kind") if isinstance(record, Mapping) else type(record).__name__
        raise NS2CheckpointError(f"{path}: a checkpoint of kind {got!r}; expected kind {kind!r}, {expected}")
    got_version = record.get("version")
    if not isinstance(got_version, int) or got_version > version:
        raise NS2CheckpointError(f"{path}: {kind} checkpoint version {got_version!r}; this code reads versions <= {version}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise NS2CheckpointError(f"{path}: the {kind!r} entry lacks {missing}; expected {expected}")
    return obj


def _read(path: Path, map_location: Any) -> dict[str, Any]:
    return read_record(path, map_location)


def checkpoint_kind(path: str | os.PathLike) -> str | None:
    """Which system's record a training checkpoint carries (``ns2``, ``valle``...), or None."""
    try:
        obj = torch.load(Path(path), map_location="meta", weights_only=True)
    except Exception:  # noqa: BLE001 - the loader of the right kind reports unreadable files
        return None
    return next((k for k in RECORD_KINDS if isinstance(obj, Mapping) and k in obj), None)


def codec_from_record(codec_rec: Any, where: str):
    """The frozen :class:`~ns2.codec.rvq.RVQCodec` of a record's ``codec`` entry ``{class, kwargs, state_dict}``."""
    from ns2.codec.rvq import RVQCodec

    if not isinstance(codec_rec, Mapping) or codec_rec.get("class") != "RVQCodec":
        got = codec_rec.get("class") if isinstance(codec_rec, Mapping) else type(codec_rec).__name__
        raise NS2CheckpointError(f"{where}: codec class {got!r}; expected 'RVQCodec'")
    try:
        codec = RVQCodec(**codec_rec["kwargs"])
        codec.load_state_dict(codec_rec["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise NS2CheckpointError(f"{where}: its codec does not load ({_one_line(e)})") from None
    return codec.freeze()


def _device(map_location: Any) -> torch.device | None:
    if isinstance(map_location, torch.device):
        return map_location
    if isinstance(map_location, str):
        return torch.device(map_location)
    return None


def load_ns2_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", ema: bool = True) -> NS2Checkpoint:
    """Rebuild the network, codec, SDE and symbol table of an NS2 checkpoint.

    Read with ``torch.load(weights_only=True)``. ``ema``: the EMA weights (default; what synthesis uses)
    or the raw trained ones (Lightning's ``state_dict["net.*"]``). The modules are in eval mode without
    gradients, on ``map_location`` when it names a device. Raises :class:`NS2CheckpointError` (one line)
    for a missing or unreadable file, a checkpoint of another kind, or weights that do not fit.
    """
    from ns2.models.ns2 import NaturalSpeech2
    from ns2.models.ns2.sde import VPSDE
    from ns2.text.symbols import SymbolTable

    path = Path(path)
    obj = _read(path, map_location)
    rec = obj["ns2"]
    where = f"{path}: NS2 checkpoint"
    try:
        symbols = SymbolTable.from_dict(rec["symbols"])
    except ValueError as e:
        raise NS2CheckpointError(f"{where}: bad symbol table ({_one_line(e)})") from None
    try:
        sde = VPSDE(**rec["sde"])
    except (TypeError, ValueError) as e:
        raise NS2CheckpointError(f"{where}: bad 'sde' settings {rec['sde']!r} ({_one_line(e)})") from None

    try:
        net = NaturalSpeech2(**rec["net"])
    except (TypeError, ValueError) as e:
        raise NS2CheckpointError(f"{where}: its 'net' kwargs do not build NaturalSpeech2 ({_one_line(e)})") from None
    if ema:
        state, which = rec["ema"], "ema"
    else:
        sd = obj.get("state_dict") or {}
        state, which = {k[len("net."):]: v for k, v in sd.items() if k.startswith("net.")}, "state_dict['net.*']"
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise NS2CheckpointError(f"{where}: the {which} weights do not fit its 'net' kwargs ({_one_line(e)})") from None

    codec = codec_from_record(rec["codec"], where)
    if net.latent_dim != codec.latent_dim:
        raise NS2CheckpointError(f"{where}: net latent_dim {net.latent_dim} differs from its codec's {codec.latent_dim}")

    net.eval().requires_grad_(False)
    device = _device(map_location)
    if device is not None:
        net.to(device)
        codec.to(device)
    return NS2Checkpoint(
        net=net,
        codec=codec,
        sde=sde,
        symbols=symbols,
        language=str(rec["language"]),
        sampler=dict(rec["sampler"]),
        config=dict(rec.get("config") or {}),
        path=path,
        step=int(obj.get("global_step", 0) or 0),
        epoch=int(obj.get("epoch", 0) or 0),
    )
