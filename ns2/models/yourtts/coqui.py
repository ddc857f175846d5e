"""The released YourTTS (Coqui TTS) read into :class:`~ns2.models.yourtts.YourTTS` and
:class:`~ns2.models.yourtts.speaker_encoder.ResNetSpeakerEncoder`.

Coqui publishes YourTTS (``tts_models/multilingual/multi-dataset/your_tts``) as a folder::

    model_file.pth (or best_model.pth)   {"model": state_dict, "config": {...}, "optimizer": ..., ...}
    config.json                          the VitsConfig: model_args, audio, characters, ...
    model_se.pth (or model_se.pth.tar)   {"model": state_dict, ...} of the H/ASP ResNet speaker encoder
    config_se.json                       its model_params and audio settings
    language_ids.json                    {"en": 0, "fr-fr": 1, "pt-br": 2}
    speakers.json / speakers.pth         (optional) the training set's d-vectors; recorded, not read

Nothing is downloaded here: :func:`load_released_yourtts` reads a local folder (default
``$NS2_CACHE/yourtts``, else ``~/.cache/ns2/yourtts``: the cache convention of
:mod:`ns2.metrics.backbones`), checks every file named in the checksum manifest
(``ns2/models/yourtts/checksums.json``, SHA-256 by file name; files it does not list are loaded and
reported as unverified in ``meta``), and loads the weights with ``torch.load(weights_only=True)`` only.
A checkpoint that pickles Python objects (Coqui checkpoints may hold a Coqpit config or NumPy scalars) is
refused with one line saying how to re-save its tensors; it is never unpickled here.

Key mapping of the TTS checkpoint (Coqui -> ns2, :func:`coqui_to_ns2_state`)::

    <conv>.weight_g / <conv>.weight_v    -> <conv>.parametrizations.weight.original0 / .original1
                                            (torch.nn.utils.weight_norm -> parametrizations.weight_norm)
    <norm>.gamma / <norm>.beta           -> <norm>.weight / <norm>.bias, flattened to [C]
                                            (Coqui's LayerNorm [1, C, 1] / LayerNorm2 [C] -> nn.LayerNorm)
    disc.*                               dropped (the discriminator is not part of the inference model)
    *speaker_encoder*                    dropped (Coqui's own load_checkpoint drops them too)
    torch_spec.*, audio_transform.*, audio_resampler.*   dropped (torchaudio buffers)
    emb_g.*                              dropped when the model uses d-vectors (no speaker table here)

and everything else keeps Coqui's name (the ns2 modules are named after Coqui's ``Vits``). The speaker
encoder (:func:`coqui_se_to_ns2_state`) only loses its ``torch_spec.*`` buffers (pre-emphasis filter,
torchaudio window and mel filterbank), which :func:`load_released_yourtts` compares with the torch front
end of :class:`ResNetSpeakerEncoder` before dropping them.

Why the file I/O helpers are restated here rather than imported from :mod:`ns2.metrics.backbones`:
``ns2.models`` and ``ns2.metrics`` are one layer of the package graph and do not import each other
(tests/test_layering.py); :func:`cache_root` follows the same rule as the metrics' one.
"""
from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ns2.models.yourtts.speaker_encoder import ResNetSpeakerEncoder
from ns2.utils.io import sha256_file, write_json

__all__ = [
    "CHECKSUMS_PATH",
    "CheckpointFormatError",
    "MissingYourTTSError",
    "RELEASED_FILES",
    "YourTTSChecksumError",
    "cache_root",
    "coqui_se_to_ns2_state",
    "coqui_to_ns2_state",
    "default_yourtts_dir",
    "find_released_files",
    "load_released_yourtts",
    "load_weights_only",
    "record_checksums",
    "yourtts_kwargs_from_coqui_config",
]

CHECKSUMS_PATH = Path(__file__).with_name("checksums.json")
CONFIG_ARG = "system.yourtts_pretrained.path"

RELEASED_FILES: dict[str, tuple[str, ...]] = {
    "model": ("model_file.pth", "best_model.pth", "model_file.pth.tar", "best_model.pth.tar"),
    "config": ("config.json",),
    "speaker_encoder": ("model_se.pth", "model_se.pth.tar"),
    "speaker_encoder_config": ("config_se.json",),
    "language_ids": ("language_ids.json",),
    "speakers": ("speakers.json", "speakers.pth"),
}
"""The released files by role; each role is satisfied by the first of its names that exists."""
OPTIONAL_ROLES = ("language_ids", "speakers")  # language_ids is required when the config embeds languages


