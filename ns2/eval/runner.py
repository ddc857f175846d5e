"""The evaluation run: every selected system on every test set of a protocol, scored item by item.

:func:`run_eval` (what ``ns2 eval`` calls) does, for each system and test set, for each item of this
process's shard that has no record yet:

1. read the prompt (cropped) and call ``system.synthesize(text, prompt, sr, prompt_text=..., seed=...,
   utt_id=id)``; an exception or an unusable waveform makes a ``failed`` record with the error;
2. bring synthesis, prompt, ground truth (and the codec-resynthesised prompt when a codec is given)
   to one sample rate, find the phoneme alignments prosody needs (:mod:`ns2.eval.inputs`), and score
   with every metric (:class:`~ns2.eval.scoring.Scorer`);
3. append the record to the journal (:mod:`ns2.eval.records`) at once.

When every item of every list has a record (in any shard's journal), the report is written
(:mod:`ns2.eval.report`); ``stage=report`` writes it from whatever records exist.
"""
from __future__ import annotations

import logging
import math
import platform
import time
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ns2.eval.protocol import ProtocolItem, load_item_audio
from ns2.eval.records import RecordJournal, read_records
from ns2.eval.scoring import ItemScores, Scorer, expected_keys, key_direction
from ns2.eval.shard import journal_name, resolve_shard, shard_items
from ns2.eval.testset import TestSet, load_test_sets
from ns2.metrics.audio import resample
from ns2.utils.io import atomic_open, write_json

__all__ = ["EvalInputs", "build_eval_metrics", "item_seed", "make_system", "run_eval", "score_item", "system_labels"]

log = logging.getLogger("ns2.eval")


def item_seed(seed: int, item_id: str) -> int:
    """The seed a system gets for one item: ``seed`` mixed with the id (stable, order-independent)."""
    return (int(seed) * 1_000_003 + zlib.crc32(item_id.encode("utf-8"))) % (2**31)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


# --- metrics ------------------------------------------------------------------------------------
def build_eval_metrics(cfg: Mapping[str, Any]) -> tuple[list[Any], list[dict[str, Any]], dict[str, str]]:
    """(metrics, their descriptions for the report, ``{optional metric: why absent}``).

    ``cfg.metrics`` are built with fallbacks only when ``cfg.fallbacks``; ``cfg.optional_metrics``
    (e.g. utmos) are built when their backbone is present and otherwise listed as absent (never
    replaced by a fallback).
    """
    from ns2.metrics.backbones import MissingBackboneError
    from ns2.metrics.registry import build_metrics

    options = {k: dict(v) for k, v in (cfg.get("metric_options") or {}).items()}
    wanted = set(cfg.get("metrics") or []) | set(cfg.get("optional_metrics") or [])
    if "wer_pocketsphinx_domain" in wanted:  # the domain LM: the synthetic corpus's unless a file is named
        domain = options.setdefault("wer_pocketsphinx_domain", {})
        if domain.get("lm") in (None, "synthetic"):
            from ns2.data.synthetic.lm import synthetic_domain_lm

            domain["lm"] = str(synthetic_domain_lm(cfg.get("cache_dir")))
    common = dict(device=str(cfg.get("device") or "cpu"), checksums=cfg.get("checksums"), options=options)
    resolved: dict[str, str] = {}
    metrics = build_metrics(list(cfg.get("metrics") or []), cfg.get("cache_dir"), bool(cfg.get("fallbacks")),
                            resolved=resolved, **common)
    absent: dict[str, str] = {}
    names = {m.name for m in metrics}
    for name in cfg.get("optional_metrics") or []:
        if name in names:
            continue
        try:
            extra = build_metrics([name], cfg.get("cache_dir"), False, resolved=resolved, **common)
        except MissingBackboneError as e:
            absent[name] = str(e)
            continue
        metrics.extend(m for m in extra if m.name not in names)
        names |= {m.name for m in extra}
    normalizers = list((cfg.get("wer") or {}).get("normalizers") or ["seed", "whisper_basic"])
    codec = bool((cfg.get("sim_r") or {}).get("codec"))
    info = []
    for m in metrics:
        asked = sorted(k for k, v in resolved.items() if v == m.name)
        info.append({
            "name": m.name, "backbone": m.backbone, "requested_as": asked,
            "fallback": any(a != m.name for a in asked),
            "keys": expected_keys(m, normalizers, with_resynth=codec, with_reference=True),
            "higher_is_better": {k: key_direction(k, m) for k in expected_keys(m, normalizers, codec, True)},
            "is_wer": m.name.startswith("wer_"),
        })
    return metrics, info, absent


