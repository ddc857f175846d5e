"""``prepare``: build a corpus's ``raw.jsonl`` and run the preparation stages into ``<root>/prepared``.

Outputs (each written atomically)::

    <root>/prepared/manifest.jsonl    the utterances that passed every stage
    <root>/prepared/quarantine.jsonl  {"id", "audio", "stage", "reason"} for every rejected item
                                      (the recipe's own <root>/quarantine.jsonl included)
    <root>/prepared/summary.json      hours, speakers, utterances, singing items, quarantine counts,
                                      per-stage timings
    <root>/prepared/stages/<stage>.jsonl  per-stage journals: a re-run skips everything finished
    <root>/prepared/codes/            codec codes (with ``codec=``), see :mod:`ns2.data.codes`; a re-run
                                      skips every finished shard

With a ``codec``, the codes are extracted after the stages over the utterances that passed them, and
the manifest is written again (atomically) with ``features["codes"]``; the summary gains a ``codes`` block.

Audio paths of ``raw.jsonl`` (relative to ``<root>``) are rebased onto ``<root>/prepared`` before the
first stage, so every path in the prepared manifest resolves against its own folder.
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from ns2.data.manifest import Utterance, read_manifest, summarize, write_manifest
from ns2.data.stages import STAGES, StageContext, StageError, make_stage, run_stage, split_options
from ns2.utils.io import read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

DEFAULT_STAGES = ("audio", "phonemes", "durations", "f0")
# the options of ns2.data.codes.extract_codes a preparation passes on, with their defaults
CODES_OPTIONS = {"shard_size": 256, "batch_frames": 8000, "devices": 1, "accelerator": "auto", "num_workers": 0,
                 "precision": "32-true", "overwrite": False}


def _rebase(utt: Utterance, root: Path, prepared: Path) -> Utterance:
    def move(p: str) -> str:
        return p if os.path.isabs(p) else Path(os.path.relpath(root / p, prepared)).as_posix()

    return utt.replace(audio=move(utt.audio), features={k: move(v) for k, v in utt.features.items()})


def reason_kind(reason: str) -> str:
    """The short class of a quarantine reason (the text before its first colon)."""
    return reason.split(":", 1)[0].strip()


def prepare(corpus: Any, root: str | os.PathLike, stages: Sequence[str] = DEFAULT_STAGES, sample_rate: int = 16000,
            hop_length: int = 200, num_workers: int = 1, durations_source: str = "corpus",
            textgrid_dir: str | os.PathLike | None = None, language: str = "en-us", codec: Any = None,
            codes_options: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """Build ``corpus`` (``corpus.build(root, num_workers) -> raw.jsonl``; ``None`` to use an existing
    ``<root>/raw.jsonl``), run ``stages`` in order and write the prepared manifest; return the summary.

    ``options`` go to the stages that take them, e.g. ``expected_rates``, ``strict_rate``,
    ``strict_channels``, ``min_duration``, ``silence_db`` (audio), ``phone_map``, ``min_frames``
    (durations), ``pitch_floor``, ``pitch_ceiling`` (f0). An option no stage takes is an error.
    ``codec`` (a :class:`~ns2.codec.base.Codec`, or a source for
    :func:`~ns2.codec.export.load_codec_source`: a CodecLit ``.ckpt``, a codec file, a release name) adds
    code extraction after the stages, with ``codes_options`` (keys of :data:`CODES_OPTIONS`); its frame
    rate must be ``sample_rate / hop_length``.
    Worker processes are spawned: a script calling this with ``num_workers > 1`` needs an
    ``if __name__ == "__main__":`` guard.
    """
    t_start = time.perf_counter()
    root = Path(root).expanduser()
    prepared = root / "prepared"
    stages = [str(s) for s in stages]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise StageError(f"unknown stages {unknown}; expected some of {list(STAGES)}")
    options = {k: _plain(v) for k, v in options.items()}
    split_options(stages, options)
    if sample_rate % hop_length:
        log.warning("sample_rate %d is not a multiple of hop_length %d: frame_rate %.4f is fractional",
                    sample_rate, hop_length, sample_rate / hop_length)

    ctx = StageContext(prepared=str(prepared), root=str(root), sample_rate=int(sample_rate), hop_length=int(hop_length))
    stage_args = {"durations": {"source": durations_source, "textgrid_dir": str(textgrid_dir) if textgrid_dir else None},
                  "phonemes": {"language": language}}
    runners = [make_stage(name, **{**options, **stage_args.get(name, {})}) for name in stages]
    for stage in runners:  # settings errors surface before any work is done
        if callable(getattr(stage, "setup", None)):
            stage.setup(ctx)
    codec_source = None
    if codec is not None:
        codes_options = _codes_options(codes_options)
        if isinstance(codec, (str, os.PathLike)):
            codec_source = str(codec)
            codec = _load_codec(codec)
        _check_codec_rate(codec, sample_rate, hop_length)

    build_seconds = 0.0
    if corpus is not None:
        t0 = time.perf_counter()
        raw = Path(corpus.build(root, num_workers))
        build_seconds = time.perf_counter() - t0
    else:
        raw = root / "raw.jsonl"
        if not raw.exists():
            raise FileNotFoundError(f"no corpus given and {raw} does not exist; build the corpus first (ns2 prep data=...)")
    raw_utts = read_manifest(raw)
    raw_audio = {u.id: u.audio for u in raw_utts}
    utts = [_rebase(u, raw.parent, prepared) for u in raw_utts]
    log.info("prepare %s: %d utterances from %s, stages %s", root, len(utts), raw, stages)

    if "audio" not in stages:
        off = sorted({u.sample_rate for u in utts} - {sample_rate})
        if off:
            raise StageError(f"{raw} holds audio at {off} Hz but the model rate is {sample_rate} Hz; add the audio stage")

    quarantined: list[dict] = []
    recipe_q = raw.parent / "quarantine.jsonl"
    if recipe_q.exists():
        quarantined += [{"id": q.get("id"), "audio": q.get("audio"), "stage": q.get("stage", "recipe"),
                         "reason": q.get("reason", "")} for q in read_jsonl(recipe_q)]
    timings: dict[str, dict] = {}
    for name, stage in zip(stages, runners):
        stats: dict[str, Any] = {}
        utts, bad = run_stage(stage, utts, ctx, num_workers=num_workers, stats=stats)
        for q in bad:
            q["audio"] = raw_audio.get(q["id"], q["audio"])
        quarantined += bad
        timings[name] = stats

    manifest = prepared / "manifest.jsonl"
    write_manifest(manifest, utts)
    write_jsonl(prepared / "quarantine.jsonl", quarantined)
    codes_summary = None
    if codec is not None:
        from ns2.data.codes import extract_codes

        codes_summary = extract_codes(codec, utts, prepared, **codes_options)
        codes_summary["codec"] = codec_source or type(codec).__name__
        write_manifest(manifest, utts)
    summary: dict[str, Any] = {
        "root": str(root),
        "raw_manifest": str(raw),
        "manifest": str(manifest),
        "sample_rate": int(sample_rate),
        "hop_length": int(hop_length),
        "frame_rate": sample_rate / hop_length,
        **summarize(utts),
        "quarantined": len(quarantined),
        "quarantine_by_stage": dict(Counter(q["stage"] for q in quarantined)),
        "quarantine_reasons": dict(Counter(reason_kind(q["reason"]) for q in quarantined).most_common()),
        "build_seconds": round(build_seconds, 3),
        "stages": timings,
        **({"codes": codes_summary} if codes_summary is not None else {}),
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    write_json(prepared / "summary.json", summary)
    return summary


def _codes_options(given: Any) -> dict[str, Any]:
    given = _plain(given) or {}
    if not isinstance(given, dict):
        raise StageError(f"codes options must be a mapping of {sorted(CODES_OPTIONS)}, got {given!r}")
    unknown = sorted(set(given) - set(CODES_OPTIONS))
    if unknown:
        raise StageError(f"unknown codes options {unknown}; expected some of {sorted(CODES_OPTIONS)}")
    merged = {**CODES_OPTIONS, **{k: v for k, v in given.items() if v is not None}}
    for key, low in (("shard_size", 1), ("batch_frames", 0), ("num_workers", 0)):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise StageError(f"codes option {key} must be an integer >= {low}, got {value!r}")
    return merged


def _load_codec(source: str | os.PathLike) -> Any:
    from ns2.codec.export import load_codec_source
    from ns2.codec.load import CodecLoadError

    try:
        return load_codec_source(source)
    except CodecLoadError as e:
        raise StageError(f"codec: {e}") from None


def _check_codec_rate(codec: Any, sample_rate: int, hop_length: int) -> None:
    """Codes must share the frames of the durations and F0: the same frame rate."""
    if codec.sample_rate * hop_length != sample_rate * codec.hop_length:
        raise StageError(
            f"codec runs at {codec.sample_rate / codec.hop_length:g} frames/s ({codec.sample_rate} Hz / hop "
            f"{codec.hop_length}) but the corpus is prepared at {sample_rate / hop_length:g} frames/s "
            f"({sample_rate} Hz / hop {hop_length}); set data.sample_rate and data.hop_length to the codec's"
        )


def _plain(value: Any) -> Any:
    """Config containers (OmegaConf) to plain lists and dicts."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value