class MissingYourTTSError(FileNotFoundError):
    """The released YourTTS files are not where they were looked for; the one-line message says where to put them."""


class YourTTSChecksumError(ValueError):
    """A released file differs from its SHA-256 in the checksum manifest (or the manifest is unreadable)."""


class CheckpointFormatError(ValueError):
    """A checkpoint that ``torch.load(weights_only=True)`` refuses, or that holds no state dict."""


# --- locations and files ------------------------------------------------------------------------
def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$NS2_CACHE``, else ``~/.cache/ns2`` (as :func:`ns2.metrics.backbones.cache_root`)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("NS2_CACHE"):
        return Path(os.environ["NS2_CACHE"]).expanduser()
    return Path.home() / ".cache" / "ns2"


def default_yourtts_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/yourtts``: where :func:`load_released_yourtts` looks when given no folder."""
    return cache_root(cache_dir) / "yourtts"


def _how_to_get(folder: Path) -> str:
    return (f"put Coqui's released YourTTS files (tts_models/multilingual/multi-dataset/your_tts, fetched on a "
            f"machine with internet) in {folder} or in $NS2_CACHE/yourtts, or name their folder with "
            f"{CONFIG_ARG}=...")


def find_released_files(root: str | os.PathLike, config: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """``{role: path}`` of the released files in ``root``; one-line :class:`MissingYourTTSError` naming the
    folder and every missing file when a required one is absent (``language_ids.json`` is required when
    ``config`` — or ``root/config.json`` — turns the language embedding on)."""
    folder = Path(root).expanduser()
    found = {role: next((folder / n for n in names if (folder / n).is_file()), None) for role, names in RELEASED_FILES.items()}
    if config is None and found["config"] is not None:
        try:
            config = json.loads(found["config"].read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            config = None  # reported when the config is read
    required = [r for r in RELEASED_FILES if r not in OPTIONAL_ROLES]
    if config is not None and bool(_model_args(config).get("use_language_embedding")):
        required.append("language_ids")
    missing = [" or ".join(RELEASED_FILES[r]) for r in required if found[r] is None]
    if missing:
        where = f"{folder} does not exist" if not folder.is_dir() else f"{folder} lacks {', '.join(missing)}"
        raise MissingYourTTSError(f"released YourTTS not found: {where} (needs {', '.join(missing)}); {_how_to_get(folder)}")
    return {r: p for r, p in found.items() if p is not None}


def load_weights_only(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; a file that needs more than tensors and
    plain containers is one-line :class:`CheckpointFormatError` saying what to do (never unpickled)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        try:
            names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # noqa: BLE001 - legacy (non-zip) files: read the names from the message
            names = list(dict.fromkeys(re.findall(r"GLOBAL ([\w.]+)", text)))
        if not names:  # no Python object to refuse: a file that is no checkpoint (or a torn one)
            why = text.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0]
            raise CheckpointFormatError(f"{path}: not a readable torch checkpoint ({' '.join(why.split())[:160]})") from None
        more = ", ..." if len(names) > 4 else ""
        raise CheckpointFormatError(
            f"{path}: torch.load(weights_only=True) refuses this checkpoint (it pickles {', '.join(names[:4])}{more}); "
            f"it is not unpickled here. "
            f"Where you trust the file (e.g. with Coqui TTS installed), save only its tensors, "
            f"torch.save({{'model': state_dict}}, path), then record its new checksum with "
            f"ns2.models.yourtts.coqui.record_checksums"
        ) from None
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file (EOFError, KeyError, RuntimeError, ...)
        raise CheckpointFormatError(f"{path}: not a readable torch checkpoint ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0] or type(e).__name__


def _state_of(obj: Any, source: Any) -> dict[str, torch.Tensor]:
    """The state dict of a Coqui checkpoint (``{"model": state, ...}``) or of a bare state dict."""
    state = obj.get("model", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping) or not state or not all(torch.is_tensor(v) for v in state.values()):
        what = f"keys {sorted(obj)[:5]}" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise CheckpointFormatError(f"{source}: expected a state dict or a dict with a 'model' state dict, got {what}")
    return dict(state)


# --- checksums ----------------------------------------------------------------------------------
def read_checksums(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The manifest's ``files`` mapping ``{file name: sha256}`` (empty when the manifest does not exist)."""
    path = Path(path) if path is not None else CHECKSUMS_PATH
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise YourTTSChecksumError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise YourTTSChecksumError(f"{path}: expected an object with a 'files' mapping of file name to sha256")
    return {str(k): str(v).lower() for k, v in files.items()}


