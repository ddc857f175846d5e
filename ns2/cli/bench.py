"""``ns2 bench``: speed and memory benchmarks written under experiments/bench/.

    ns2 bench target=codec codec=ns2_paper               # encode/decode ms per second of audio
    ns2 bench target=ns2 model=ns2 model/scale=small     # training step and denoiser call
    ns2 bench target=ns2 model/scale=paper device=cuda autocast=bf16
    ns2 bench target=valle model=valle model/scale=valle_small codec=ns2_paper   # VALL-E's training step
    ns2 bench target=suite                               # everything below, one JSON + one markdown table
"""
from __future__ import annotations

from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ns2.cli.common import config_dir, git_commit, setup_logging
from ns2.utils.io import atomic_open, write_json


def _choice(group: str) -> str:
    """The option chosen for a config group (``tiny``, ``ns2_paper``...), or the group's name outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.choices.get(group) or group.split("/")[-1])
    except ValueError:
        return group.split("/")[-1]


def _ns2_net(cfg: DictConfig):
    latent_dim = cfg.codec.latent_dim if cfg.get("codec") is not None and "latent_dim" in cfg.codec else cfg.latent_dim
    extra = {"codec": None} if "codec" in cfg.model.net else {}
    torch.manual_seed(int(cfg.seed))  # the same weights each run: predicted lengths, and so the timed shapes, repeat
    return instantiate(cfg.model.net, latent_dim=latent_dim, **extra)


def _valle_net(cfg: DictConfig):
    """VALL-E sized by ``model/scale=valle_*``, its n_q / codebook_size (when null) the selected codec's."""
    net = OmegaConf.to_container(cfg.model.net, resolve=True)
    codec = cfg.get("codec") or {}
    for key, codec_key in (("n_q", "n_codebooks"), ("codebook_size", "codebook_size")):
        if net.get(key) is None:
            if codec_key not in codec:
                raise SystemExit(f"ns2 bench target=valle: net.{key} is null and no codec gives it; pass codec=tiny|ns2_paper")
            net[key] = int(codec[codec_key])
    torch.manual_seed(int(cfg.seed))
    return instantiate(net)


def _yourtts_net(cfg: DictConfig):
    """YourTTS sized by ``model/scale=yourtts_*`` for a 513-bin spectrogram, 256-d speaker embeddings (the
    resemblyzer fallback's) and one language; monotonic alignment search attached as for training."""
    from ns2.data.aligner.mas import maximum_path

    net = OmegaConf.to_container(cfg.model.net, resolve=True)
    net.update(spec_channels=net.get("spec_channels") or 513, speaker_dim=net.get("speaker_dim") or 256,
               num_languages=net.get("num_languages") or 1, hop_length=None)
    torch.manual_seed(int(cfg.seed))
    return instantiate(net, maximum_path=maximum_path)


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Hydra's compose from the project's configs, inside a Hydra app or outside one."""
    from hydra import compose as _compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra().is_initialized():
        return _compose(config_name, overrides)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return _compose(config_name, overrides)


def run_suite(cfg: DictConfig) -> dict:
    """The suite of ``cfg.suite``: codecs, NS2 training step / denoiser call per scale and VALL-E's training
    step per scale (FLOPs and the fraction of the measured matmul throughput), sampler RTF against NFE,
    F0 throughput. One JSON with every result, and a markdown table beside it."""
    from ns2.eval.bench import bench_codec, bench_f0, bench_ns2, bench_sampler, bench_valle, bench_yourtts

    s = cfg.suite
    results: dict[str, dict] = {}
    for name in s.codecs:
        c = compose("bench", [f"codec={name}"])
        results[f"codec_{name}"] = bench_codec(instantiate(c.codec), seconds=cfg.seconds, batch_size=1,
                                               repeats=cfg.repeats, device=cfg.device, seed=cfg.seed)
    trained = [("ns2", s.ns2_scales, "ns2_", _ns2_net, bench_ns2),  # keys ns2_<scale>, valle_<scale> (_bf16)
               ("valle", s.get("valle_scales") or [], "", _valle_net, bench_valle),
               ("yourtts", s.get("yourtts_scales") or [], "", _yourtts_net, bench_yourtts)]
    for model, scales, prefix, build, bench in trained:
        for scale in scales:
            c = compose("bench", [f"model={model}", f"model/scale={scale}", f"codec={s.ns2_codec}"])
            for autocast in s.autocast:
                key = f"{prefix}{scale}" + ("" if autocast is None else f"_{autocast}")
                results[key] = bench(build(c), batch_size=s.train_batch_size, phonemes=cfg.phonemes, frames=cfg.frames,
                                     prompt_frames=cfg.prompt_frames, repeats=cfg.repeats, device=cfg.device,
                                     seed=cfg.seed, autocast=autocast)
    c = compose("bench", ["model=ns2", f"model/scale={s.sampler_scale}", f"codec={s.ns2_codec}"])
    results[f"sampler_ns2_{s.sampler_scale}"] = bench_sampler(
        _ns2_net(c), solvers=tuple((str(n), int(k)) for n, k in s.solvers), phonemes=cfg.phonemes,
        prompt_frames=cfg.prompt_frames, frame_rate=c.codec.sample_rate / _hop(c.codec), device=cfg.device,
        seed=cfg.seed)
    results["prep_f0"] = bench_f0(seconds=s.f0_seconds, repeats=cfg.repeats, seed=cfg.seed)
    return results


def _hop(codec_cfg) -> int:
    hop = 1
    for r in codec_cfg.encoder_rates:
        hop *= int(r)
    return hop


def suite_table(results: dict[str, dict]) -> str:
    """A markdown table of a suite's results (one row per benchmark, its headline figures)."""
    rows = ["| benchmark | params | figures |", "|---|---|---|"]
    for key, r in results.items():
        if key.startswith("codec_"):
            fig = (f"encode {r['encode_ms_per_audio_s']:.1f} ms, decode {r['decode_ms_per_audio_s']:.1f} ms per "
                   f"second of audio (RTF {r['encode_rtf']:.3f} / {r['decode_rtf']:.3f})")
        elif key.startswith(("ns2_", "valle_", "yourtts_")):
            fig = (f"train step {r['train_step_s'] * 1000:.1f} ms ({r['train_step_gflops']:.2f} GFLOP, "
                   f"{r['train_matmul_fraction']:.2f} of matmul peak), ")
            if "denoise_call_ms" in r:
                fig += f"denoiser call {r['denoise_call_ms']:.2f} ms ({r['denoise_matmul_fraction']:.2f}), "
            fig += f"peak memory {r['peak_memory_mb']:.0f} MiB, {r['autocast']}"
        elif key.startswith("sampler_"):
            fig = ", ".join(f"{k[4:]} (NFE {r['nfe_' + k[4:]]}) RTF {v:.3f}" for k, v in r.items() if k.startswith("rtf_"))
        else:
            fig = f"F0 tracking {r['f0_audio_s_per_s_per_core']:.0f} s of audio per second per core"
        rows.append(f"| {key} | {r.get('params', '')} | {fig} |")
    return "\n".join(rows) + "\n"


