"""``ns2 synth``: synthesis from a NaturalSpeech 2 or VALL-E training checkpoint (see configs/synth.yaml).

::

    ns2 synth ckpt=model.ckpt text="Hello there." prompt=speaker.wav out=hello.wav
    ns2 synth ckpt=model.ckpt list=items.jsonl out_dir=outs          # lines {"id", "text", "prompt"}
    ns2 synth ckpt=model.ckpt mode=vc source=a.wav source_text="..." prompt=b.wav out=a_as_b.wav
    ns2 synth ckpt=model.ckpt mode=se source=noisy.wav text="..." [prompt=clean.wav] out=clean.wav
    ns2 synth ckpt=model.ckpt mode=sing score=song.musicxml prompt=voice.wav out=song.wav [transpose=-5]
    ns2 synth ckpt=model.ckpt mode=sing score=song.mid lyrics="hap-py birth-day" prompt=voice.wav out=song.wav
    ns2 synth ckpt=valle.ckpt text="Hello there." prompt=speaker.wav prompt_text="What the prompt says." out=b.wav

Free-text and path values (``text``, ``source_text``, ``prompt``...) are quoted for Hydra before
parsing, so commas, brackets and ``=`` in a sentence need no extra shell quoting. Relative paths in a
list are looked up beside the list file first, then in the working directory. Outputs are written
atomically; a list run writes ``<out_dir>/<id>.wav`` and the log ``<out_dir>/synth.jsonl``, and keeps
going past a bad line (the command then exits non-zero, naming the log).
"""
from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ns2.cli.common import config_dir

MODES = {
    "tts": ("text", "prompt"),
    "vc": ("source", "source_text", "prompt"),
    "se": ("source", "text"),
    "sing": ("score", "prompt"),
}
FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
QUOTED_KEYS = ("text", "source_text", "prompt", "prompt_text", "source", "ckpt", "out", "list", "out_dir", "score",
               "lyrics", "pitch_ref")
# each system's synthesizer class and the command-line keys it takes (key -> constructor argument)
SYSTEMS = {
    "ns2": ("ns2.inference.ns2:NS2Synthesizer", {k: k for k in ("sampler", "steps", "tau", "duration_scale",
                                                                "max_prompt_seconds", "score_pitch", "device")}),
    "valle": ("ns2.inference.valle:VALLESynthesizer", {"prompting": "mode", "temperature": "temperature",
                                                       "top_k": "top_k", "top_p": "top_p",
                                                       "max_prompt_seconds": "max_prompt_seconds", "device": "device"}),
    "yourtts": ("ns2.inference.yourtts:YourTTSSynthesizer", {k: k for k in ("noise_scale", "length_scale", "noise_scale_dp",
                                                                            "max_prompt_seconds", "device")}),
}


class SynthUsageError(ValueError):
    """A command line or list file that cannot be run; one line."""


# --- the command line ---------------------------------------------------------------------------
def _hydra_quote(value: str) -> str:
    """A free-text value as a single-quoted Hydra string that parses back to itself."""
    v = value.replace("${", "\\${")
    v = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", v)
    v = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, v)
    return f"'{v}'"


def quote_values(argv: list[str]) -> list[str]:
    """``text=Hello, world.`` -> ``text='Hello, world.'`` for the free-text / path keys; values that are
    already quoted, ``null`` and every other argument are left as they are."""
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+") in QUOTED_KEYS and value != "null" and not (
            len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
        ):
            arg = f"{key}={_hydra_quote(value)}"
        out.append(arg)
    return out


# --- items ----------------------------------------------------------------------------------------
def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _check_id(utt_id: Any, where: str) -> str:
    utt_id = _str(utt_id)
    if not utt_id or utt_id.strip() != utt_id or any(c in utt_id for c in "/\\\0") or utt_id in (".", ".."):
        raise SynthUsageError(f"{where}: id {utt_id!r} is not a usable file name; expected a non-empty name without slashes")
    return utt_id


def _resolve(path: str, base: Path | None) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None and (base / p).exists():
        return base / p
    return p