def verify_files(paths: Sequence[Path], checksums: str | os.PathLike | None = None) -> tuple[list[str], list[str]]:
    """Check each file named in the manifest; return (verified names, unverified names)."""
    manifest = Path(checksums) if checksums is not None else CHECKSUMS_PATH
    known = read_checksums(manifest)
    verified, unverified = [], []
    for path in paths:
        want = known.get(path.name)
        if want is None:
            unverified.append(path.name)
            continue
        got = sha256_file(path)
        if got != want:
            raise YourTTSChecksumError(
                f"{path}: sha256 {got} differs from {want} recorded in {manifest}; the file is corrupt or not the "
                f"recorded release: fetch it again (or, for a deliberate change, record it with record_checksums)")
        verified.append(path.name)
    return verified, unverified


def record_checksums(root: str | os.PathLike | None = None, checksums: str | os.PathLike | None = None,
                     source: str | None = None) -> dict[str, str]:
    """Hash the released files found in ``root`` into the manifest (by file name); return what was recorded."""
    folder = Path(root).expanduser() if root is not None else default_yourtts_dir()
    paths = find_released_files(folder)
    hashes = {p.name: sha256_file(p) for p in paths.values()}
    manifest = Path(checksums) if checksums is not None else CHECKSUMS_PATH
    data: dict[str, Any] = {"version": 1, "files": {}}
    if manifest.exists():
        data = json.loads(manifest.read_text(encoding="utf-8"))
    data["files"] = dict(sorted({**(data.get("files") or {}), **hashes}.items()))
    if source is not None:
        data["source"] = source
    write_json(manifest, data)
    return hashes


# --- key mapping --------------------------------------------------------------------------------
_DROP_PREFIXES = ("disc.", "torch_spec.", "audio_transform.", "audio_resampler.")
_WEIGHT_NORM = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
_NORM = {"gamma": "weight", "beta": "bias"}


def _rename(key: str) -> str:
    head, _, leaf = key.rpartition(".")
    if leaf in _WEIGHT_NORM:
        return f"{head}.{_WEIGHT_NORM[leaf]}" if head else _WEIGHT_NORM[leaf]
    if leaf in _NORM:
        return f"{head}.{_NORM[leaf]}" if head else _NORM[leaf]
    return key


def coqui_to_ns2_state(state: Mapping[str, torch.Tensor], *, uses_d_vectors: bool = True,
                       dropped: list[str] | None = None) -> dict[str, torch.Tensor]:
    """A Coqui ``Vits`` (YourTTS) state dict (or a checkpoint holding it under ``"model"``) -> the state dict
    of :class:`~ns2.models.yourtts.YourTTS` (module docstring's table). The dropped keys are appended to
    ``dropped`` when given."""
    src = _state_of(state, "coqui_to_ns2_state")
    out: dict[str, torch.Tensor] = {}
    for key, value in src.items():
        if (key.startswith(_DROP_PREFIXES) or "speaker_encoder" in key
                or (uses_d_vectors and key.startswith("emb_g."))):
            if dropped is not None:
                dropped.append(key)
            continue
        new = _rename(key)
        if new in out:
            raise ValueError(f"coqui_to_ns2_state: {key} maps to {new}, which another key already gave")
        out[new] = value.reshape(-1) if key.rpartition(".")[2] in _NORM else value
    return out


