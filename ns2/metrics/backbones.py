"""Pretrained backbones of the metrics: where they live, how they are fetched, how they are verified.

Every downloadable backbone lives in its own folder ``<cache>/backbones/<name>/`` where ``<cache>`` is
the ``cache_dir`` argument, else ``$NS2_CACHE``, else ``~/.cache/ns2``. The SHA-256 of each of its files
is recorded in a checksum manifest (``ns2/metrics/checksums.json`` unless another path is passed) and
checked every time the backbone is loaded: a file that differs from the record is an error, and so is a
backbone with no record (record it once with ``record`` after fetching it, then commit the manifest).

Fetching needs a machine with internet::

    python -m ns2.metrics download wavlm_base_plus_sv [--cache-dir DIR] [--revision REV]
    python -m ns2.metrics record wavlm_base_plus_sv     # files fetched by hand
    python -m ns2.metrics verify wavlm_base_plus_sv
    python -m ns2.metrics list

``download`` takes a Hugging Face repository snapshot (``huggingface_hub.snapshot_download``) into the
backbone's folder, then verifies it against the manifest, or records it there when the manifest has no
entry yet. A missing backbone raises :class:`MissingBackboneError` whose one-line message says how to
get it. Backbones shipped inside a pip package (``bundled_in``) have no folder and no record: pip's own
hashes cover them.

Weights are read by the metrics with ``torch.load(..., weights_only=True)``, safetensors, or
``from_pretrained(folder, local_files_only=True)``; nothing is fetched at load time.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ns2.utils.io import sha256_file, write_json

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneChecksumError",
    "CHECKSUMS_PATH",
    "MissingBackboneError",
    "backbone_dir",
    "cache_root",
    "download",
    "find_file",
    "get_backbone",
    "load_state_strict",
    "load_torch_file",
    "read_checksums",
    "record",
    "require",
    "sha256_file",
    "verify",
]

CHECKSUMS_PATH = Path(__file__).with_name("checksums.json")
MANIFEST_VERSION = 1


class MissingBackboneError(FileNotFoundError):
    """A backbone is not in the cache; the one-line message says how to get it."""


class BackboneChecksumError(ValueError):
    """A backbone's files differ from the checksum manifest, or the manifest has no record of it."""


@dataclass(frozen=True)
class Backbone:
    """A pretrained model a metric loads.

    ``files`` lists what must be present in the folder; an entry that is a tuple is satisfied by any
    one of its paths (e.g. safetensors or a pickle). ``hf_files`` restricts a Hugging Face download to
    those paths of the repository (default: the config/tokenizer files and one set of weights).
    ``known_sha256`` pins files by name to checksums published elsewhere (not computed here):
    :func:`record` refuses a file that differs from them unless ``force=True``.
    """

    name: str
    description: str
    hf_repo: str | None = None
    hf_files: tuple[str, ...] | None = None
    files: tuple[str | tuple[str, ...], ...] = ()
    bundled_in: str | None = None
    note: str = ""
    known_sha256: tuple[tuple[str, str], ...] = ()  # (file name, sha256) from public records of the release


_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")

BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone(
            "wavlm_base_plus_sv",
            "WavLM Base+ with an x-vector TDNN head fine-tuned on VoxCeleb (transformers WavLMForXVector)",
            hf_repo="microsoft/wavlm-base-plus-sv",
            files=("config.json", "preprocessor_config.json", _HF_WEIGHTS),
        ),
        Backbone(
            "wavlm_large_ecapa",
            "WavLM Large + ECAPA-TDNN speaker verification (UniSpeech checkpoint wavlm_large_finetune.pth, "
            "the Seed-TTS-eval / VALL-E / NaturalSpeech SIM model)",
            hf_repo="k2-fsa/TTS_eval_models",
            hf_files=("speaker_similarity/wavlm_large_finetune.pth",),
            files=(("wavlm_large_finetune.pth", "speaker_similarity/wavlm_large_finetune.pth"),),
            note="the same file is linked from the UniSpeech speaker_verification README",
            known_sha256=(
                ("wavlm_large_finetune.pth", "51f07e3b94d9e0262a6a675ef5a087be3dd09e8c62e9d886827f44f82fe7f94b"),
            ),
        ),
        Backbone(
            "hubert_large_ls960_ft",
            "HuBERT Large (Libri-Light pre-trained, LibriSpeech 960 h CTC fine-tuned)",
            hf_repo="facebook/hubert-large-ls960-ft",
            files=("config.json", "vocab.json", _HF_WEIGHTS),
        ),
        Backbone(
            "whisper_large_v3",
            "Whisper large-v3 (transformers WhisperForConditionalGeneration)",
            hf_repo="openai/whisper-large-v3",
            files=("config.json", ("preprocessor_config.json", "processor_config.json"), _HF_WEIGHTS),
        ),
        Backbone(
            "utmos22_strong",
            "UTMOS22 strong learner (wav2vec 2.0 base + BLSTM; fairseq-free state dict "
            "utmos22_strong_step7459_v1.pt)",
            hf_repo="k2-fsa/TTS_eval_models",
            hf_files=("mos/utmos22_strong_step7459_v1.pt",),
            files=(("utmos22_strong_step7459_v1.pt", "mos/utmos22_strong_step7459_v1.pt"),),
            note="also released on the SpeechMOS project page (v1.0.0)",
            known_sha256=(
                ("utmos22_strong_step7459_v1.pt", "38aa51ab79e2a4e09a1449758a4b37e9cbb2e8235a49662a732d33a9ba1e9bff"),
            ),
        ),
        Backbone("resemblyzer", "Resemblyzer GE2E LSTM speaker encoder (weights in the wheel)", bundled_in="resemblyzer"),
        Backbone(
            "pocketsphinx_en_us",
            "PocketSphinx 5 US-English acoustic model, LM and dictionary (in the wheel)",
            bundled_in="pocketsphinx",
        ),
        Backbone("dnsmos_p835", "DNSMOS P.835 + P.808 ONNX models (in the speechmos wheel)", bundled_in="speechmos"),
        Backbone("praat", "Praat autocorrelation pitch tracker (parselmouth)", bundled_in="parselmouth"),
    )
}


# --- locations ----------------------------------------------------------------------------------
def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$NS2_CACHE``, else ``~/.cache/ns2``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("NS2_CACHE"):
        return Path(os.environ["NS2_CACHE"]).expanduser()
    return Path.home() / ".cache" / "ns2"


def backbone_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/backbones/<name>`` (whether or not it exists)."""
    get_backbone(name)
    return cache_root(cache_dir) / "backbones" / name


def get_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}: expected one of {sorted(BACKBONES)}")
    return BACKBONES[name]


def find_file(folder: Path, candidates: str | Sequence[str]) -> Path | None:
    """The first of ``candidates`` (paths relative to ``folder``) that exists, else None."""
    for rel in (candidates,) if isinstance(candidates, str) else candidates:
        if (folder / rel).is_file():
            return folder / rel
    return None


def how_to_get(name: str, cache_dir: str | os.PathLike | None = None) -> str:
    """The commands that fetch backbone ``name`` into the cache (one line)."""
    spec = get_backbone(name)
    if spec.bundled_in:
        return f"`pip install {spec.bundled_in}`"
    folder = backbone_dir(name, cache_dir)
    cache_arg = f" --cache-dir {cache_root(cache_dir)}"
    ours = f"`python -m ns2.metrics download {name}{cache_arg}`"
    files = " " + " ".join(spec.hf_files) if spec.hf_files else ""
    hf = f"`huggingface-cli download {spec.hf_repo}{files} --local-dir {folder}`"
    return f"{ours} on a machine with internet (or {hf} then `python -m ns2.metrics record {name}{cache_arg}`)"


def load_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with a one-line error for other pickles."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(
            f"{path}: expected a tensor checkpoint readable with torch.load(weights_only=True): {first}"
        ) from None


def load_state_strict(model: Any, state: Mapping[str, Any], source: str | os.PathLike, layout: str) -> None:
    """``model.load_state_dict(state, strict=True)`` after checking keys and shapes, with a one-line error."""
    target = model.state_dict()
    missing = sorted(set(target) - set(state))
    extra = sorted(set(state) - set(target))
    bad = [
        f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
        for k in state
        if k in target and tuple(state[k].shape) != tuple(target[k].shape)
    ]
    if missing or extra or bad:
        raise ValueError(
            f"{source}: expected the {layout} layout, got {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(extra)} unexpected (e.g. {extra[:3]}), {len(bad)} shape mismatches (e.g. {bad[:2]})"
        )
    model.load_state_dict(state, strict=True)


# --- checksum manifest --------------------------------------------------------------------------
def read_checksums(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """The manifest's ``backbones`` mapping: ``{name: {"source": str, "files": {relpath: sha256}}}``."""
    path = Path(path) if path is not None else CHECKSUMS_PATH
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BackboneChecksumError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    entries = data.get("backbones") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise BackboneChecksumError(f"{path}: expected an object with a 'backbones' mapping")
    return entries