def read_items(path: Path, mode: str, seed: int, max_text_chars: int | None = None,
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Items of a JSON-lines list -> (good items, records of bad lines)."""
    if not path.is_file():
        raise SynthUsageError(f"list: no such file: {path}; expected JSON lines like {{\"id\", \"text\", \"prompt\"}}")
    items: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            obj: Any = None
            try:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SynthUsageError(f"{where}: not valid JSON ({e.msg})") from None
                if not isinstance(obj, dict):
                    raise SynthUsageError(f"{where}: expected a JSON object, got {type(obj).__name__}")
                utt_id = _check_id(obj.get("id"), where)
                if utt_id in seen:
                    raise SynthUsageError(f"{where}: id {utt_id!r} appears twice")
                seen.add(utt_id)
                item = {k: _str(obj.get(k)) for k in ("text", "source_text", "prompt", "prompt_text", "source")}
                item.update(id=utt_id, line=n, seed=int(obj.get("seed", seed)))
                _check_item(item, mode, where, base=path.parent, max_text_chars=max_text_chars)
                items.append(item)
            except (SynthUsageError, ValueError, TypeError) as e:
                bad.append({"id": obj.get("id") if isinstance(obj, dict) else None, "line": n,
                            "mode": mode, "status": "failed", "error": str(e)})
    return items, bad


def _check_item(item: dict[str, Any], mode: str, where: str, base: Path | None = None,
                max_text_chars: int | None = None) -> None:
    missing = [k for k in MODES[mode] if not (item.get(k) or "").strip()]
    if missing:
        need = " ".join(f"{k}=..." for k in MODES[mode])
        raise SynthUsageError(f"{where}: mode={mode} needs {', '.join(missing)} (expected {need})")
    for key in ("text", "source_text", "prompt_text"):
        n = len(item.get(key) or "")
        if max_text_chars and n > max_text_chars:
            raise SynthUsageError(f"{where}: {key} has {n} characters, more than max_text_chars={max_text_chars}; "
                                  "split it into sentences (a list=... file) or raise max_text_chars")
    for key in ("prompt", "source", "score"):
        if item.get(key):
            p = _resolve(item[key], base)
            if not p.is_file():
                raise SynthUsageError(f"{where}: {key} file not found: {p}")
            item[key] = str(p)


def _read_audio(path: str, who: str):
    from ns2.inference.systems import read_output

    return read_output(Path(path), who)


def _write_audio(path: Path, wav, sr: int) -> None:
    import numpy as np
    import soundfile as sf

    from ns2.utils.io import atomic_open

    with atomic_open(path, "wb") as f:
        sf.write(f, np.clip(wav, -1.0, 1.0), int(sr), format=FORMATS[path.suffix.lower()])


def _check_out(path: Path, what: str) -> Path:
    if path.suffix.lower() not in FORMATS:
        raise SynthUsageError(f"{what}: {path} has extension {path.suffix!r}; expected one of {', '.join(FORMATS)}")
    return path


def synth_item(synth: Any, mode: str, item: Mapping[str, Any]) -> tuple[Any, int, dict[str, Any]]:
    """One item -> (wav [S], sr, metadata) with ``synth`` (an :class:`NS2Synthesizer`)."""
    seed = int(item.get("seed", 0))
    if mode == "tts":
        prompt, psr = _read_audio(item["prompt"], "prompt")
        wav, sr = synth.synthesize(item["text"], prompt, psr, prompt_text=item.get("prompt_text"), seed=seed,
                                   utt_id=item.get("id"))
    elif mode == "vc":
        source, ssr = _read_audio(item["source"], "source")
        prompt, psr = _read_audio(item["prompt"], "prompt")
        wav, sr = synth.convert(source, ssr, prompt, psr, source_text=item["source_text"], seed=seed)
    elif mode == "sing":
        wav, sr = sing_item(synth, item)
    else:
        source, ssr = _read_audio(item["source"], "source")
        clean, csr = _read_audio(item["prompt"], "prompt") if item.get("prompt") else (None, None)
        wav, sr = synth.enhance(source, ssr, text=item["text"], clean_prompt_wav=clean, clean_prompt_sr=csr, seed=seed)
    return wav, sr, dict(getattr(synth, "last_info", None) or {})


def sing_item(synth: Any, item: Mapping[str, Any]) -> tuple[Any, int]:
    """``mode=sing``: the score file (MusicXML, or MIDI + ``lyrics``) read and converted at the
    synthesizer's frame rate (:func:`ns2.data.singing.convert.score_frames`, moved by ``transpose``
    semitones), then sung in the prompt's voice with the score's durations and pitch; with ``pitch_ref``
    (a sung clip) the pitch is the clip's, stretched to the score
    (:func:`ns2.data.singing.convert.with_reference_pitch`)."""
    from ns2.data.singing.convert import score_frames
    from ns2.data.singing.readers import read_score

    transpose = float(item.get("transpose") or 0.0)
    try:
        notes = read_score(item["score"], item.get("lyrics") or None)
        frames = score_frames(notes, frame_rate=synth.frame_rate, language=synth.language, transpose=transpose)
        if item.get("pitch_ref"):
            from ns2.audio.f0 import compute_f0
            from ns2.data.singing.convert import with_reference_pitch
            from ns2.inference.synthesizer import prepare_prompt

            ref, rsr = _read_audio(item["pitch_ref"], "pitch_ref")
            ref = prepare_prompt(ref, rsr, synth.sample_rate, min_seconds=0.1, name="pitch_ref")
            hop = int(round(synth.sample_rate / synth.frame_rate))
            frames = with_reference_pitch(frames, compute_f0(ref, synth.sample_rate, hop), transpose)
    except ValueError as e:
        raise SynthUsageError(f"{e}") from None
    prompt, psr = _read_audio(item["prompt"], "prompt")
    return synth.synthesize(frames.text, prompt, psr, score=frames.as_score(), seed=int(item.get("seed", 0)),
                            utt_id=item.get("id"))


def _one_line(e: BaseException) -> str:
    from ns2.inference.synthesizer import SynthesisError

    text = " ".join(str(e).split())
    return text if isinstance(e, (SynthesisError, SynthUsageError)) else f"{type(e).__name__}: {text}"


# --- the run ----------------------------------------------------------------------------------------
def load_synthesizer(options: Mapping[str, Any]) -> Any:
    """The synthesizer of ``ckpt`` (``system``: ``ns2``, ``valle``, or ``auto``: the checkpoint's kind) with
    that system's overrides given."""
    import importlib

    from ns2.inference.checkpoint import checkpoint_kind

    system = str(options.get("system") or "auto")
    if system == "auto":
        system = checkpoint_kind(str(options["ckpt"])) or "ns2"
    if system not in SYSTEMS:
        raise SynthUsageError(f"system={system!r}; expected auto or one of {', '.join(SYSTEMS)}")
    target, keys = SYSTEMS[system]
    module, cls = target.split(":")
    overrides = {arg: options[k] for k, arg in keys.items() if options.get(k) is not None}
    return getattr(importlib.import_module(module), cls).from_checkpoint(str(options["ckpt"]), **overrides)


def run_synth(cfg: Mapping[str, Any] | DictConfig, synth: Any = None) -> dict[str, Any]:
    """Run ``ns2 synth`` with config ``cfg`` (configs/synth.yaml); ``synth``: an already built
    synthesizer (then ``ckpt`` is not read). Returns a summary; raises SynthUsageError / ValueError
    (one line) for a request that cannot run."""
    opt = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    mode = str(opt.get("mode") or "tts")
    if mode not in MODES:
        raise SynthUsageError(f"mode={mode!r}; expected one of {', '.join(MODES)}")
    if synth is None and not opt.get("ckpt"):
        raise SynthUsageError("ckpt is required: pass ckpt=PATH (a NaturalSpeech 2 training checkpoint)")
    seed = int(opt.get("seed") or 0)
    max_chars = opt.get("max_text_chars")
    max_chars = int(max_chars) if max_chars else None
    list_path = opt.get("list")
    bad: list[dict[str, Any]] = []
    if list_path:
        out_dir = Path(str(opt.get("out_dir") or ".")).expanduser()
        items, bad = read_items(Path(str(list_path)).expanduser(), mode, seed, max_chars)
        for rec in bad:
            print(rec["error"], file=sys.stderr)
        for item in items:
            item["out"] = out_dir / f"{item['id']}.wav"
        log_path: Path | None = out_dir / "synth.jsonl"
    else:
        item = {k: _str(opt.get(k)) for k in ("text", "source_text", "prompt", "prompt_text", "source", "score", "lyrics",
                                              "pitch_ref")}
        item.update(id=None, seed=seed, transpose=opt.get("transpose"))
        _check_item(item, mode, "the command line", max_text_chars=max_chars)
        if not opt.get("out"):
            raise SynthUsageError("out is required: pass out=PATH.wav")
        item["out"] = _check_out(Path(str(opt["out"])).expanduser(), "out")
        items, log_path = [item], None

    if synth is None:
        t0 = time.perf_counter()
        synth = load_synthesizer(opt)
        print(f"loaded {opt['ckpt']} in {time.perf_counter() - t0:.1f} s: {synth!r}")
    if mode != "tts" and not hasattr(synth, "convert"):
        raise SynthUsageError(f"mode={mode}: {type(synth).__name__} does only tts; voice conversion and enhancement "
                              "are NaturalSpeech 2's (a checkpoint of ns2 train experiment=ns2/...)")

    records: list[dict[str, Any]] = list(bad)
    total_audio = total_time = 0.0
    try:
        for item in items:
            rec: dict[str, Any] = {"id": item["id"], "mode": mode, "seed": item["seed"], "status": "failed", "error": None}
            if "line" in item:
                rec["line"] = item["line"]
            t0 = time.perf_counter()
            try:
                wav, sr, info = synth_item(synth, mode, item)
                elapsed = time.perf_counter() - t0
                _write_audio(item["out"], wav, sr)
            except Exception as e:  # noqa: BLE001 - a bad item is reported and the run goes on
                rec["error"] = _one_line(e)
                records.append(rec)
                print(f"{item['id'] or mode}: failed: {rec['error']}", file=sys.stderr)
                continue
            seconds = len(wav) / sr
            total_audio, total_time = total_audio + seconds, total_time + elapsed
            rec.update(status="ok", out=str(item["out"]), sample_rate=int(sr), seconds=round(seconds, 4),
                       synth_seconds=round(elapsed, 4), rtf=round(elapsed / max(seconds, 1e-9), 5),
                       frames=info.get("frames"), prompt_frames=info.get("prompt_frames"))
            records.append(rec)
            print(f"wrote {item['out']}: {seconds:.2f} s at {sr} Hz in {elapsed:.2f} s (RTF {rec['rtf']:.3f})")
    finally:
        if log_path is not None:
            from ns2.utils.io import write_jsonl

            records.sort(key=lambda r: r.get("line", 0))
            write_jsonl(log_path, records)
    failed = [r for r in records if r["status"] != "ok"]
    summary = {"ok": len(records) - len(failed), "failed": len(failed), "records": records,
               "rtf": round(total_time / total_audio, 5) if total_audio else None,
               "log": None if log_path is None else str(log_path)}
    if log_path is not None:
        rtf = "n/a" if summary["rtf"] is None else f"{summary['rtf']:.3f}"
        print(f"{summary['ok']} written, {summary['failed']} failed, RTF {rtf}; log {log_path}")
    elif failed:
        raise SynthUsageError(failed[0]["error"])
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="synth")
def _main(cfg: DictConfig) -> None:
    try:
        summary = run_synth(cfg)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"ns2 synth: {' '.join(str(e).split())}") from None
    if summary["failed"]:
        raise SystemExit(f"ns2 synth: {summary['failed']} of {summary['failed'] + summary['ok']} items failed; see {summary['log']}")


def main() -> None:
    sys.argv = [sys.argv[0], *quote_values(sys.argv[1:])]
    _main()


if __name__ == "__main__":
    main()
