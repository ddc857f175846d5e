"""Codec codes for a prepared corpus: extracted once, stored as int16 in shards, read per utterance.

Layout under the prepared folder ``root`` (the manifest's folder)::

    codes/shard-00000.npz   int16 arrays [n_q, T] keyed by utterance id (an uncompressed .npz)
    codes/meta.json         the codec's signature (rates, n_q, codebook size, SHA-256 of its weights)
    codes/index.json        {"codec", "shard_size", "shards": {name: [ids]}, "ids": {id: "codes/shard-XXXXX.npz"},
                             "frames": {id: T}}

:func:`extract_codes` runs the codec over the manifest's audio (resampled to the codec's rate when it
differs) with Lightning's predict loop (:class:`CodecEncoder`), one shard per predict
batch, on one or several devices / processes (``devices``; each rank takes every world-size-th shard).
Every shard file is written atomically as soon as it is encoded, so an interrupted run loses at most the
shards in flight, and a re-run skips every shard whose file holds exactly its planned ids. Shards are
consecutive runs of ``shard_size`` utterances in id order. A codes folder made by another codec (a
different signature in ``meta.json``) is refused unless ``overwrite=True``.

Batched encoding (``batch_frames``) can change the last few frames of an utterance's codes compared with
encoding it alone (padding reaches them through the encoder's receptive field); ``batch_frames=0`` is
bit-exact. From the shell: ``python -m ns2.data.codes CODEC MANIFEST [--devices 8] [--shard-size 256]``.

Only codes are stored; NaturalSpeech 2's latents are rebuilt at load time
(``codec.codes_to_latent(load_codes(utt, root)[None])``), 16 int16 codes per frame instead of 256 floats.
Each utterance gets ``features["codes"] = "codes/shard-XXXXX.npz"`` and ``num_frames = T``
(``ceil(samples / hop)``, the codec's frames, which must agree with any ``num_frames`` already set).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset, Sampler

from ns2.data.manifest import Utterance, read_manifest, write_manifest
from ns2.utils.io import atomic_open, write_json

__all__ = [
    "CODES_DIR",
    "CodecEncoder",
    "check_codes_codec",
    "codec_signature",
    "describe_signature",
    "extract_codes",
    "extract_codes_for_manifest",
    "load_codes",
    "main",
    "plan_shards",
    "read_shard",
    "shard_name",
    "shard_shapes",
    "ShardWriter",
    "write_shard",
]

log = logging.getLogger(__name__)

CODES_DIR = "codes"


# --- shard files ----------------------------------------------------------------------------------
def shard_name(index: int) -> str:
    return f"shard-{int(index):05d}.npz"


def plan_shards(utts: Sequence[Utterance], shard_size: int) -> list[list[Utterance]]:
    """Consecutive runs of ``shard_size`` utterances in id order (deterministic for a given manifest)."""
    if int(shard_size) < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    ordered = sorted(utts, key=lambda u: u.id)
    return [ordered[i : i + int(shard_size)] for i in range(0, len(ordered), int(shard_size))]


def write_shard(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``{id: int16 array}`` as an uncompressed .npz, atomically (any id is a valid key)."""
    with atomic_open(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for key, arr in arrays.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(arr, dtype=np.int16), allow_pickle=False)


def shard_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]] | None:
    """``{id: shape}`` of a shard from the .npy headers only (no data read); None if unreadable."""
    try:
        with zipfile.ZipFile(path) as zf:
            out = {}
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    return None
                with zf.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    if dtype != np.int16:
                        return None
                out[name[: -len(".npy")]] = tuple(int(s) for s in shape)
            return out
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None


