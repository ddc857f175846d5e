"""Loading codecs: official DAC weight files, the official releases by name, our own saved codecs, and the
codec of a training checkpoint (:func:`codec_from_checkpoint`; :func:`load_any_codec` takes any of them).

An official DAC weight file (``torch.save`` of ``{"state_dict": ..., "metadata": {"kwargs": ...}}``)
holds DAC's constructor arguments and a state dict whose weight-normalised convs use the legacy
``weight_g`` / ``weight_v`` names; :func:`load_codec` builds the matching :class:`RVQCodec` and loads it.
Files are always read with ``torch.load(..., weights_only=True)``; the only extra types allowed are
NumPy scalars, arrays and dtypes (training logs in a checkpoint's metadata may hold them).

Named sources download an official release once into the cache directory (``cache_dir`` argument, or
``$NS2_CACHE/codec``, or ``~/.cache/ns2/codec``): the file is streamed to ``<name>.part-*`` next to its
final path, its SHA-256 checked against the value pinned below, then renamed into place (atomic). A file
already at the final path is trusted (it got there by that rename, or by hand: ``verify=True``
re-checks it). Without network the error says what to download and where to put it.

Pinned checksums: the release URLs and tags are those of the official package (``dac/utils``); the
SHA-256 values were not computed here (no network) but taken from independent public records of these
release files (the 44 kHz one, with its size of 306,717,287 bytes, from several). If a release asset
ever differs, the download fails with both checksums printed; pass ``sha256=`` to override.
"""
from __future__ import annotations

import hashlib
from http.client import HTTPException
import logging
import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import torch

from ns2.codec.base import Codec
from ns2.codec.layers import from_legacy_weight_norm_names, to_legacy_weight_norm_names
from ns2.codec.rvq import RVQCodec
from ns2.utils.io import sha256_file, torch_save_atomic

__all__ = [
    "CodecLoadError",
    "PRETRAINED",
    "Release",
    "cached_path",
    "codec_cache_dir",
    "codec_from_checkpoint",
    "download",
    "load_any_codec",
    "load_codec",
    "load_dac_file",
    "save_codec",
]

log = logging.getLogger(__name__)

EXPECTED = "an official DAC weight file (a dict with 'state_dict' and 'metadata' -> 'kwargs')"
DAC_KWARGS = {
    "encoder_dim",
    "encoder_rates",
    "latent_dim",
    "decoder_dim",
    "decoder_rates",
    "n_codebooks",
    "codebook_size",
    "codebook_dim",
    "quantizer_dropout",
    "sample_rate",
    "decoder",  # this package's extension: the harmonic decoder (ns2.codec.harmonic)
    "decoder_options",
    "explicit_pitch",
    "factorized_codebooks",  # NaturalSpeech 2's Euclidean codebooks (ns2.codec.quantize)
}


class CodecLoadError(ValueError):
    """A codec could not be loaded; the message is one line naming the file and what was expected."""


@dataclass(frozen=True)
class Release:
    """An official DAC release asset."""

    name: str
    tag: str
    url: str
    sha256: str | None
    size: int | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.tag}.pth"


_BASE = "https://github.com/descriptinc/descript-audio-codec/releases/download"
PRETRAINED: dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            "dac_16khz",
            "0.0.5",
            f"{_BASE}/0.0.5/weights_16khz.pth",
            "95ab7176b67137d4d4c6c54b8d6ef3cea797faec228cb03ad084badcad570b4d",
        ),
        Release(
            "dac_24khz",
            "0.0.4",
            f"{_BASE}/0.0.4/weights_24khz.pth",
            "44bad592fc393e03eb0be7a5120b7d487fe9612fa41269dc03fca3d4b87e20ad",
        ),
        # the 44.1 kHz 8 kbps model: the asset is named weights.pth (the dac package caches it as
        # weights_44khz_8kbps_0.0.1.pth)
        Release(
            "dac_44khz",
            "0.0.1",
            f"{_BASE}/0.0.1/weights.pth",
            "a88eed82a7024ccc1facdb1e605c4c2f99281c8118c22c9895ffa846d8fb61aa",
            306_717_287,
        ),
    )
}


# --- cache and download -------------------------------------------------------------------------
def codec_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$NS2_CACHE/codec``, else ``~/.cache/ns2/codec``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("NS2_CACHE"):
        return Path(os.environ["NS2_CACHE"]).expanduser() / "codec"
    return Path.home() / ".cache" / "ns2" / "codec"