def _write_entry(path: Path, name: str, entry: dict | None) -> None:
    data: dict = {"version": MANIFEST_VERSION, "backbones": {}}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        data.setdefault("backbones", {})
    if entry is None:
        data["backbones"].pop(name, None)
    else:
        data["backbones"][name] = entry
    data["backbones"] = dict(sorted(data["backbones"].items()))
    write_json(path, data)


def _folder_files(folder: Path) -> list[str]:
    """Relative paths of the plain files under ``folder``, skipping hidden files and folders."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append(rel.as_posix())
    return out


def _missing(name: str, cache_dir, metric: str | None, fallback: str | None, what: str) -> MissingBackboneError:
    spec = get_backbone(name)
    src = f" ({spec.hf_repo})" if spec.hf_repo else ""
    who = f"metric {metric!r} needs backbone {name!r}{src}" if metric else f"backbone {name!r}{src}"
    tail = f", or allow fallbacks to report {fallback} instead" if fallback else ""
    return MissingBackboneError(f"{who}: {what}; get it with {how_to_get(name, cache_dir)}{tail}")


def verify(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    checksums: str | os.PathLike | None = None,
    metric: str | None = None,
    fallback: str | None = None,
) -> Path:
    """Check every file recorded for ``name`` against its SHA-256; return the backbone's folder."""
    folder = backbone_dir(name, cache_dir)
    manifest = Path(checksums) if checksums is not None else CHECKSUMS_PATH
    entry = read_checksums(manifest).get(name)
    if not entry or not entry.get("files"):
        raise BackboneChecksumError(
            f"backbone {name!r}: no checksums recorded in {manifest}; after checking the files in {folder}, "
            f"record them with `python -m ns2.metrics record {name} --cache-dir {cache_root(cache_dir)}`"
        )
    for rel, expected in entry["files"].items():
        path = folder / rel
        if not path.is_file():
            raise _missing(name, cache_dir, metric, fallback, f"{path} is missing")
        got = sha256_file(path)
        if got != expected:
            raise BackboneChecksumError(
                f"backbone {name!r}: checksum mismatch for {path}: expected sha256 {expected}, got {got}; "
                f"the file is corrupt or not the recorded release: fetch it again with "
                f"`python -m ns2.metrics download {name}`"
            )
    return folder


def require(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    checksums: str | os.PathLike | None = None,
    metric: str | None = None,
    fallback: str | None = None,
) -> Path | None:
    """Make sure backbone ``name`` is present and matches the manifest; return its folder.

    Bundled backbones return None after checking that their package imports.
    """
    spec = get_backbone(name)
    if spec.bundled_in:
        if importlib.util.find_spec(spec.bundled_in) is None:
            raise _missing(name, cache_dir, metric, fallback, f"the package {spec.bundled_in!r} is not installed")
        return None
    folder = backbone_dir(name, cache_dir)
    if not folder.is_dir():
        raise _missing(name, cache_dir, metric, fallback, f"not found in {folder}")
    for want in spec.files:
        if find_file(folder, want) is None:
            shown = want if isinstance(want, str) else " or ".join(want)
            raise _missing(name, cache_dir, metric, fallback, f"{shown} not found in {folder}")
    return verify(name, cache_dir, checksums=checksums, metric=metric, fallback=fallback)


