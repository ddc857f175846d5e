"""Does a trained NaturalSpeech 2 learn? Measurements on held-out speakers of a prepared corpus.

``python -m ns2.eval.studies.ns2 CKPT MANIFEST --out results.json [--split test] [--per-speaker 10]``

For every held-out utterance (``split``, speech only) the prompt is the first ``prompt_seconds`` of
*another* utterance of the same speaker (the zero-shot setting: the target is never seen), taken from
that utterance's codec codes. Reported (all from the EMA weights in the checkpoint):

* **Duration predictor** (teacher-forced text and prompt): mean absolute error in frames and L1 on the
  log(1 + d) scale the predictor is trained on, against a *mean baseline* that predicts the training
  split's mean log(1 + d) for every phoneme.
* **Pitch predictor** (ground-truth durations): mean absolute error in cents on voiced frames, against
  two baselines: the training split's mean log-F0 (global), and the prompt's own mean log-F0 (a
  speaker-aware baseline that needs no model).
* **Zero-shot pitch following**: Pearson correlation between the prompt's mean log-F0 and the
  synthesised speech's mean log-F0 (parselmouth on the decoded audio; full inference: predicted
  durations and pitch), across held-out speakers (per-speaker means) and across utterances; the same for
  the pitch predictor's own output (``predicted``: before the diffusion model and the codec), and two
  ceilings: the target's recording (``gt``) and its codec resynthesis from the ground-truth codes
  (``resynth``: what the codec's decoder can carry at all).
* **Latent error** with ground-truth durations (predicted pitch): mean squared error of the sampled
  latent relative to the ground-truth latent's variance, against the prompt-mean latent baseline.
* **What the latents carry**: a ridge probe from latent statistics to mean log-F0, fitted on the other
  splits and scored on ``split`` (:func:`latent_f0_probe`): the pitch information a prompt can give.
* **Samplers against steps**: the error of few-step samplers relative to the 150-step Euler ODE result
  from the same start noise, relative to the reference's variance.

Everything is seeded; the results carry the commit, checkpoint, manifest and settings.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ns2.audio.f0 import compute_f0, f0_to_log, mean_log_f0
from ns2.data.codes import load_codes
from ns2.data.manifest import Utterance, read_manifest
from ns2.inference.samplers import get_sampler, prior_noise
from ns2.utils.io import write_json

log = logging.getLogger(__name__)

CENTS = 1200.0 / math.log(2.0)
SAMPLER_GRID: tuple[tuple[str, int], ...] = (("euler_ode", 10), ("euler_ode", 50), ("heun_ode", 5), ("heun_ode", 10),
                                              ("dpm_solver_pp", 5), ("dpm_solver_pp", 10), ("dpm_solver_pp", 20))


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation of two equally long sequences; NaN when either is constant or shorter than 3."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _load_f0(utt: Utterance, root: Path) -> np.ndarray:
    return np.load(utt.feature_path("f0", root)).astype(np.float32)


def pick_items(utts: Sequence[Utterance], split: str, per_speaker: int) -> list[tuple[Utterance, Utterance]]:
    """``(target, prompt source)`` pairs: up to ``per_speaker`` targets per speaker of ``split``, each
    prompted by the next utterance of the same speaker (in id order, cyclically)."""
    by_spk: dict[str, list[Utterance]] = defaultdict(list)
    for u in utts:
        if u.split == split and u.kind == "speech" and u.durations is not None and "codes" in u.features:
            by_spk[u.speaker].append(u)
    pairs = []
    for spk in sorted(by_spk):
        us = sorted(by_spk[spk], key=lambda u: u.id)
        if len(us) < 2:
            continue
        for i, u in enumerate(us[:per_speaker]):
            pairs.append((u, us[(i + 1) % len(us)]))
    return pairs


def training_means(utts: Sequence[Utterance], root: Path, max_items: int = 400) -> dict[str, float]:
    """The mean baselines: mean log(1 + d) per phoneme and mean voiced log-F0 over the train split."""
    train = [u for u in utts if u.split == "train" and u.kind == "speech" and u.durations is not None][:max_items]
    if not train:
        raise ValueError("the manifest has no train-split speech utterances for the mean baselines")
    log_d = np.concatenate([np.log1p(np.asarray(u.durations, dtype=np.float64)) for u in train])
    f0s = [f0_to_log(_load_f0(u, root)) for u in train if "f0" in u.features]
    lf = np.concatenate([lf[v] for lf, v in f0s]) if f0s else np.zeros(1)
    return {"log_duration": float(log_d.mean()), "log_f0": float(lf.mean()), "train_items": len(train)}


def latent_f0_probe(codec: Any, utts: Sequence[Utterance], root: Path, split: str = "test",
                    ridge: float = 10.0) -> dict[str, float]:
    """How much speaker pitch the codec's latents carry: a ridge regression from an utterance's latent
    statistics (mean and std over frames per dimension) to its mean voiced log-F0, fitted on every other
    split's speech and scored on ``split``. -> ``{"r", "mae_cents", "n_train", "n_test"}``."""
    feats, target, held = [], [], []
    for u in utts:
        if u.kind != "speech" or "codes" not in u.features or "f0" not in u.features:
            continue
        lf, v = f0_to_log(_load_f0(u, root))
        if not v.any():
            continue
        with torch.no_grad():
            z = codec.codes_to_latent(load_codes(u, root)[None])[0].double().numpy()
        feats.append(np.concatenate([z.mean(1), z.std(1)]))
        target.append(float(lf[v].mean()))
        held.append(u.split == split)
    x, y, te = np.asarray(feats), np.asarray(target), np.asarray(held, dtype=bool)
    tr = ~te
    if tr.sum() < 3 or te.sum() < 3:
        return {"r": float("nan"), "mae_cents": float("nan"), "n_train": int(tr.sum()), "n_test": int(te.sum())}
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    a = np.c_[(x - mu) / sd, np.ones(len(x))]
    w = np.linalg.solve(a[tr].T @ a[tr] + ridge * np.eye(a.shape[1]), a[tr].T @ y[tr])
    pred = a[te] @ w
    return {"r": pearson(pred, y[te]), "mae_cents": float(CENTS * np.abs(pred - y[te]).mean()),
            "n_train": int(tr.sum()), "n_test": int(te.sum())}