def format_summary(summary: dict[str, Any]) -> str:
    """A few readable lines about a preparation summary."""
    lines = [
        f"prepared {summary.get('manifest', '?')}",
        f"  {summary['utterances']} utterances, {summary['hours']:.3f} h, {summary['speakers']} speakers, "
        f"{summary['singing']} singing; {summary['quarantined']} quarantined",
    ]
    for split, block in (summary.get("splits") or {}).items():
        lines.append(f"  {split:>5}: {block['utterances']} utterances, {block['hours']:.3f} h, {block['speakers']} speakers")
    if summary.get("quarantine_reasons"):
        reasons = ", ".join(f"{k} x{n}" for k, n in summary["quarantine_reasons"].items())
        lines.append(f"  quarantine reasons: {reasons}")
    for name, st in (summary.get("stages") or {}).items():
        rate = f", {st['items_per_s']} items/s, {st['audio_s_per_s']} audio s/s" if st.get("items_per_s") else ""
        lines.append(f"  stage {name:>9}: {st['seconds']:.2f} s, {st['processed']} processed, {st['skipped']} skipped, "
                     f"{st['quarantined']} quarantined{rate}")
    codes = summary.get("codes")
    if codes:
        rate = f", {codes['audio_seconds_per_second']} audio s/s" if codes.get("audio_seconds_per_second") else ""
        lines.append(f"  codes: {codes['utterances']} utterances, {codes['audio_seconds']:.1f} s of audio, n_q {codes['n_q']}, "
                     f"{codes['shards']} shards ({codes['shards_written']} written, {codes['shards_skipped']} skipped), "
                     f"{codes['seconds']:.2f} s{rate}; codec {codes.get('codec', '?')}")
    return "\n".join(lines)