# --- systems ------------------------------------------------------------------------------------
def system_labels(cfg: Mapping[str, Any]) -> dict[str, str]:
    """``{config key: report label}`` for the selected systems (label = the config's ``name`` or its key)."""
    systems = list(cfg.get("systems") or [])
    defs = cfg.get("system") or {}
    if not systems:
        raise ValueError("systems: expected at least one system name, e.g. systems=[groundtruth]")
    labels = {}
    for key in systems:
        if key not in defs:
            raise KeyError(f"system {key!r} is not configured; expected one of {sorted(defs)} (configs/eval/system/)")
        labels[key] = str(defs[key].get("name") or key)
    dup = sorted({v for v in labels.values() if list(labels.values()).count(v) > 1})
    if dup:
        raise ValueError(f"systems: report labels must be unique, got {dup} twice; set system.<key>.name")
    return labels


def make_system(node: Mapping[str, Any], label: str | None = None) -> Any:
    """Instantiate a system config (``_target_`` + arguments; ``name`` is the report label, not an
    argument) into a Synthesizer named ``label``."""
    from hydra.utils import instantiate

    from ns2.inference.synthesizer import Synthesizer

    args = {k: v for k, v in dict(node).items() if k != "name"}
    system = instantiate(args, _convert_="all")
    if not isinstance(system, Synthesizer):
        raise TypeError(f"system {node.get('_target_')}: expected a Synthesizer, got {type(system).__name__}")
    system.name = label or str(node.get("name") or system.name)
    return system