class Study:
    """Holds the checkpoint's pieces and measures one (target, prompt) pair at a time."""

    def __init__(self, ckpt: Any, root: Path, prompt_seconds: float = 3.0, steps: int = 150, seed: int = 0):
        self.net, self.codec, self.sde, self.symbols = ckpt.net.eval(), ckpt.codec.eval(), ckpt.sde, ckpt.symbols
        self.root, self.seed, self.steps = root, int(seed), int(steps)
        self.sr, self.hop = int(self.codec.sample_rate), int(self.codec.hop_length)
        self.prompt_frames = max(1, int(round(prompt_seconds * self.sr / self.hop)))

    # -- inputs ----------------------------------------------------------------------------------
    def latent(self, utt: Utterance) -> torch.Tensor:
        return self.codec.codes_to_latent(load_codes(utt, self.root)[None])  # [1, D, T]

    def prompt(self, src: Utterance) -> tuple[torch.Tensor, np.ndarray]:
        """``(z_prompt [1, D, Tp], prompt audio [Tp * hop])`` from the start of ``src``."""
        z = self.latent(src)[..., : self.prompt_frames]
        from ns2.data.audio import load_audio, to_mono

        x, sr = load_audio(src.audio_path(self.root))
        if sr != self.sr:
            raise ValueError(f"{src.id}: audio at {sr} Hz, the codec runs at {self.sr} Hz")
        return z, to_mono(x)[: z.shape[-1] * self.hop]

    def phonemes(self, utt: Utterance) -> torch.Tensor:
        return torch.tensor([self.symbols.encode(utt.phonemes)], dtype=torch.long)

    def sample(self, cond: Any, name: str, steps: int, noise: torch.Tensor) -> torch.Tensor:
        denoise = self.net.denoiser(cond.cond, cond.frame_mask, cond.prompt_hidden, cond.prompt_mask)
        sampler = get_sampler(name, steps=steps)
        return sampler(denoise, self.sde, mask=cond.frame_mask, z1=noise)

    def noise(self, shape: torch.Size, key: str) -> torch.Tensor:
        """The start noise z_1 of one item: seeded by the study's seed and the item's key."""
        return prior_noise(shape, seed=(self.seed * 1000003 + zlib.crc32(key.encode())) % 2**31)

    # -- one pair --------------------------------------------------------------------------------
    @torch.no_grad()
    def measure(self, utt: Utterance, src: Utterance, means: dict[str, float], samplers: bool) -> dict[str, Any]:
        net = self.net
        ph = self.phonemes(utt)
        z0 = self.latent(utt)
        z_prompt, prompt_audio = self.prompt(src)
        d_gt = torch.tensor([utt.durations], dtype=torch.long)
        f0_gt = _load_f0(utt, self.root)
        log_f0_gt, voiced = f0_to_log(f0_gt, interpolate=True)
        prompt_log_f0 = mean_log_f0(compute_f0(prompt_audio, self.sr, self.hop))
        rec: dict[str, Any] = {"id": utt.id, "speaker": utt.speaker, "prompt_id": src.id, "frames": int(z0.shape[-1])}

        # teacher-forced predictors
        h = net.encode_text(ph)
        p = net.encode_prompt(z_prompt)
        log_d_hat = net.predict_durations(h, None, p, None)[0].double()
        log_d = torch.log1p(d_gt[0].double())
        rec["dur_l1_log"] = float((log_d_hat - log_d).abs().mean())
        rec["dur_l1_log_mean_baseline"] = float((means["log_duration"] - log_d).abs().mean())
        rec["dur_mae_frames"] = float((torch.expm1(log_d_hat).clamp(min=0) - d_gt[0]).abs().mean())
        rec["dur_mae_frames_mean_baseline"] = float((math.expm1(means["log_duration"]) - d_gt[0].double()).abs().mean())
        c, fm = net.regulate(h, d_gt, None, z0.shape[-1])
        log_f0_hat = net.predict_pitch(c, fm, p, None)[0].double().numpy()
        v = voiced[: len(log_f0_hat)]
        target = log_f0_gt[: len(log_f0_hat)].astype(np.float64)
        if v.any():
            rec["pitch_mae_cents"] = float(CENTS * np.abs(log_f0_hat[v] - target[v]).mean())
            rec["pitch_mae_cents_mean_baseline"] = float(CENTS * np.abs(means["log_f0"] - target[v]).mean())
            if math.isfinite(prompt_log_f0):
                rec["pitch_mae_cents_prompt_baseline"] = float(CENTS * np.abs(prompt_log_f0 - target[v]).mean())
        rec["prompt_log_f0"] = prompt_log_f0
        rec["predicted_log_f0"] = float(log_f0_hat[v].mean()) if v.any() else float("nan")
        # the ceilings: the target's own recording, and its codec resynthesis (what decoding allows)
        rec["gt_log_f0"] = mean_log_f0(f0_gt)
        resynth = self.codec.decode(z0)[0, 0].float().numpy()
        rec["resynth_log_f0"] = mean_log_f0(compute_f0(resynth, self.sr, self.hop))

        # latent error with ground-truth durations (pitch predicted)
        cond = net.infer_condition(ph, None, z_prompt, None, durations=d_gt)
        noise = self.noise(z0.shape, utt.id)
        z_hat = self.sample(cond, "euler_ode", self.steps, noise)
        var = float(z0.var())
        rec["latent_rel_mse"] = float(((z_hat - z0) ** 2).mean()) / var
        rec["latent_rel_mse_prompt_mean_baseline"] = float(((z_prompt.mean(-1, keepdim=True) - z0) ** 2).mean()) / var
        if samplers:
            ref_var = float(z_hat.var())
            for name, steps in SAMPLER_GRID:
                z_s = self.sample(cond, name, steps, noise)
                rec[f"sampler/{name}_{steps}"] = float(((z_s - z_hat) ** 2).mean()) / ref_var

        # full zero-shot inference: predicted durations and pitch, decoded, F0 measured on the audio
        cond = net.infer_condition(ph, None, z_prompt, None)
        shape = torch.Size([1, z0.shape[1], cond.cond.shape[-1]])
        z_syn = self.sample(cond, "euler_ode", self.steps, self.noise(shape, utt.id + "/tts"))
        wav = self.codec.decode(z_syn)[0, 0].float().numpy()
        rec["synth_log_f0"] = mean_log_f0(compute_f0(wav, self.sr, self.hop))
        rec["synth_frames"] = int(z_syn.shape[-1])
        rec["_audio"] = (wav, prompt_audio)
        return rec


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of the per-utterance numbers and the pitch-following correlations."""
    out: dict[str, Any] = {"n_utterances": len(records)}
    keys = sorted({k for r in records for k, v in r.items() if isinstance(v, float) and not k.endswith("log_f0")})
    for k in keys:
        vals = np.array([r[k] for r in records if k in r and math.isfinite(r[k])])
        out[k] = float(vals.mean()) if vals.size else float("nan")
        if vals.size != len(records):
            out[f"{k}_n"] = int(vals.size)
    for what in ("synth", "predicted", "resynth", "gt"):
        ok = [r for r in records if math.isfinite(r["prompt_log_f0"]) and math.isfinite(r[f"{what}_log_f0"])]
        out[f"f0_follow_{what}_corr_utterances"] = pearson([r["prompt_log_f0"] for r in ok], [r[f"{what}_log_f0"] for r in ok])
        by_spk: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for r in ok:
            by_spk[r["speaker"]].append((r["prompt_log_f0"], r[f"{what}_log_f0"]))
        spk = sorted(by_spk)
        out[f"f0_follow_{what}_corr_speakers"] = pearson([np.mean([a for a, _ in by_spk[s]]) for s in spk],
                                                          [np.mean([b for _, b in by_spk[s]]) for s in spk])
        out[f"f0_follow_{what}_n"] = len(ok)
    out["speakers"] = len({r["speaker"] for r in records})
    return out


def run_study(ckpt_path: str | Path, manifest: str | Path, out: str | Path | None = None, *, split: str = "test",
              per_speaker: int = 10, prompt_seconds: float = 3.0, steps: int = 150, sampler_items: int = 12,
              seed: int = 0, audio_dir: str | Path | None = None, audio_examples: int = 3) -> dict[str, Any]:
    """Measure a checkpoint on the held-out speakers of ``manifest``; write ``out`` (JSON) when given."""
    from ns2.data.audio import write_audio
    from ns2.inference.checkpoint import load_ns2_checkpoint
    from ns2.utils.provenance import git_commit

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    manifest = Path(manifest)
    utts = read_manifest(manifest)
    ckpt = load_ns2_checkpoint(ckpt_path)
    study = Study(ckpt, manifest.parent, prompt_seconds=prompt_seconds, steps=steps, seed=seed)
    means = training_means(utts, manifest.parent)
    pairs = pick_items(utts, split, per_speaker)
    if not pairs:
        raise ValueError(f"{manifest}: no {split!r} speech utterances with durations and codes (run ns2 prep with data.prep.codec)")
    records = []
    examples = set(range(0, len(pairs), max(1, len(pairs) // max(1, audio_examples)))[:audio_examples])
    for i, (u, src) in enumerate(pairs):
        rec = study.measure(u, src, means, samplers=i < sampler_items)
        wav, prompt_audio = rec.pop("_audio")
        if audio_dir is not None and i in examples:
            d = Path(audio_dir)
            write_audio(d / f"{u.id}_synth.wav", wav, study.sr)
            write_audio(d / f"{u.id}_prompt.wav", prompt_audio, study.sr)
        records.append(rec)
        log.info("%d/%d %s: dur %.3f (mean %.3f), pitch %.0f c, latent %.3f", i + 1, len(pairs), u.id, rec["dur_l1_log"],
                 rec["dur_l1_log_mean_baseline"], rec.get("pitch_mae_cents", float("nan")), rec["latent_rel_mse"])
    result = {
        **summarise(records),
        "latent_f0_probe": latent_f0_probe(study.codec, utts, manifest.parent, split),
        "baselines": means,
        "settings": {"split": split, "per_speaker": per_speaker, "prompt_seconds": prompt_seconds, "steps": steps,
                     "sampler": "euler_ode", "sampler_items": min(sampler_items, len(records)), "seed": seed},
        "checkpoint": str(ckpt_path), "manifest": str(manifest), "commit": git_commit(),
        "model": {"config": ckpt.config.get("net") if isinstance(ckpt.config, dict) else None,
                  "parameters": sum(p.numel() for p in ckpt.net.parameters())},
        "seconds": round(time.perf_counter() - t0, 1),
        "records": records,
    }
    if out is not None:
        write_json(out, result)
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m ns2.eval.studies.ns2", description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("manifest")
    ap.add_argument("--out", default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--per-speaker", type=int, default=10)
    ap.add_argument("--prompt-seconds", type=float, default=3.0)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--sampler-items", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--audio-dir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    result = run_study(args.ckpt, args.manifest, args.out, split=args.split, per_speaker=args.per_speaker,
                       prompt_seconds=args.prompt_seconds, steps=args.steps, sampler_items=args.sampler_items,
                       seed=args.seed, audio_dir=args.audio_dir)
    print(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=2))
    return result


if __name__ == "__main__":
    main()