def coqui_se_to_ns2_state(state: Mapping[str, torch.Tensor], dropped: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Coqui's ``ResNetSpeakerEncoder`` state dict (or ``{"model": state, ...}``) -> that of
    :class:`ResNetSpeakerEncoder`: the same names, without the torchaudio front end's ``torch_spec.*`` buffers."""
    src = _state_of(state, "coqui_se_to_ns2_state")
    out = {}
    for key, value in src.items():
        if key.startswith("torch_spec."):
            if dropped is not None:
                dropped.append(key)
            continue
        out[key] = value
    return out


def check_se_front_end(state: Mapping[str, torch.Tensor], encoder: ResNetSpeakerEncoder, source: Any,
                       atol: float = 1e-4) -> dict[str, float]:
    """Compare Coqui's stored ``torch_spec`` buffers (pre-emphasis filter, window, mel filterbank) with the
    torch front end of ``encoder``; return their largest absolute differences. A difference above ``atol`` is
    a one-line ValueError (the config does not describe the checkpoint's front end)."""
    ours = {
        "torch_spec.0.filter": torch.tensor([[[-encoder.preemphasis, 1.0]]]),
        "torch_spec.1.spectrogram.window": encoder.window.detach().cpu(),
        "torch_spec.1.mel_scale.fb": encoder.mel_fb.detach().cpu(),
    }
    diffs = {}
    for key, want in ours.items():
        if key not in state:
            continue
        got = state[key].detach().float().cpu()
        if got.shape != want.shape:
            raise ValueError(f"{source}: {key} is {tuple(got.shape)}, the speaker encoder's front end gives "
                             f"{tuple(want.shape)}; config_se.json does not describe this checkpoint")
        diffs[key] = float((got - want).abs().max())
        if diffs[key] > atol:
            raise ValueError(f"{source}: {key} differs from the torch front end by {diffs[key]:.3g}; "
                             f"config_se.json does not describe this checkpoint's spectrogram")
    return diffs


def _load_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Any, layout: str) -> None:
    """``load_state_dict(strict=True)`` after checking keys and shapes, with a one-line error."""
    target = model.state_dict()
    missing = sorted(set(target) - set(state))
    extra = sorted(set(state) - set(target))
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
           for k in state if k in target and tuple(state[k].shape) != tuple(target[k].shape)]
    if missing or extra or bad:
        raise ValueError(f"{source}: expected the {layout} layout, got {len(missing)} missing (e.g. {missing[:3]}), "
                         f"{len(extra)} unexpected (e.g. {extra[:3]}), {len(bad)} shape mismatches (e.g. {bad[:2]})")
    model.load_state_dict(state, strict=True)


# --- configs ------------------------------------------------------------------------------------
def _model_args(config: Mapping[str, Any]) -> dict[str, Any]:
    args = config.get("model_args")
    return dict(args) if isinstance(args, Mapping) else dict(config)


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(f"Coqui config: {what}; ns2's YourTTS does not implement it")