# --- inputs of one item -------------------------------------------------------------------------
class EvalInputs:
    """Prompt / ground truth / resynthesis / alignments of items, at ``sample_rate``, cached per prompt."""

    def __init__(self, sample_rate: int, resynth: Any = None, aligner: Any = None, frame_tolerance: int = 2) -> None:
        self.sample_rate = int(sample_rate)
        self.resynth = resynth
        self.aligner = aligner
        self.frame_tolerance = int(frame_tolerance)
        self._resynth_cache: dict[tuple, np.ndarray] = {}

    def _phonemes(self, ts: TestSet, utt_id: str | None, text: str | None, language: str) -> list[str] | None:
        u = ts.manifest.get(utt_id) if (ts.manifest is not None and utt_id) else None
        if u is not None and u.phonemes:
            return list(u.phonemes)
        if text and self.aligner is not None:
            return self.aligner.phonemes_of(text, language)
        return None

    def _aligned(self, wav: np.ndarray, phonemes: list[str] | None) -> Any:
        if self.aligner is None or not phonemes:
            return None
        return self.aligner(wav, self.sample_rate, phonemes)

    def build(self, item: ProtocolItem, ts: TestSet, prompt: np.ndarray, hyp: np.ndarray,
              same_timing: bool, system_alignment: Any = None) -> tuple[dict[str, Any], dict[str, str], list[str]]:
        """(inputs for :meth:`Scorer.score`, ``{input: why unavailable}``, notes). All audio at ``sample_rate``.

        ``system_alignment``: the phoneme timing the system reports for its own output
        (``{"phonemes", "durations", "frame_rate"}``; see :func:`system_alignment`), used for the
        synthesis's prosody before the aligner."""
        from ns2.eval.inputs import crop_alignment, manifest_alignment

        sr = self.sample_rate
        inputs: dict[str, Any] = dict.fromkeys(
            ("prompt_wav", "ref_wav", "prompt_resynth_wav", "hyp_alignment", "prompt_alignment", "ref_alignment",
             "score"))
        why: dict[str, str] = {}
        notes: list[str] = []
        inputs["prompt_wav"] = prompt
        inputs["score"] = item.extra.get("score")
        if inputs["score"] is None:
            why["score"] = "the test item has no score (extra.score: singing items only)"
        if item.gt_wav:
            try:
                ref, rsr = load_item_audio(item, "gt", ts.audio_root)
                inputs["ref_wav"] = resample(ref, rsr, sr)
            except Exception as e:  # noqa: BLE001
                why["ref_wav"] = _one_line(e)
        else:
            why["ref_wav"] = "the test item has no ground truth"
        if self.resynth is not None:
            key = (item.prompt_wav, item.prompt_start, item.prompt_end)
            if key not in self._resynth_cache:
                self._resynth_cache[key] = self.resynth(prompt, sr)
            inputs["prompt_resynth_wav"] = self._resynth_cache[key]
        else:
            why["prompt_resynth_wav"] = "no codec given (sim_r.codec=<checkpoint or release>)"
        # alignments: manifest durations first, the aligner second
        man = ts.manifest
        no_align = "no phoneme durations: the protocol has no manifest with durations and no prosody.aligner is set"
        try:
            pu = man.get(item.prompt_id) if (man is not None and item.prompt_id) else None
            pa = manifest_alignment(pu, item.prompt_start, item.prompt_end) if pu is not None else None
            if pa is None and self.aligner is not None and item.prompt_text:
                pa = self._aligned(prompt, self.aligner.phonemes_of(item.prompt_text, item.language))
            inputs["prompt_alignment"] = pa
            if pa is None:
                why["prompt_alignment"] = no_align
        except ValueError as e:
            why["prompt_alignment"] = _one_line(e)
        rid = item.reference_id
        ru = man.get(rid) if (man is not None and rid) else None
        ra = manifest_alignment(ru) if ru is not None else None
        if ra is None and inputs["ref_wav"] is not None:
            ra = self._aligned(inputs["ref_wav"], self._phonemes(ts, rid, item.text, item.language))
        inputs["ref_alignment"] = ra
        if ra is None:
            why["ref_alignment"] = no_align if item.gt_wav else "the test item has no ground truth"
        if same_timing and ra is not None:
            frames = math.ceil(hyp.size * ra.frame_rate / sr)
            if abs(frames - ra.num_frames) <= self.frame_tolerance:
                inputs["hyp_alignment"] = ra
            else:
                notes.append(f"output has {frames} frames, ground truth {ra.num_frames}: its durations were not reused")
        if inputs["hyp_alignment"] is None and system_alignment is not None:
            try:
                inputs["hyp_alignment"] = crop_alignment(system_alignment["durations"], float(system_alignment["frame_rate"]),
                                                         system_alignment.get("phonemes"))
                notes.append("synthesis timing: reported by the system")
            except (KeyError, TypeError, ValueError) as e:
                notes.append(f"the system's reported timing is unusable ({_one_line(e)})")
        if inputs["hyp_alignment"] is None:
            inputs["hyp_alignment"] = self._aligned(hyp, self._phonemes(ts, rid, item.text, item.language))
        if inputs["hyp_alignment"] is None:
            why["hyp_alignment"] = (
                "no alignment of the synthesis: set prosody.aligner=<aligner checkpoint>, or "
                "system.<name>.same_timing_as_reference=true for outputs that keep the ground truth's timing"
            )
        return inputs, why, notes


# --- one item -----------------------------------------------------------------------------------
def system_alignment(system: Any) -> dict[str, Any] | None:
    """The timing a system reports for its last output (``reports_alignment`` and ``last_alignment``:
    e.g. NaturalSpeech 2's own phoneme durations), or None."""
    if not getattr(system, "reports_alignment", False):
        return None
    return getattr(system, "last_alignment", None)