def run_bench(cfg: DictConfig) -> dict:
    from ns2.eval.bench import cpu_model, bench_codec, bench_ns2, bench_valle, bench_yourtts

    log = setup_logging()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if cfg.target == "suite":
        results = run_suite(cfg)
        device = str(cfg.device).split(":")[0]
        result = {"benchmark": "suite", "commit": git_commit(), "results": results}
        out = Path(cfg.out_dir) / f"{cfg.name or 'suite'}_{device}.json"
        write_json(out, result)
        table = suite_table(results)
        with atomic_open(out.with_suffix(".md")) as f:
            cpu = cpu_model()
            on = f" ({cpu['cpu']}; {cpu['cpu_features'] or 'no avx2'})" if cpu.get("cpu") else ""
            f.write(f"Commit {result['commit']}, torch {torch.__version__}, "
                    f"{torch.get_num_threads()} threads, device {cfg.device}{on}.\n\n{table}")
        log.info("\n%s", table)
        log.info("wrote %s and %s", out, out.with_suffix(".md"))
        return result
    if cfg.target == "codec":
        if cfg.get("codec") is None:
            raise SystemExit("ns2 bench target=codec: no codec selected; pass codec=tiny|ns2_paper|dac_24khz")
        result = bench_codec(instantiate(cfg.codec), seconds=cfg.seconds, batch_size=cfg.batch_size,
                             repeats=cfg.repeats, device=cfg.device, seed=cfg.seed)
        name = cfg.name or f"codec_{_choice('codec')}"
    elif cfg.target == "ns2":
        if cfg.get("model") is None or "net" not in cfg.model:
            raise SystemExit("ns2 bench target=ns2: no model selected; pass model=ns2 [model/scale=tiny|small|paper]")
        result = bench_ns2(_ns2_net(cfg), batch_size=cfg.batch_size, phonemes=cfg.phonemes, frames=cfg.frames,
                           prompt_frames=cfg.prompt_frames, repeats=cfg.repeats, device=cfg.device, seed=cfg.seed,
                           autocast=cfg.autocast, compile=OmegaConf.to_container(cfg.compile) if cfg.compile else None)
        name = cfg.name or f"ns2_{_choice('model/scale')}" + ("_compiled" if cfg.compile else "")
    elif cfg.target == "valle":
        if cfg.get("model") is None or "net" not in cfg.model or "layers" not in cfg.model.net:
            raise SystemExit("ns2 bench target=valle: no model selected; pass model=valle [model/scale=valle_tiny|"
                             "valle_small|valle_paper] codec=...")
        result = bench_valle(_valle_net(cfg), batch_size=cfg.batch_size, phonemes=cfg.phonemes, frames=cfg.frames,
                             prompt_frames=cfg.prompt_frames, repeats=cfg.repeats, device=cfg.device, seed=cfg.seed,
                             autocast=cfg.autocast)
        name = cfg.name or _choice("model/scale")
    elif cfg.target == "yourtts":
        if cfg.get("model") is None or "net" not in cfg.model or "upsample_rates" not in cfg.model.net:
            raise SystemExit("ns2 bench target=yourtts: no model selected; pass model=yourtts [model/scale=yourtts_tiny|"
                             "yourtts_small|yourtts_paper]")
        result = bench_yourtts(_yourtts_net(cfg), batch_size=cfg.batch_size, phonemes=cfg.phonemes, frames=cfg.frames,
                               repeats=cfg.repeats, device=cfg.device, seed=cfg.seed, autocast=cfg.autocast)
        name = cfg.name or _choice("model/scale")
    else:
        raise SystemExit(f"ns2 bench: unknown target {cfg.target!r}; expected codec, ns2, valle, yourtts or suite")
    result = {"benchmark": cfg.target, "commit": git_commit(), **result}
    out = Path(cfg.out_dir) / f"{name}_{result['device'].split(':')[0]}.json"
    write_json(out, result)
    for k, v in result.items():
        log.info("%s: %s", k, f"{v:.4g}" if isinstance(v, float) else v)
    log.info("wrote %s", out)
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="bench")
def main(cfg: DictConfig) -> None:
    run_bench(cfg)


if __name__ == "__main__":  # python -m ns2.cli.bench
    main()