def yourtts_kwargs_from_coqui_config(config: Mapping[str, Any], language_ids: Mapping[str, int] | None = None,
                                     num_chars: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Coqui's YourTTS ``config.json`` -> (constructor kwargs of :class:`~ns2.models.yourtts.YourTTS`, audio settings).

    ``language_ids`` (``language_ids.json``) sizes the language table when the config embeds languages;
    ``num_chars`` overrides the vocabulary size (default ``model_args.num_chars``, else the length of the
    config's character set). The audio dict holds ``sample_rate``, ``hop_length``, ``fft_size``,
    ``win_length`` (and the mel settings when present). Settings ns2's YourTTS does not implement (speaker
    tables, ResBlock2, dilated WaveNets, ...) are one-line ValueErrors.
    """
    a = _model_args(config)
    audio_src = config.get("audio") if isinstance(config.get("audio"), Mapping) else {}
    audio = {k: audio_src[k] for k in ("sample_rate", "hop_length", "fft_size", "win_length", "num_mels", "mel_fmin",
                                       "mel_fmax") if k in audio_src}
    for k in ("sample_rate", "hop_length", "fft_size", "win_length"):
        _require(k in audio, f"audio.{k} is missing")

    if num_chars is None:
        num_chars = a.get("num_chars")
    if num_chars is None:
        from ns2.text.coqui_chars import CoquiCharacters

        num_chars = len(CoquiCharacters.from_config(config))

    _require(str(a.get("resblock_type_decoder", "1")) == "1", f"resblock_type_decoder {a.get('resblock_type_decoder')!r} (only '1')")
    _require(int(a.get("dilation_rate_posterior_encoder", 1)) == 1, "dilation_rate_posterior_encoder != 1")
    _require(int(a.get("dilation_rate_flow", 1)) == 1, "dilation_rate_flow != 1")
    _require(not a.get("encoder_sample_rate"), "encoder_sample_rate (an upsampling decoder)")
    _require(bool(a.get("condition_dp_on_speaker", True)), "condition_dp_on_speaker false")
    uses_d_vectors = bool(a.get("use_d_vector_file", False))
    _require(not (bool(a.get("use_speaker_embedding", False)) and not uses_d_vectors),
             "use_speaker_embedding without d-vectors (a speaker id table)")
    speaker_dim = int(a.get("d_vector_dim", 0) or 0) if uses_d_vectors else 0

    num_languages, lang_dim = 0, 0
    if bool(a.get("use_language_embedding", False)):
        if language_ids is None:
            raise ValueError("Coqui config: use_language_embedding is set; pass language_ids (language_ids.json)")
        num_languages, lang_dim = len(language_ids), int(a.get("embedded_language_dim", 4))

    out_channels = int(a.get("out_channels", int(audio["fft_size"]) // 2 + 1))
    _require(out_channels == int(audio["fft_size"]) // 2 + 1,
             f"model_args.out_channels {out_channels} is not fft_size / 2 + 1 = {int(audio['fft_size']) // 2 + 1}")

    kwargs: dict[str, Any] = {
        "vocab_size": int(num_chars),
        "hidden": int(a.get("hidden_channels", 192)),
        "ffn": int(a.get("hidden_channels_ffn_text_encoder", 768)),
        "heads": int(a.get("num_heads_text_encoder", 2)),
        "layers": int(a.get("num_layers_text_encoder", 6)),
        "kernel_size": int(a.get("kernel_size_text_encoder", 3)),
        "dropout": float(a.get("dropout_p_text_encoder", 0.1)),
        "spec_channels": out_channels,
        "posterior_layers": int(a.get("num_layers_posterior_encoder", 16)),
        "posterior_kernel_size": int(a.get("kernel_size_posterior_encoder", 5)),
        "flow_couplings": 4,  # Coqui's ResidualCouplingBlocks default; not a config entry
        "flow_layers": int(a.get("num_layers_flow", 4)),
        "flow_kernel_size": int(a.get("kernel_size_flow", 5)),
        "use_sdp": bool(a.get("use_sdp", True)),
        "dp_channels": 192 if bool(a.get("use_sdp", True)) else 256,  # hard-coded in Coqui's Vits
        "dp_dropout": float(a.get("dropout_p_duration_predictor", 0.5)),
        "speaker_dim": speaker_dim,
        "num_languages": num_languages,
        "lang_dim": lang_dim,
        "upsample_rates": [int(u) for u in a.get("upsample_rates_decoder", (8, 8, 2, 2))],
        "upsample_kernel_sizes": [int(k) for k in a.get("upsample_kernel_sizes_decoder", (16, 16, 4, 4))],
        "upsample_initial_channel": int(a.get("upsample_initial_channel_decoder", 512)),
        "resblock_kernel_sizes": [int(k) for k in a.get("resblock_kernel_sizes_decoder", (3, 7, 11))],
        "resblock_dilation_sizes": [[int(d) for d in ds] for ds in
                                    a.get("resblock_dilation_sizes_decoder", ((1, 3, 5), (1, 3, 5), (1, 3, 5)))],
        "hop_length": int(audio["hop_length"]),
        "normalize_speaker": True,  # Coqui's Vits F.normalize-s the d-vectors
        "detach_dp_input": bool(a.get("detach_dp_input", True)),
    }
    return kwargs, audio


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable JSON ({e})") from None


# --- the loader ---------------------------------------------------------------------------------
def load_released_yourtts(root: str | os.PathLike | None = None, *, checksums: str | os.PathLike | None = None,
                          device: str | torch.device = "cpu") -> tuple[Any, ResNetSpeakerEncoder, dict[str, Any]]:
    """The released YourTTS from a local folder -> ``(model, speaker_encoder, meta)``.

    ``root``: the folder of the release (default :func:`default_yourtts_dir`). ``model`` is a
    :class:`~ns2.models.yourtts.YourTTS` in eval mode (no alignment search attached: for inference),
    ``speaker_encoder`` a frozen :class:`ResNetSpeakerEncoder`. ``meta``: ``root``, ``files`` (role -> file
    name), ``verified`` / ``unverified`` (file names checked against the manifest, or not listed there),
    ``checksums`` (the manifest's path), ``audio`` (sample_rate, hop_length, fft_size, win_length, ...),
    ``languages`` (names in id order), ``language_ids``, ``model_kwargs``, ``speaker_encoder_kwargs``,
    ``config``, ``config_se``, ``speakers_file`` (path or None), ``dropped_keys`` (per checkpoint),
    ``se_front_end_diff`` (largest differences to Coqui's stored torchaudio buffers), ``step``, and
    ``characters`` (:class:`ns2.text.coqui_chars.CoquiCharacters`, or None when the config has none).

    Errors, each one line: :class:`MissingYourTTSError` (a FileNotFoundError) for absent files,
    :class:`YourTTSChecksumError` for a file that differs from the manifest, :class:`CheckpointFormatError`
    for a checkpoint ``torch.load(weights_only=True)`` refuses, ValueError for a layout that does not match.
    """
    from ns2.models.yourtts import YourTTS

    folder = Path(root).expanduser() if root is not None else default_yourtts_dir()
    paths = find_released_files(folder)
    verified, unverified = verify_files(list(paths.values()), checksums)

    config = _read_json(paths["config"])
    config_se = _read_json(paths["speaker_encoder_config"])
    if not isinstance(config, dict) or not isinstance(config_se, dict):
        raise ValueError(f"{folder}: config.json and config_se.json must hold JSON objects")
    language_ids = None
    if "language_ids" in paths:
        language_ids = _read_json(paths["language_ids"])
        if not isinstance(language_ids, dict) or sorted(language_ids.values()) != list(range(len(language_ids))):
            raise ValueError(f"{paths['language_ids']}: expected {{language: id}} with ids 0..n-1")

    ckpt = load_weights_only(paths["model"])
    raw = _state_of(ckpt, paths["model"])
    kwargs, audio = yourtts_kwargs_from_coqui_config(config, language_ids,
                                                     num_chars=_num_chars(config, raw))
    dropped_model: list[str] = []
    state = coqui_to_ns2_state(raw, uses_d_vectors=bool(kwargs["speaker_dim"]), dropped=dropped_model)
    model = YourTTS(**kwargs)
    _load_strict(model, state, paths["model"], "Coqui YourTTS (Vits)")
    model.eval()

    se_kwargs = ResNetSpeakerEncoder.kwargs_from_coqui_config(config_se)
    encoder = ResNetSpeakerEncoder(**se_kwargs)
    se_raw = _state_of(load_weights_only(paths["speaker_encoder"]), paths["speaker_encoder"])
    front = check_se_front_end(se_raw, encoder, paths["speaker_encoder"])
    dropped_se: list[str] = []
    _load_strict(encoder, coqui_se_to_ns2_state(se_raw, dropped_se), paths["speaker_encoder"],
                 "Coqui H/ASP ResNetSpeakerEncoder")
    encoder.freeze()
    if int(encoder.dim) != int(kwargs["speaker_dim"] or encoder.dim):
        raise ValueError(f"{folder}: the speaker encoder gives {encoder.dim}-d embeddings, the model takes "
                         f"{kwargs['speaker_dim']}-d d-vectors")

    characters = None
    if isinstance(config.get("characters"), Mapping):
        try:
            from ns2.text.coqui_chars import CoquiCharacters

            characters = CoquiCharacters.from_config(config)
        except (ImportError, ValueError):
            characters = None
    languages = sorted(language_ids, key=language_ids.get) if language_ids else []
    meta = {
        "root": str(folder),
        "files": {role: p.name for role, p in paths.items()},
        "verified": verified,
        "unverified": unverified,
        "checksums": str(Path(checksums) if checksums is not None else CHECKSUMS_PATH),
        "audio": audio,
        "languages": languages,
        "language_ids": dict(language_ids or {}),
        "model_kwargs": kwargs,
        "speaker_encoder_kwargs": dict(encoder.kwargs),
        "config": config,
        "config_se": config_se,
        "speakers_file": str(paths["speakers"]) if "speakers" in paths else None,
        "dropped_keys": {"model": _summarise(dropped_model), "speaker_encoder": _summarise(dropped_se)},
        "se_front_end_diff": front,
        "step": _step(ckpt),
        "characters": characters,
    }
    if characters is not None and len(characters) != kwargs["vocab_size"]:
        meta["characters_note"] = (f"the config's character set has {len(characters)} symbols, the model's table "
                                   f"{kwargs['vocab_size']}: check the text front end before synthesis")
    return model.to(device), encoder.to(device), meta


def _num_chars(config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> int | None:
    """None when the config has ``model_args.num_chars``; else the checkpoint's embedding rows (the table
    the weights were trained with), when it has them."""
    if _model_args(config).get("num_chars") is not None:
        return None
    emb = state.get("text_encoder.emb.weight")
    return None if emb is None else int(emb.shape[0])


def _step(ckpt: Any) -> int:
    step = ckpt.get("step") if isinstance(ckpt, Mapping) else None
    return int(step) if isinstance(step, int) else 0


def _summarise(keys: Sequence[str]) -> dict[str, int]:
    """Dropped keys counted by their first name component (``disc``: 120, ...)."""
    out: dict[str, int] = {}
    for k in keys:
        head = re.split(r"\.", k, maxsplit=1)[0]
        out[head] = out.get(head, 0) + 1
    return out