def record(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    checksums: str | os.PathLike | None = None,
    source: str | None = None,
    force: bool = False,
) -> dict[str, str]:
    """Hash every (non-hidden) file in the backbone's folder into the manifest; return ``{relpath: sha256}``.

    A file named in the backbone's ``known_sha256`` must match that value (``force=True`` records it anyway).
    """
    spec = get_backbone(name)
    if spec.bundled_in:
        raise ValueError(f"backbone {name!r} ships inside the {spec.bundled_in!r} package: nothing to record")
    folder = backbone_dir(name, cache_dir)
    files = _folder_files(folder) if folder.is_dir() else []
    if not files:
        raise _missing(name, cache_dir, None, None, f"no files in {folder}")
    hashes = {rel: sha256_file(folder / rel) for rel in files}
    known = dict(spec.known_sha256)
    for rel, got in hashes.items():
        want = known.get(Path(rel).name)
        if want is not None and got != want and not force:
            raise BackboneChecksumError(
                f"backbone {name!r}: {folder / rel} has sha256 {got} but the published release has {want}; "
                f"refusing to record it (pass --force to record it anyway)"
            )
    entry = {"source": source or (f"hf:{spec.hf_repo}" if spec.hf_repo else "manual"), "files": hashes}
    _write_entry(Path(checksums) if checksums is not None else CHECKSUMS_PATH, name, entry)
    return hashes


def _hf_allow_patterns(spec: Backbone, repo_files: Sequence[str]) -> list[str]:
    """Config/tokenizer files at the repository root plus one set of weights (safetensors preferred)."""
    if spec.hf_files:
        return list(spec.hf_files)
    root = [f for f in repo_files if "/" not in f]
    meta = [f for f in root if f.endswith((".json", ".txt", ".model")) and not f.endswith(".index.json")]
    if "model.safetensors" in root:
        weights = ["model.safetensors"]
    elif "model.safetensors.index.json" in root:
        weights = ["model.safetensors.index.json", "model-*-of-*.safetensors"]
    elif "pytorch_model.bin" in root:
        weights = ["pytorch_model.bin"]
    else:
        raise FileNotFoundError(f"{spec.hf_repo}: no model.safetensors or pytorch_model.bin at the repository root")
    return meta + weights


def download(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    checksums: str | os.PathLike | None = None,
    revision: str | None = None,
) -> Path:
    """Fetch backbone ``name`` into the cache, then verify it (or record it when the manifest has no entry)."""
    spec = get_backbone(name)
    if spec.bundled_in:
        raise ValueError(f"backbone {name!r} ships inside the {spec.bundled_in!r} package: pip install {spec.bundled_in}")
    if spec.hf_repo is None:
        raise ValueError(f"backbone {name!r} has no download source: {spec.note}")
    from huggingface_hub import HfApi, snapshot_download

    api = HfApi()
    info = api.model_info(spec.hf_repo, revision=revision)
    patterns = _hf_allow_patterns(spec, [s.rfilename for s in (info.siblings or [])])
    folder = backbone_dir(name, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    snapshot_download(spec.hf_repo, revision=info.sha, local_dir=folder, allow_patterns=patterns)
    manifest = Path(checksums) if checksums is not None else CHECKSUMS_PATH
    if read_checksums(manifest).get(name):
        return verify(name, cache_dir, checksums=manifest)
    record(name, cache_dir, checksums=manifest, source=f"hf:{spec.hf_repo}@{info.sha}")
    return folder


# --- command line -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ns2.metrics", description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["list", "download", "record", "verify"])
    p.add_argument("names", nargs="*", help="backbone names (default for list/verify: all)")
    p.add_argument("--cache-dir", default=None, help="cache root (default $NS2_CACHE or ~/.cache/ns2)")
    p.add_argument("--checksums", default=None, help=f"checksum manifest (default {CHECKSUMS_PATH})")
    p.add_argument("--revision", default=None, help="repository revision for download (default: main)")
    p.add_argument("--force", action="store_true", help="record files that differ from the published checksums")
    args = p.parse_args(argv)
    names = args.names or [n for n, b in BACKBONES.items() if args.action == "list" or not b.bundled_in]
    status = 0
    for name in names:
        try:
            if args.action == "list":
                spec = get_backbone(name)
                where = f"pip:{spec.bundled_in}" if spec.bundled_in else str(backbone_dir(name, args.cache_dir))
                print(f"{name:24s} {where}  {spec.description}")
            elif args.action == "download":
                print(f"{name}: {download(name, args.cache_dir, checksums=args.checksums, revision=args.revision)}")
            elif args.action == "record":
                hashes = record(name, args.cache_dir, checksums=args.checksums, force=args.force)
                print(f"{name}: recorded {len(hashes)} files")
            else:
                require(name, args.cache_dir, checksums=args.checksums)
                print(f"{name}: ok")
        except (MissingBackboneError, BackboneChecksumError, KeyError, ValueError) as e:
            print(f"{name}: {e}", file=sys.stderr)
            status = 1
    return status