def _release(name: str) -> Release:
    if name not in PRETRAINED:
        raise CodecLoadError(f"unknown codec {name!r}: expected a file path or one of {sorted(PRETRAINED)}")
    return PRETRAINED[name]


def cached_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the release ``name`` lives in the cache (whether or not it is there yet)."""
    return codec_cache_dir(cache_dir) / _release(name).filename


def download(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Make sure release ``name`` is in the cache; return its path. Downloads at most once.

    ``sha256`` overrides the pinned checksum (use only with a checksum you verified yourself).
    """
    rel = _release(name)
    dest = cached_path(name, cache_dir)
    if dest.is_file():
        return dest
    expected = (sha256 or rel.sha256 or "").lower() or None
    manual = f"download {rel.url} and save it as {dest}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f"{dest.name}.part-", dir=dest.parent)
    except OSError as e:
        raise CodecLoadError(f"cannot write to the codec cache {dest.parent} ({e}); {manual}") from None
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        size = 0
        log.info("downloading %s from %s", name, rel.url)
        with os.fdopen(fd, "wb") as out:
            try:
                with urlopen(rel.url, timeout=timeout) as resp:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        out.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
            except (OSError, ValueError, HTTPException) as e:  # URLError, HTTPError, timeouts, cut streams
                reason = getattr(e, "reason", None) or e
                raise CodecLoadError(f"cannot download codec {name!r} ({reason}); offline? {manual}") from None
        if rel.size is not None and size != rel.size and sha256 is None:
            raise CodecLoadError(f"download of {rel.url} has {size} bytes, expected {rel.size}; {manual}")
        digest = h.hexdigest()
        if expected is not None and digest != expected:
            raise CodecLoadError(
                f"download of {rel.url} has sha256 {digest}, expected {expected}; "
                f"{manual} after checking it (or pass sha256=)"
            )
        if expected is None:
            log.warning("no pinned sha256 for %s; downloaded %s bytes with sha256 %s", name, size, digest)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache may be shared
        os.replace(tmp, dest)
        log.info("saved %s (%d bytes, sha256 %s)", dest, size, digest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# --- reading files ------------------------------------------------------------------------------
def _numpy_safe_globals() -> list[Any]:
    """NumPy scalars, arrays and dtypes, under both the NumPy 1 and NumPy 2 module names."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return []
    core = getattr(np, "_core", None) or np.core
    items: list[Any] = [np.dtype, np.ndarray]
    for fn in (core.multiarray.scalar, core.multiarray._reconstruct):
        items += [fn] + [(fn, f"numpy.{mod}.multiarray.{fn.__name__}") for mod in ("core", "_core")]
    for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_):
        items.append(type(np.dtype(t)))
    return items


def _torch_load(path: Path) -> Any:
    safe = getattr(torch.serialization, "safe_globals", None)
    if safe is None:  # torch < 2.5: plain weights_only loading
        return torch.load(path, map_location="cpu", weights_only=True)
    try:
        with safe(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # a torch whose safe_globals takes no (obj, name) pairs
        with safe([g for g in _numpy_safe_globals() if not isinstance(g, tuple)]):
            return torch.load(path, map_location="cpu", weights_only=True)


def _one_line(e: BaseException) -> str:
    text = str(e)
    if "WeightsUnpickler error:" in text:  # keep torch's reason, not its advice to drop weights_only
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
        text = text.split(" was not an allowed global", 1)[0]
    text = " ".join(text.split())
    return f"{type(e).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(kwargs, state_dict) of an official-format DAC weight file, validated; CodecLoadError if not."""
    path = Path(path)
    where = f"{path}: expected {EXPECTED}"
    if not path.is_file():
        raise CodecLoadError(f"{path}: no such file; expected {EXPECTED}")
    try:
        obj = _torch_load(path)
    except pickle.UnpicklingError as e:
        raise CodecLoadError(f"{where}; refused by torch.load(weights_only=True) ({_one_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - any corrupt file becomes one line
        raise CodecLoadError(f"{where}; not a readable torch file ({_one_line(e)})") from None
    if not isinstance(obj, Mapping):
        raise CodecLoadError(f"{where}; got a {type(obj).__name__}")
    if "state_dict" not in obj:
        raise CodecLoadError(f"{where}; it has no 'state_dict' (keys: {sorted(map(str, obj))[:8]})")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("kwargs"), Mapping):
        raise CodecLoadError(f"{where}; it has no 'metadata' -> 'kwargs'")
    kwargs = dict(meta["kwargs"])
    unknown = sorted(set(kwargs) - DAC_KWARGS)
    if unknown:
        raise CodecLoadError(f"{where}; unknown kwargs {unknown}")
    state = obj["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CodecLoadError(f"{where}; 'state_dict' is not a mapping of tensors")
    return kwargs, dict(state)


def _load_state_checked(codec: RVQCodec, state: dict[str, torch.Tensor], where: str) -> None:
    """Shape mismatches are reported by name, in one line."""
    own = codec.state_dict()
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            name = next(iter(to_legacy_weight_norm_names({k: v})))  # the file's own spelling
            raise CodecLoadError(f"{where}; {name} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")


def load_dac_file(path: str | os.PathLike) -> RVQCodec:
    """An :class:`RVQCodec` with the weights of an official-format DAC file (eval mode)."""
    kwargs, state = read_checkpoint(path)
    where = f"{path}: expected {EXPECTED}"
    try:
        codec = RVQCodec(**kwargs)
    except (TypeError, ValueError) as e:
        raise CodecLoadError(f"{where}; its kwargs do not build a codec ({_one_line(e)})") from None
    state = from_legacy_weight_norm_names(state)
    _load_state_checked(codec, state, where)
    result = codec.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CodecLoadError(
            f"{where}; its state_dict does not match its kwargs (missing "
            f"{list(to_legacy_weight_norm_names(dict.fromkeys(result.missing_keys)))[:3]}, unexpected "
            f"{list(to_legacy_weight_norm_names(dict.fromkeys(result.unexpected_keys)))[:3]})"
        )
    return codec.eval()


def save_codec(codec: RVQCodec, path: str | os.PathLike) -> Path:
    """Write ``codec`` in the official DAC format (legacy weight-norm names, kwargs as metadata),
    atomically; :func:`load_codec` (and the official package) read it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in to_legacy_weight_norm_names(codec.state_dict()).items()}
    torch_save_atomic({"state_dict": state, "metadata": {"kwargs": dict(codec.kwargs)}}, path)
    return path


def load_codec(
    source: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    freeze: bool = False,
    verify: bool = False,
    sha256: str | None = None,
) -> Codec:
    """A codec from a DAC weight file or a release name (``dac_16khz``, ``dac_24khz``, ``dac_44khz``).

    Args:
        source: path of a weight file in the official DAC format, or a release name.
        cache_dir: where releases are cached (default ``$NS2_CACHE/codec`` or ``~/.cache/ns2/codec``).
        freeze: eval mode and ``requires_grad=False`` for good (see :meth:`Codec.freeze`).
        verify: re-check the SHA-256 of an already cached release.
        sha256: override the pinned checksum of a release.
    Returns the codec in eval mode. Raises :class:`CodecLoadError` (one line) on any failure.
    """
    if isinstance(source, str) and source in PRETRAINED:
        path = download(source, cache_dir, sha256=sha256)
        expected = (sha256 or PRETRAINED[source].sha256 or "").lower()
        if verify and expected and sha256_file(path) != expected:
            raise CodecLoadError(
                f"{path}: sha256 does not match the {source} release ({expected}); delete it and retry"
            )
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise CodecLoadError(
                f"{path}: no such file; expected the path of an official DAC weight file "
                f"or one of {sorted(PRETRAINED)}"
            )
    codec = load_dac_file(path)
    return codec.freeze() if freeze else codec


def codec_from_checkpoint(path: str | os.PathLike) -> RVQCodec:
    """The trained codec of a codec training checkpoint (:class:`~ns2.lit.codec.CodecLit`'s ``.ckpt``), eval mode.

    Read with ``torch.load(weights_only=True)``; the architecture comes from the checkpoint's ``codec``
    entry (``{"class": "RVQCodec", "kwargs": ...}``, written at every save), the weights from its
    ``codec.*`` parameters.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    meta = ckpt.get("codec") if isinstance(ckpt, Mapping) else None
    if not isinstance(meta, Mapping) or meta.get("class") != "RVQCodec" or not isinstance(meta.get("kwargs"), Mapping):
        raise ValueError(f"{path}: expected a CodecLit checkpoint of an RVQCodec (with a 'codec' entry)")
    state = {k[len("codec."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("codec.")}
    codec = RVQCodec(**meta["kwargs"])
    codec.load_state_dict(state)
    return codec.eval()


def load_any_codec(source: str | os.PathLike) -> Codec:
    """A codec from a training checkpoint (``.ckpt``), a DAC-format weight file or a release name."""
    if str(source).endswith(".ckpt"):
        return codec_from_checkpoint(source)
    return load_codec(source)
