"""Speed and memory benchmarks: the codec's encode/decode, NaturalSpeech 2's and VALL-E's training steps,
NaturalSpeech 2's denoiser call and sampling.

Each benchmark returns a flat dict of numbers plus how they were obtained (device, threads, torch
version, sizes, repeats); ``ns2 bench`` writes it to ``experiments/bench/<name>.json``.
Timings are medians over ``repeats`` after ``warmup`` untimed runs; on CUDA they synchronise first.
"""
from __future__ import annotations

import platform
import resource
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["bench_codec", "bench_ns2", "bench_valle", "bench_yourtts", "bench_sampler", "bench_f0", "count_flops", "cpu_model", "matmul_throughput",
           "paired_throughput",
           "time_fn", "environment"]

AUTOCAST = {None: None, "fp32": None, "bf16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], Any], device: torch.device, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated, or the process's peak resident set on CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model() -> dict[str, Any]:
    """The CPU's model name and the vector / matrix extensions that decide its fp32 and bf16 speed
    (from /proc/cpuinfo; empty where there is none): matmul fractions are only comparable on one CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return {"cpu": fields.get("model name", ""), "cpu_features": " ".join(f for f in wanted if f in flags)}


def environment(device: torch.device) -> dict[str, Any]:
    env = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        **cpu_model(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of one ``fn()`` call, counted by torch's flop counter (matmuls and
    convolutions, forward and backward; a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _reference_product(device: torch.device, n: int, dtype: torch.dtype) -> Callable[[], Any]:
    """The reference of the ``*_matmul_fraction`` figures: an ``n``×``n`` by ``n``×``n`` product (2n³ FLOPs)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return lambda: a @ b


def matmul_throughput(device: torch.device, n: int = 1024, repeats: int = 5,
                      dtype: torch.dtype = torch.float32) -> float:
    """The machine's measured matmul throughput in FLOP/s: :func:`_reference_product`, median of
    ``repeats``, with the current thread count."""
    return 2 * n**3 / time_fn(_reference_product(device, n, dtype), device, repeats, warmup=2)


def paired_throughput(fn: Callable[[], Any], flops: int, device: torch.device, repeats: int = 5, warmup: int = 1,
                      dtype: torch.dtype = torch.float32, n: int = 1024) -> dict[str, float]:
    """``fn``'s time and its FLOP rate as a fraction of the matmul throughput, measured in pairs.

    Each of ``repeats`` rounds times one ``fn()`` and, right after it, the reference product
    (:func:`_reference_product`, median of 3), so a slow spell of a shared machine (a virtual machine's
    neighbours) slows both halves of a pair; the fraction is the median of the rounds' own fractions.
    -> ``time_s`` (median), ``matmul_flops_per_s`` (median) and ``fraction``."""
    reference = _reference_product(device, n, dtype)
    for _ in range(warmup):
        fn()
        reference()
    times, peaks, fractions = [], [], []
    for _ in range(repeats):
        t = time_fn(fn, device, repeats=1, warmup=0)
        peak = 2 * n**3 / time_fn(reference, device, repeats=3, warmup=0)
        times.append(t)
        peaks.append(peak)
        fractions.append(flops / t / peak)
    return {"time_s": statistics.median(times), "matmul_flops_per_s": statistics.median(peaks),
            "fraction": statistics.median(fractions)}


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _autocast(device: torch.device, autocast: str | None):
    """A context factory: bf16 autocast for ``autocast="bf16"``, none for None / "fp32"."""
    if autocast not in AUTOCAST:
        raise ValueError(f"autocast={autocast!r}: expected one of {sorted(k for k in AUTOCAST if k)} or null")
    dtype = AUTOCAST[autocast]
    return lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _train_figures(train_step: Callable[[], Any], flops: int, device: torch.device, repeats: int, warmup: int,
                   autocast: str | None, frames: int) -> dict[str, Any]:
    """A training step's timing and FLOP rate against the matmul throughput in the step's own precision
    (fp32, or bf16 under bf16 autocast), measured in pairs (:func:`paired_throughput`), and peak memory."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    r = paired_throughput(train_step, flops, device, repeats, warmup, dtype=AUTOCAST[autocast] or torch.float32)
    return {
        "train_step_s": r["time_s"],
        "train_frames_per_s": frames / r["time_s"],
        "train_step_gflops": flops / 1e9,
        "matmul_gflops_per_s": r["matmul_flops_per_s"] / 1e9,
        "train_matmul_fraction": r["fraction"],
        "peak_memory_mb": _peak_memory_mb(device),
    }


@torch.inference_mode()
def bench_codec(codec: nn.Module, seconds: float = 10.0, batch_size: int = 1, repeats: int = 5,
                device: str | torch.device = "cpu", seed: int = 0) -> dict[str, Any]:
    """Encode and decode ``batch_size`` × ``seconds`` of noise-like audio: ms per second of audio."""
    device = torch.device(device)
    codec = codec.to(device).eval()
    g = torch.Generator().manual_seed(seed)
    wav = (0.1 * torch.randn(batch_size, 1, int(seconds * codec.sample_rate), generator=g)).to(device)
    codes = codec.encode(wav)
    z = codec.codes_to_latent(codes)
    t_enc = time_fn(lambda: codec.encode(wav), device, repeats)
    t_dec = time_fn(lambda: codec.decode(codec.codes_to_latent(codes)), device, repeats)
    audio_s = seconds * batch_size
    return {
        "params": _params(codec),
        "sample_rate": codec.sample_rate,
        "hop_length": codec.hop_length,
        "frames": int(z.shape[-1]),
        "seconds": seconds,
        "batch_size": batch_size,
        "repeats": repeats,
        "encode_ms_per_audio_s": 1000 * t_enc / audio_s,
        "decode_ms_per_audio_s": 1000 * t_dec / audio_s,
        "encode_rtf": t_enc / audio_s,
        "decode_rtf": t_dec / audio_s,
        "peak_memory_mb": _peak_memory_mb(device),
        **environment(device),
    }


def bench_ns2(net: nn.Module, batch_size: int = 4, phonemes: int = 60, frames: int = 400, prompt_frames: int = 240,
              repeats: int = 3, device: str | torch.device = "cpu", seed: int = 0,
              autocast: str | None = None, compile: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One training step (forward + backward of the teacher-forced pass) and one denoiser call.

    The batch: ``batch_size`` items of ``phonemes`` phonemes, ``frames`` target frames (durations
    spread evenly) and a ``prompt_frames`` prompt; the denoiser call runs on the same ``frames`` (the
    batch's durations and pitch, not an untrained predictor's); ``autocast`` = "bf16" times under bfloat16 autocast;
    ``compile`` (NS2Lit's ``model.compile`` settings, e.g. ``{modules: [diffusion]}``) times the boxes
    under ``torch.compile`` (FLOPs are counted eagerly first; compilation happens in the warm-up calls).
    """
    device = torch.device(device)
    net = net.to(device).train()
    g = torch.Generator().manual_seed(seed)
    B, L, T, Tp, D = batch_size, phonemes, frames, prompt_frames, net.latent_dim
    ph = torch.randint(1, net.vocab_size, (B, L), generator=g).to(device)
    base = torch.full((B, L), T // L, dtype=torch.long)
    base[:, : T - int(base[0].sum())] += 1
    batch = dict(
        phonemes=ph, phoneme_mask=torch.ones(B, L, dtype=torch.bool, device=device), durations=base.to(device),
        log_f0=(5.0 + 0.1 * torch.randn(B, T, generator=g)).to(device), z_t=torch.randn(B, D, T, generator=g).to(device),
        t=torch.rand(B, generator=g).to(device), z_prompt=torch.randn(B, D, Tp, generator=g).to(device),
        prompt_mask=torch.ones(B, Tp, dtype=torch.bool, device=device),
    )
    ctx = _autocast(device, autocast)

    def train_step() -> None:
        net.zero_grad(set_to_none=True)
        with ctx():
            out = net(**batch)
            loss = out.z0_hat.float().pow(2).mean() + out.log_duration.float().mean() + out.log_f0.float().mean()
        loss.backward()

    def denoiser_call():
        net.eval()
        with torch.inference_mode(), ctx():
            cond = net.infer_condition(ph, batch["phoneme_mask"], batch["z_prompt"], batch["prompt_mask"],
                                       durations=batch["durations"], log_f0=batch["log_f0"])  # ``frames`` frames
            denoise = net.denoiser(cond.cond, cond.frame_mask, cond.prompt_hidden, cond.prompt_mask)
        z = torch.randn(B, D, int(cond.cond.shape[-1]), generator=g).to(device)
        tt = torch.full((B,), 0.5, device=device)
        net.train()

        def call():
            with torch.inference_mode(), ctx():
                return denoise(z, tt)
        return call, int(cond.cond.shape[-1])

    train_flops = count_flops(train_step)
    denoise, sampled = denoiser_call()
    denoise_flops = count_flops(denoise)
    if compile:
        from ns2.lit.ns2 import compile_boxes

        compile = compile_boxes(net, compile)
    warmup = 2 if compile else 1  # compilation (and the recompile for eval mode) stays out of the timing
    train = _train_figures(train_step, train_flops, device, repeats, warmup, autocast, B * T)
    net.eval()
    d = paired_throughput(denoise, denoise_flops, device, max(repeats, 5), warmup,  # calls are short: >= 5 rounds
                          dtype=AUTOCAST[autocast] or torch.float32)
    return {
        "params": _params(net),
        "batch_size": B,
        "phonemes": L,
        "frames": T,
        "prompt_frames": Tp,
        "autocast": autocast or "fp32",
        "compile": compile or None,
        "repeats": repeats,
        **train,
        "denoise_call_ms": 1000 * d["time_s"],
        "sampled_frames": sampled,
        "denoise_call_gflops": denoise_flops / 1e9,
        "denoise_matmul_fraction": d["fraction"],
        **environment(device),
    }


def bench_valle(net: nn.Module, batch_size: int = 2, phonemes: int = 60, frames: int = 400, prompt_frames: int = 240,
                repeats: int = 3, device: str | torch.device = "cpu", seed: int = 0,
                autocast: str | None = None) -> dict[str, Any]:
    """One VALL-E training step: the AR decoder's teacher-forced pass over codebook 1 (+ EOS) and the NAR
    decoder's pass for one stage (codebook 2 from the prompt's codes and codebook 1), both cross-entropies,
    backward; the losses VALLELit trains with. The batch: ``batch_size`` items of ``phonemes`` phonemes and
    ``frames`` frames of random codes, the first ``prompt_frames`` the NAR's prompt."""
    from ns2.losses.valle import ar_sequences, masked_cross_entropy

    device = torch.device(device)
    net = net.to(device).train()
    g = torch.Generator().manual_seed(seed)
    B, L, T = batch_size, phonemes, frames
    ph = torch.randint(1, net.vocab_size, (B, L), generator=g).to(device)
    text_mask = torch.ones(B, L, dtype=torch.bool, device=device)
    codes = torch.randint(0, net.codebook_size, (B, net.n_q, T), generator=g).to(device)
    frame_mask = torch.ones(B, T, dtype=torch.bool, device=device)
    prompt_len = torch.full((B,), min(prompt_frames, T - 1), dtype=torch.long, device=device)
    ctx = _autocast(device, autocast)

    def train_step() -> None:
        net.zero_grad(set_to_none=True)
        loss = torch.zeros((), device=device)
        with ctx():
            if net.ar is not None:
                inputs, targets, mask = ar_sequences(codes[:, 0], frame_mask, net.ar.bos, net.ar.eos)
                loss = loss + masked_cross_entropy(net.ar(ph, text_mask, inputs, mask), targets, mask)[0]
            if net.nar is not None:
                target = frame_mask & (torch.arange(T, device=device)[None, :] >= prompt_len[:, None])
                logits = net.nar(ph, text_mask, codes, frame_mask, prompt_len, 1)
                loss = loss + masked_cross_entropy(logits, codes[:, 1], target)[0]
        loss.backward()

    flops = count_flops(train_step)
    return {
        "params": _params(net),
        "batch_size": B,
        "phonemes": L,
        "frames": T,
        "prompt_frames": int(prompt_len[0]),
        "n_q": net.n_q,
        "autocast": autocast or "fp32",
        "repeats": repeats,
        **_train_figures(train_step, flops, device, repeats, 1, autocast, B * T),
        **environment(device),
    }


def bench_yourtts(net: nn.Module, batch_size: int = 2, phonemes: int = 60, frames: int = 400, prompt_frames: int = 0,
                  repeats: int = 3, device: str | torch.device = "cpu", seed: int = 0, autocast: str | None = None,
                  segment_frames: int = 32, discriminator: nn.Module | None = None) -> dict[str, Any]:
    """One YourTTS generator training step: posterior encoder over ``frames`` spectrogram frames, flow, MAS,
    the stochastic duration predictor, the HiFi-GAN decoder on a ``segment_frames`` segment, the KL, duration
    and mel terms, backward; with ``discriminator``, also its pass over the real and generated segments (the
    adversarial and feature terms) as YourTTSLit's step. ``prompt_frames`` is unused (the speaker embedding
    is given). The batch: random phonemes, spectrogram magnitudes and unit speaker embeddings."""
    from ns2.losses.yourtts import duration_loss, kl_loss, lsgan_generator_loss
    from ns2.modules.mel import MelSpectrogram

    device = torch.device(device)
    net = net.to(device).train()
    g = torch.Generator().manual_seed(seed)
    B, L, T = batch_size, phonemes, frames
    tokens = torch.randint(1, net.text_encoder.emb.num_embeddings, (B, L), generator=g).to(device)
    lengths = torch.full((B,), L, dtype=torch.long, device=device)
    spec_channels = net.posterior_encoder.pre.in_channels
    spec = torch.rand(B, spec_channels, T, generator=g).to(device)
    spec_lengths = torch.full((B,), T, dtype=torch.long, device=device)
    spk = torch.nn.functional.normalize(torch.randn(B, net.speaker_dim, generator=g), dim=-1).to(device)
    lang = torch.zeros(B, dtype=torch.long, device=device) if net.emb_l is not None else None
    mel = MelSpectrogram(hop_length=net.hop_length, n_fft=1024, win_length=1024).to(device)
    real = (0.1 * torch.randn(B, 1, segment_frames * net.hop_length, generator=g)).to(device)
    ctx = _autocast(device, autocast)

    def train_step() -> None:
        net.zero_grad(set_to_none=True)
        with ctx():
            out = net(tokens, lengths, spec, spec_lengths, spk, lang, segment_frames=segment_frames)
            loss = (45 * (mel(out["y_hat"]) - mel(real)).abs().mean()
                    + kl_loss(out["z_p"], out["logs_q"], out["m_p"], out["logs_p"], out["spec_mask"])
                    + duration_loss(out["duration_nll"], lengths))
            if discriminator is not None:
                logits, _ = discriminator(out["y_hat"])
                loss = loss + lsgan_generator_loss(logits)
        loss.backward()

    flops = count_flops(train_step)
    return {
        "params": _params(net),
        "batch_size": B,
        "phonemes": L,
        "frames": T,
        "segment_frames": segment_frames,
        "discriminator": discriminator is not None,
        "autocast": autocast or "fp32",
        "repeats": repeats,
        **_train_figures(train_step, flops, device, repeats, 1, autocast, B * T),
        **environment(device),
    }


@torch.inference_mode()
def bench_sampler(net: nn.Module, sde: nn.Module | None = None, solvers: tuple[tuple[str, int], ...] = (
        ("euler_ode", 150), ("euler_ode", 50), ("dpm_solver_pp", 20), ("dpm_solver_pp", 10)),
        phonemes: int = 60, prompt_frames: int = 240, frame_rate: float = 80.0, repeats: int = 1,
        device: str | torch.device = "cpu", seed: int = 0) -> dict[str, Any]:
    """Real-time factor of sampling one utterance against the sampler's NFE.

    The whole inference path after the text front end: conditioning (duration and pitch predictors,
    length regulation) and the sampler's denoiser calls; ``frame_rate`` (latent frames per second of
    audio, sample_rate / hop_length) turns the sampled frames into seconds. The codec decode is timed by
    :func:`bench_codec`. Returns ``rtf_<sampler>_<steps>`` and ``nfe_<sampler>_<steps>`` per solver.
    """
    from ns2.inference.samplers import get_sampler
    from ns2.models.ns2.sde import VPSDE

    device = torch.device(device)
    net = net.to(device).eval()
    sde = VPSDE() if sde is None else sde
    g = torch.Generator().manual_seed(seed)
    ph = torch.randint(1, net.vocab_size, (1, phonemes), generator=g).to(device)
    pm = torch.ones(1, phonemes, dtype=torch.bool, device=device)
    zp = torch.randn(1, net.latent_dim, prompt_frames, generator=g).to(device)
    ppm = torch.ones(1, prompt_frames, dtype=torch.bool, device=device)
    out: dict[str, Any] = {"phonemes": phonemes, "prompt_frames": prompt_frames, "frame_rate": frame_rate,
                           "repeats": repeats}
    for name, steps in solvers:
        sampler = get_sampler(name, steps=steps)
        frames = []

        def synth() -> None:
            cond = net.infer_condition(ph, pm, zp, ppm)
            denoise = net.denoiser(cond.cond, cond.frame_mask, cond.prompt_hidden, cond.prompt_mask)
            z0 = sampler(denoise, sde, (1, net.latent_dim, int(cond.cond.shape[-1])), mask=cond.frame_mask,
                         seed=seed, device=device)
            frames.append(int(z0.shape[-1]))

        t = time_fn(synth, device, repeats, warmup=0)
        out[f"nfe_{name}_{steps}"] = sampler.nfe
        out[f"rtf_{name}_{steps}"] = t / (frames[-1] / frame_rate)
    return {**out, **environment(device)}


def bench_f0(seconds: float = 30.0, sample_rate: int = 16000, hop_length: int = 200, repeats: int = 3,
             seed: int = 0) -> dict[str, Any]:
    """Data preparation's costliest per-utterance step on CPU, F0 tracking (Praat): seconds of audio
    processed per second per core (one thread)."""
    import numpy as np

    from ns2.audio.f0 import compute_f0

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = (0.3 * np.sin(2 * np.pi * (150 + 30 * np.sin(2 * np.pi * 0.5 * t)) * t)
         + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    dt = time_fn(lambda: compute_f0(x, sample_rate, hop_length), torch.device("cpu"), repeats)
    return {"seconds": seconds, "sample_rate": sample_rate, "hop_length": hop_length, "repeats": repeats,
            "f0_audio_s_per_s_per_core": seconds / dt, **environment(torch.device("cpu"))}