def read_shard(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a shard: ``{id: int16 [n_q, T]}``."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_codes(utt: Utterance, root: str | os.PathLike) -> torch.Tensor:
    """The codes of one utterance: LongTensor [n_q, T].

    ``utt.features["codes"]`` names a shard (``.npz``, read by the utterance's id) or a single ``.npy``;
    relative paths resolve against ``root`` (the manifest's folder).
    """
    path = utt.feature_path("codes", root)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if utt.id not in z.files:
                    raise KeyError(f"{path}: no codes for utterance {utt.id!r}; re-run the codes stage")
                arr = z[utt.id]
        else:
            arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: unreadable codes for utterance {utt.id!r} ({' '.join(str(e).split())})") from None
    if arr.ndim != 2 or (utt.num_frames is not None and arr.shape[1] != utt.num_frames):
        raise ValueError(f"{path}: codes of {utt.id!r} have shape {arr.shape}, expected [n_q, {utt.num_frames}]")
    return torch.from_numpy(arr.astype(np.int64))


# --- the codec's identity -------------------------------------------------------------------------
def codec_signature(codec: Any) -> dict[str, Any]:
    """What codes depend on: rates, quantiser sizes and a SHA-256 of the weights (state dict, key order)."""
    h = hashlib.sha256()
    for key, value in sorted(codec.state_dict().items()):
        h.update(key.encode())
        t = value.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return {
        "class": type(codec).__name__,
        "sample_rate": int(codec.sample_rate),
        "hop_length": int(codec.hop_length),
        "n_q": int(codec.n_q),
        "codebook_size": int(codec.codebook_size),
        "latent_dim": int(codec.latent_dim),
        "weights_sha256": h.hexdigest(),
    }


def check_codes_codec(codec: Any, manifest: str | os.PathLike) -> bool:
    """Compare ``codec`` with the one recorded in ``<manifest dir>/codes/meta.json``.

    Returns False when there is no record; raises ValueError (one line) when the codecs differ.
    """
    manifest = Path(manifest)
    meta = manifest.parent / CODES_DIR / "meta.json"
    if not meta.is_file():
        return False
    saved = json.loads(meta.read_text(encoding="utf-8")).get("codec")
    mine = codec_signature(codec)
    if saved != mine:
        raise ValueError(
            f"{meta}: the codes were extracted with another codec ({describe_signature(saved)}) than the model's "
            f"codec ({describe_signature(mine)}); pass the codec file they were made with (codec.source=...) or "
            f"re-extract them (python -m ns2.data.codes CODEC {manifest} --overwrite)"
        )
    return True


def describe_signature(sig: Any) -> str:
    """A codec signature (:func:`codec_signature`) in one short phrase."""
    if not isinstance(sig, Mapping):
        return repr(sig)
    return (f"{sig.get('class')} {sig.get('sample_rate')} Hz hop {sig.get('hop_length')} n_q {sig.get('n_q')} "
            f"K {sig.get('codebook_size')} D {sig.get('latent_dim')} weights {str(sig.get('weights_sha256'))[:12]}")


# --- the predict loop's data ----------------------------------------------------------------------
class _ShardDataset(Dataset):
    """One item per shard: ``{"shard": name, "ids": [...], "audio": [float32 [S_i]]}`` at ``sample_rate``."""

    def __init__(self, shards: list[tuple[str, list[Utterance]]], root: str | os.PathLike, sample_rate: int):
        self.shards = shards
        self.root = str(root)
        self.sample_rate = int(sample_rate)

    def __len__(self) -> int:
        return len(self.shards)

    def load(self, utt: Utterance) -> np.ndarray:
        from ns2.data.audio import load_audio, resample, to_mono

        x, sr = load_audio(utt.audio_path(self.root))
        x = to_mono(x)
        if sr != self.sample_rate:
            x = resample(x, sr, self.sample_rate)
        return np.ascontiguousarray(x, dtype=np.float32)

    def __getitem__(self, i: int) -> dict[str, Any]:
        name, utts = self.shards[i]
        return {"shard": name, "ids": [u.id for u in utts], "audio": [torch.from_numpy(self.load(u)) for u in utts]}


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class _RankSampler(Sampler[int]):
    """Shards ``rank, rank + world, ...`` of this process (no padding, no duplicates)."""

    def __init__(self, n: int):
        self.n = int(n)

    def __iter__(self) -> Iterator[int]:
        world, rank = _world()
        return iter(range(rank, self.n, world))

    def __len__(self) -> int:
        world, rank = _world()
        return len(range(rank, self.n, world))


def _identity(x: Any) -> Any:
    return x


class CodecEncoder(L.LightningModule):
    """Lightning's predict loop around :meth:`Codec.encode`, for code extraction at scale.

    ``predict_step`` takes a dict with ``ids`` (list[str]) and ``audio`` (list of [S_i] float tensors,
    at the codec's rate; other keys are passed through) and encodes them in sub-batches of at most
    ``batch_frames`` padded frames (items sorted by length, so padding stays small). Returns the input
    dict plus ``codes``: list of int16 arrays [n_q, frames(S_i)] and ``seconds`` of audio encoded.

    Batching is not bit-exact: through the encoder's receptive field, the zeros padding a shorter item
    can change the codes of its last few frames (compared with encoding it alone). ``batch_frames=0``
    encodes one utterance per call, exactly as ``codec.encode`` of that utterance alone.
    """

    def __init__(self, codec: Any, batch_frames: int = 8000, n_q: int | None = None):
        super().__init__()
        if codec.codebook_size > np.iinfo(np.int16).max + 1:
            raise ValueError(f"CodecEncoder: codebook_size {codec.codebook_size} does not fit int16 codes")
        self.codec = codec
        self.batch_frames = int(batch_frames)
        self.n_q = n_q

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int = 0, dataloader_idx: int = 0) -> dict[str, Any]:
        self.codec.eval()
        waves = [torch.as_tensor(a).float().reshape(-1) for a in batch["audio"]]
        hop = self.codec.hop_length
        frames = [max(1, math.ceil(len(w) / hop)) for w in waves]
        order = sorted(range(len(waves)), key=lambda i: frames[i], reverse=True)
        codes: list[np.ndarray | None] = [None] * len(waves)
        k = 0
        while k < len(order):
            longest = frames[order[k]]
            size = max(1, self.batch_frames // longest) if self.batch_frames > 0 else 1
            group = order[k : k + size]
            k += size
            wav = torch.zeros(len(group), 1, longest * hop, device=self.device)
            for j, i in enumerate(group):
                wav[j, 0, : len(waves[i])] = waves[i].to(self.device)
            c = self.codec.encode(wav, self.n_q)  # [b, n_q, longest]
            c = c.to(torch.int16).cpu().numpy()
            for j, i in enumerate(group):
                codes[i] = np.ascontiguousarray(c[j, :, : frames[i]])
        out = {k: v for k, v in batch.items() if k != "audio"}
        out["codes"] = codes
        out["seconds"] = sum(len(w) for w in waves) / self.codec.sample_rate
        return out


class ShardWriter(BasePredictionWriter):
    """Writes each predicted shard into ``out_dir`` as soon as its batch ends (in every rank)."""

    def __init__(self, out_dir: str | os.PathLike):
        super().__init__(write_interval="batch")
        self.out_dir = Path(out_dir)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        write_shard(self.out_dir / prediction["shard"], dict(zip(prediction["ids"], prediction["codes"])))


# --- extraction -----------------------------------------------------------------------------------
def extract_codes(
    codec: Any,
    manifest_utts: Sequence[Utterance],
    root: str | os.PathLike,
    shard_size: int = 256,
    batch_frames: int = 8000,
    devices: int | str = 1,
    accelerator: str = "auto",
    strategy: str | None = None,
    num_workers: int = 0,
    precision: str = "32-true",
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Encode every utterance's audio into ``<root>/codes`` shards; update the utterances in place.

    Args:
        codec: a :class:`~ns2.codec.base.Codec` (used in eval mode, all quantisers).
        manifest_utts: the utterances; their ``audio`` paths resolve against ``root``.
        root: the prepared folder (the manifest's folder).
        shard_size: utterances per shard file.
        batch_frames: padded codec frames per encoder call (memory knob); 0 encodes one utterance per
            call, bit-exact with encoding it alone (batched, the last few frames of an utterance can
            differ slightly, see :class:`CodecEncoder`).
        devices, accelerator: as Lightning's Trainer (``devices=4, accelerator="cpu"`` for 4 processes).
        strategy: default ``auto`` on one device, ``ddp_spawn`` on several.
        num_workers: DataLoader workers loading audio.
        overwrite: discard codes made by a different codec (otherwise that is an error).
    Returns a summary: counts, seconds of audio, wall time and throughput (audio seconds per second).
    Sets ``features["codes"]`` and ``num_frames`` (and ``frame_rate`` when unset) of every utterance.
    """
    t0 = time.perf_counter()
    root = Path(root)
    out_dir = root / CODES_DIR
    utts = list(manifest_utts)
    frame_rate = codec.sample_rate / codec.hop_length
    for u in utts:
        if u.frame_rate is not None and not math.isclose(u.frame_rate, frame_rate, rel_tol=1e-6):
            raise ValueError(
                f"utterance {u.id!r} has frame_rate {u.frame_rate} but the codec runs at {frame_rate} frames/s "
                f"({codec.sample_rate} Hz / hop {codec.hop_length}); prepare the corpus with the codec's hop"
            )
    signature = codec_signature(codec)
    meta_path = out_dir / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text(encoding="utf-8")).get("codec")
        if old != signature:
            if not overwrite:
                raise ValueError(
                    f"{out_dir} holds codes of another codec ({old and old.get('weights_sha256', '?')[:12]} vs "
                    f"{signature['weights_sha256'][:12]}); pass overwrite=True or remove the folder"
                )
            shutil.rmtree(out_dir)
    write_json(meta_path, {"codec": signature, "shard_size": int(shard_size)})

    plan = [(shard_name(i), shard) for i, shard in enumerate(plan_shards(utts, shard_size))]
    planned = {name for name, _ in plan}
    for stale in out_dir.glob("shard-*.npz"):
        if stale.name not in planned:
            stale.unlink()
    todo = []
    for name, shard in plan:
        shapes = shard_shapes(out_dir / name)
        if shapes is None or set(shapes) != {u.id for u in shard}:
            todo.append((name, shard))
    todo_seconds = sum(u.duration for _, shard in todo for u in shard)
    log.info("codes: %d shards planned, %d to encode (%.1f s of audio)", len(plan), len(todo), todo_seconds)

    t_encode = time.perf_counter()
    if todo:
        if strategy is None:
            strategy = "ddp_spawn" if isinstance(devices, int) and devices > 1 else "auto"
        loader = DataLoader(
            _ShardDataset(todo, root, codec.sample_rate), batch_size=None, sampler=_RankSampler(len(todo)),
            num_workers=int(num_workers), collate_fn=_identity,
        )
        trainer = L.Trainer(
            accelerator=accelerator, devices=devices, strategy=strategy, precision=precision, logger=False,
            enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
            use_distributed_sampler=False, callbacks=[ShardWriter(out_dir)], inference_mode=True,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*infer the batch indices.*")
            trainer.predict(CodecEncoder(codec, batch_frames=batch_frames), dataloaders=loader, return_predictions=False)
    encode_seconds = time.perf_counter() - t_encode

    # index, and the utterances' fields
    by_id = {u.id: u for u in utts}
    index: dict[str, Any] = {"codec": signature, "shard_size": int(shard_size), "shards": {}, "ids": {}, "frames": {}}
    missing = []
    n_q = None
    for name, shard in plan:
        shapes = shard_shapes(out_dir / name)
        if shapes is None or set(shapes) != {u.id for u in shard}:
            missing.append(name)
            continue
        index["shards"][name] = [u.id for u in shard]
        for uid, shape in shapes.items():
            utt = by_id[uid]
            n_q, frames = shape
            if utt.num_frames is not None and utt.num_frames != frames:
                raise ValueError(
                    f"utterance {uid!r}: the codec gives {frames} frames but the manifest says num_frames={utt.num_frames}"
                )
            rel = f"{CODES_DIR}/{name}"
            index["ids"][uid] = rel
            index["frames"][uid] = frames
            utt.features[CODES_DIR] = rel
            utt.num_frames = frames
            if utt.frame_rate is None:
                utt.frame_rate = frame_rate
    if missing:
        more = "..." if len(missing) > 5 else ""
        raise RuntimeError(f"codes: shards {missing[:5]}{more} were not written; re-run to finish them")
    write_json(out_dir / "index.json", index, indent=None)
    summary = {
        "utterances": len(utts),
        "shards": len(plan),
        "shards_written": len(todo),
        "shards_skipped": len(plan) - len(todo),
        "n_q": n_q if n_q is not None else int(codec.n_q),
        "frame_rate": frame_rate,
        "audio_seconds": round(sum(u.duration for u in utts), 3),
        "encoded_audio_seconds": round(todo_seconds, 3),
        "encode_seconds": round(encode_seconds, 3),
        "audio_seconds_per_second": round(todo_seconds / encode_seconds, 2) if todo and encode_seconds > 0 else None,
        "bytes": sum((out_dir / n).stat().st_size for n, _ in plan),
        "seconds": round(time.perf_counter() - t0, 3),
        "path": str(out_dir),
    }
    log.info("codes: %s", summary)
    return summary


def extract_codes_for_manifest(codec: Any, manifest: str | os.PathLike, **kwargs: Any) -> dict[str, Any]:
    """:func:`extract_codes` over a manifest file, which is then rewritten (atomically) with the codes."""
    manifest = Path(manifest)
    utts = read_manifest(manifest)
    summary = extract_codes(codec, utts, manifest.parent, **kwargs)
    write_manifest(manifest, utts)
    return summary


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m ns2.data.codes CODEC MANIFEST``: extract the codes of a prepared manifest and rewrite it."""
    import argparse

    from ns2.codec.load import load_any_codec

    ap = argparse.ArgumentParser(prog="python -m ns2.data.codes", description=extract_codes.__doc__)
    ap.add_argument("codec", help="a CodecLit checkpoint (.ckpt), a DAC-format weight file or a release name")
    ap.add_argument("manifest", help="the prepared manifest (rewritten with features['codes'] and num_frames)")
    ap.add_argument("--shard-size", type=int, default=256)
    ap.add_argument("--batch-frames", type=int, default=8000)
    ap.add_argument("--devices", default="1", help="devices or processes (an int, or 'auto')")
    ap.add_argument("--accelerator", default="auto")
    ap.add_argument("--num-workers", type=int, default=2)
    ap.add_argument("--precision", default="32-true")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    devices = int(args.devices) if args.devices.isdigit() else args.devices
    summary = extract_codes_for_manifest(
        load_any_codec(args.codec), args.manifest, shard_size=args.shard_size, batch_frames=args.batch_frames,
        devices=devices, accelerator=args.accelerator, num_workers=args.num_workers, precision=args.precision,
        overwrite=args.overwrite, progress=True,
    )
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