def score_item(system: Any, label: str, ts: TestSet, item: ProtocolItem, scorer: Scorer, inputs: EvalInputs,
               seed: int, audio_dir: Path | None = None) -> dict[str, Any]:
    """Synthesize and score one item; returns its record (``status`` ``ok`` or ``failed``)."""
    s = item_seed(seed, item.id)
    rec: dict[str, Any] = {"id": item.id, "test_set": ts.name, "system": label, "seed": s, "status": "failed",
                           "error": None, "scores": {}, "metric_errors": {}, "skipped": {}, "transcripts": {}}
    try:
        prompt, psr = load_item_audio(item, "prompt", ts.audio_root)
    except Exception as e:  # noqa: BLE001
        rec["error"] = f"prompt: {_one_line(e)}"
        return rec
    t0 = time.perf_counter()
    try:
        from ns2.eval.inputs import synthesis_score

        score = synthesis_score(item.extra)  # singing items are sung from their score; None for speech
        kwargs = {"score": score} if score is not None else {}
        wav, sr = system.synthesize(item.text, prompt, psr, prompt_text=item.prompt_text, seed=s, utt_id=item.id,
                                    **kwargs)
        hyp = np.asarray(wav, dtype=np.float32)
        if hyp.ndim == 2 and 1 in hyp.shape:
            hyp = hyp.reshape(-1)
        if hyp.ndim != 1 or hyp.size == 0 or not np.all(np.isfinite(hyp)) or int(sr) <= 0:
            raise ValueError(f"unusable output: shape {tuple(np.shape(wav))}, rate {sr}, expected finite mono audio")
    except Exception as e:  # noqa: BLE001  (a failure is recorded and counted, never skipped)
        rec["error"] = _one_line(e)
        rec["synth_seconds"] = round(time.perf_counter() - t0, 4)
        return rec
    synth_seconds = time.perf_counter() - t0
    rec.update(synth_seconds=round(synth_seconds, 4), output_seconds=round(hyp.size / int(sr), 4), output_sr=int(sr))
    if not getattr(system, "stores_outputs", False):  # a look-up's time is no synthesis speed
        rec["rtf"] = round(synth_seconds / max(hyp.size / int(sr), 1e-9), 5)
    if audio_dir is not None:
        import soundfile as sf

        with atomic_open(audio_dir / f"{item.id}.wav", "wb") as f:
            sf.write(f, hyp, int(sr), format="WAV", subtype="FLOAT")
    esr = scorer.sample_rate
    hyp_e = resample(hyp, int(sr), esr)
    prompt_e = resample(prompt, psr, esr)
    ins, why, notes = inputs.build(item, ts, prompt_e, hyp_e, bool(getattr(system, "same_timing_as_reference", False)),
                                   system_alignment(system))
    res: ItemScores = scorer.score(hyp_e, text=item.text, inputs=ins, unavailable=why)
    rec.update(status="ok", scores=res.scores, metric_errors=res.metric_errors, skipped=res.skipped,
               transcripts=res.transcripts)
    if notes:
        rec["notes"] = notes
    return rec


