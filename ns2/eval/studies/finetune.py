"""Prompt-only zero-shot against speaker-adaptive fine-tuning on one held-out voice.

Two steps around ``ns2 train experiment=ns2/finetune`` (see experiments/ns2_finetune_tiny/run.sh)::

    python -m ns2.eval.studies.finetune subsets MANIFEST --speaker 9000 --counts 5 10 15 --out DIR
    python -m ns2.eval.studies.finetune evaluate DIR/split.json --system zero_shot=BASE.ckpt \\
        --system ft_5=FT5.ckpt ... --out results.json

``subsets``: the clips of ``speaker`` (a held-out speaker of a prepared corpus, never trained on),
sorted by id, are split into fine-tuning clips (the first ``max(counts)``; each smaller set is a prefix
of the larger ones) and evaluation clips (all the others, never used for fine-tuning). For each count a
corpus ``DIR/n<count>/prepared/`` holds a manifest of those clips as its ``train`` split, beside links
to the source corpus's audio, features and codes (nothing is copied or modified).

``evaluate``: every system synthesizes the text of every evaluation clip, prompted by the first
``prompt_seconds`` of the same prompt clip (the first fine-tuning clip, which every fine-tuned system has
seen), with the checkpoint's sampler and a fixed seed. Reported per system, as means over the
evaluation clips, with the resemblyzer speaker encoder (``sim_resemblyzer``, the offline fallback of the
papers' WavLM-TDNN SIM; not comparable with published SIM): ``sim_resemblyzer_o``: synthesis against
the prompt recording; ``sim_resemblyzer_target``: synthesis against the voice's own recording of the
same sentence. Ceiling: the recordings themselves against the prompt.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ns2.data.manifest import Utterance, read_manifest, write_manifest
from ns2.utils.io import write_json

__all__ = ["make_subsets", "evaluate_systems", "main"]

LINKED = ("audio", "codes", "f0", "f0_stats.json")


def make_subsets(manifest: str | os.PathLike, speaker: str, counts: Sequence[int], out: str | os.PathLike) -> dict[str, Any]:
    """Write the fine-tuning corpora and ``out/split.json`` (module docstring). Raises ValueError when the
    speaker has too few clips to leave at least one for evaluation."""
    manifest, out = Path(manifest).resolve(), Path(out)
    utts = sorted((u for u in read_manifest(manifest) if u.speaker == str(speaker) and u.kind == "speech"),
                  key=lambda u: u.id)
    n_max = max(int(c) for c in counts)
    if len(utts) <= n_max:
        raise ValueError(f"speaker {speaker}: {len(utts)} clips in {manifest}; expected more than {n_max} "
                         "(the largest fine-tuning set) to leave clips for evaluation")
    if any(u.split == "train" for u in utts):
        raise ValueError(f"speaker {speaker}: some clips are in the train split of {manifest}; expected a held-out speaker")
    train, evaluation = utts[:n_max], utts[n_max:]
    corpora = {}
    for c in sorted(int(c) for c in counts):
        prepared = out / f"n{c}" / "prepared"
        prepared.mkdir(parents=True, exist_ok=True)
        for name in LINKED:
            link, target = prepared / name, manifest.parent / name
            if target.exists() and not link.exists():
                link.symlink_to(target)
        write_manifest(prepared / "manifest.jsonl", [dataclasses.replace(u, split="train") for u in train[:c]])
        corpora[str(c)] = str(prepared / "manifest.jsonl")
    split = {"source_manifest": str(manifest), "speaker": str(speaker), "finetune_ids": [u.id for u in train],
             "eval_ids": [u.id for u in evaluation], "prompt_id": train[0].id, "corpora": corpora}
    write_json(out / "split.json", split)
    return split


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def evaluate_systems(split: Mapping[str, Any], systems: Mapping[str, str], *, prompt_seconds: float = 3.0,
                     seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """SIM of each system (``{name: checkpoint}``) on the evaluation clips of ``split`` (module docstring)."""
    import soundfile as sf

    from ns2.inference import NS2Synthesizer
    from ns2.metrics import build_metrics

    manifest = Path(split["source_manifest"])
    by_id: dict[str, Utterance] = {u.id: u for u in read_manifest(manifest)}
    prompt_utt = by_id[split["prompt_id"]]
    prompt, sr = sf.read(prompt_utt.audio_path(manifest.parent), dtype="float32")
    prompt = prompt[: int(prompt_seconds * sr)]
    (sim,) = build_metrics(["sim_resemblyzer"], device=device)
    targets = {i: sf.read(by_id[i].audio_path(manifest.parent), dtype="float32")[0] for i in split["eval_ids"]}
    ceiling = [sim.similarity(targets[i], prompt, sr) for i in split["eval_ids"]]
    out: dict[str, Any] = {"ceiling": {"sim_resemblyzer_o": _mean(ceiling)}, "systems": {}, "records": []}
    for name, ckpt in systems.items():
        tts = NS2Synthesizer.from_checkpoint(ckpt, device=device)
        s_o, s_t = [], []
        for i in split["eval_ids"]:
            wav, out_sr = tts.synthesize(by_id[i].text, prompt, sr, seed=seed)
            if out_sr != sr:
                raise ValueError(f"{ckpt}: synthesizes at {out_sr} Hz, the corpus is at {sr} Hz")
            rec = {"system": name, "id": i, "sim_resemblyzer_o": sim.similarity(wav, prompt, sr),
                   "sim_resemblyzer_target": sim.similarity(wav, targets[i], sr), "seconds": len(wav) / sr}
            s_o.append(rec["sim_resemblyzer_o"])
            s_t.append(rec["sim_resemblyzer_target"])
            out["records"].append(rec)
        out["systems"][name] = {"checkpoint": str(ckpt), "sampler": tts.describe()["sampler"],
                                "steps": tts.sampler.steps, "sim_resemblyzer_o": _mean(s_o),
                                "sim_resemblyzer_target": _mean(s_t), "items": len(s_o)}
    out["settings"] = {"prompt_id": split["prompt_id"], "prompt_seconds": prompt_seconds, "seed": seed,
                       "eval_ids": list(split["eval_ids"]), "speaker": split["speaker"], "metric": "sim_resemblyzer"}
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from ns2.utils.provenance import git_commit

    ap = argparse.ArgumentParser(prog="python -m ns2.eval.studies.finetune", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("subsets")
    a.add_argument("manifest")
    a.add_argument("--speaker", required=True)
    a.add_argument("--counts", type=int, nargs="+", default=[5, 10, 15])
    a.add_argument("--out", required=True)
    b = sub.add_parser("evaluate")
    b.add_argument("split")
    b.add_argument("--system", action="append", required=True, help="NAME=CHECKPOINT (repeat)")
    b.add_argument("--out", required=True)
    b.add_argument("--prompt-seconds", type=float, default=3.0)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--extra", default=None, help="a JSON file merged into the results (budget, timings)")
    args = ap.parse_args(argv)
    if args.cmd == "subsets":
        result = make_subsets(args.manifest, args.speaker, args.counts, args.out)
    else:
        systems = dict(s.split("=", 1) for s in args.system)
        split = json.loads(Path(args.split).read_text(encoding="utf-8"))
        result = evaluate_systems(split, systems, prompt_seconds=args.prompt_seconds, seed=args.seed)
        result["commit"] = git_commit()
        result["split"] = {k: split[k] for k in ("source_manifest", "speaker", "finetune_ids", "eval_ids", "prompt_id")}
        if args.extra:
            result["run"] = json.loads(Path(args.extra).read_text(encoding="utf-8"))
        write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=1))
    return result


if __name__ == "__main__":
    main()