# --- the run ------------------------------------------------------------------------------------
def _plain(cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def _complete(out: Path, sets: Sequence[TestSet], labels: Sequence[str]) -> bool:
    for ts in sets:
        for label in labels:
            recs, _ = read_records(out / "records" / ts.name, label)
            if any(it.id not in recs for it in ts.items):
                return False
    return True


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "numpy", "ns2", "jiwer", "resemblyzer", "pocketsphinx", "speechmos", "praat-parselmouth", "transformers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _barrier() -> bool:
    """Wait for every rank when torch.distributed is initialised; True when it is."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return False
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        return True
    return False


def run_eval(cfg: Any) -> dict[str, Any]:
    """Score (and report) as configured; returns ``{"out_dir", "complete", "report"?, "scored"}``."""
    from ns2.utils.provenance import git_commit

    conf = _plain(cfg)
    out = Path(conf["out_dir"])
    stage = str(conf.get("stage") or "all")
    if stage not in ("all", "score", "report"):
        raise ValueError(f"stage: expected all, score or report, got {stage!r}")
    sets = load_test_sets(conf["protocol"], conf.get("max_items"))
    labels = system_labels(conf)
    index, count = resolve_shard(conf.get("shard"))
    seed = int(conf.get("seed") or 0)
    scored = 0
    if stage in ("all", "score"):
        metrics, metric_info, absent = build_eval_metrics(conf)
        log.info("metrics: %s%s", ", ".join(m.name for m in metrics),
                 f" (absent: {', '.join(absent)})" if absent else "")
        resynth = aligner = None
        if (conf.get("sim_r") or {}).get("codec"):
            from ns2.inference.systems import CodecResynthesis

            resynth = CodecResynthesis(conf["sim_r"]["codec"], device=str(conf.get("device") or "cpu"),
                                       n_q=conf["sim_r"].get("n_q"))
        if (conf.get("prosody") or {}).get("aligner"):
            from ns2.eval.inputs import AlignerDurations

            aligner = AlignerDurations(conf["prosody"]["aligner"], device=str(conf.get("device") or "cpu"))
        wer_cfg = conf.get("wer") or {}
        sr = int(conf.get("sample_rate") or 16000)
        scorer = Scorer(metrics, sample_rate=sr, normalizers=wer_cfg.get("normalizers") or ("seed", "whisper_basic"))
        inputs = EvalInputs(sr, resynth, aligner, int((conf.get("prosody") or {}).get("frame_tolerance", 2)))
        run_info: dict[str, Any] = {
            "commit": git_commit(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "shard": [index, count],
            "metrics": metric_info, "absent_metrics": absent, "systems": {}, "seed": seed,
            "sim_r_codec": resynth.describe() if resynth is not None else None,
            "aligner": aligner.describe() if aligner is not None else None, "versions": _versions(),
        }
        info_file = out / "runs" / f"shard-{index:02d}-of-{count:02d}.json"
        for key, label in labels.items():
            system = make_system(conf["system"][key], label)
            run_info["systems"][label] = {**system.describe(), "config_key": key,
                                          "same_timing_as_reference": bool(getattr(system, "same_timing_as_reference", False)),
                                          "reports_alignment": bool(getattr(system, "reports_alignment", False))}
            write_json(info_file, run_info)
            save = bool(conf.get("save_audio")) and not getattr(system, "stores_outputs", False)
            for ts in sets:
                if hasattr(system, "bind"):
                    system.bind(ts.items, ts.audio_root)
                folder = out / "records" / ts.name
                journal = RecordJournal(folder / journal_name(label, index, count))
                recs, _ = read_records(folder, label)
                retry = bool(conf.get("retry_failed"))
                todo = [it for it in shard_items(ts.items, index, count)
                        if it.id not in recs or (retry and recs[it.id].get("status") != "ok")]
                log.info("%s / %s: %d items to score (%d already scored)", ts.name, label, len(todo),
                         len(ts.items) - len(todo) if count == 1 else len(recs))
                t0 = time.perf_counter()
                for k, item in enumerate(todo, 1):
                    rec = score_item(system, label, ts, item, scorer, inputs, seed,
                                     out / "audio" / ts.name / label if save else None)
                    journal.append(rec)
                    scored += 1
                    if rec["status"] != "ok":
                        log.warning("%s / %s / %s failed: %s", ts.name, label, item.id, rec["error"])
                    if k % 20 == 0 or k == len(todo):
                        el = time.perf_counter() - t0
                        log.info("%s / %s: %d/%d (%.1f s, ~%.0f s left)", ts.name, label, k, len(todo), el,
                                 el / k * (len(todo) - k))
        run_info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(info_file, run_info)
    distributed = _barrier()
    complete = _complete(out, sets, list(labels.values()))
    result: dict[str, Any] = {"out_dir": str(out), "complete": complete, "scored": scored}
    if distributed and index != 0:
        return result  # rank 0 writes the report
    if stage == "report" or (stage == "all" and complete):
        from ns2.eval.report import write_report

        result["report"] = write_report(out, sets, list(labels.values()), conf)
    elif stage == "all":
        log.info("shard %d/%d done; the report waits for the other shards (or run with stage=report)", index, count)
    return result
