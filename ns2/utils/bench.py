"""Speed and memory benchmarks: the codec's encode/decode and NaturalSpeech 2's training / sampling steps.

Each benchmark returns a flat dict of numbers plus how they were obtained (device, threads, torch
version, sizes, repeats); ``ns2 bench`` writes it to ``experiments/bench/<name>.json``.
Timings are medians over ``repeats`` after ``warmup`` untimed runs; on CUDA they synchronise first.
"""
from __future__ import annotations

import platform
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["bench_codec", "bench_ns2", "time_fn", "environment"]


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


def environment(device: torch.device) -> dict[str, Any]:
    env = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


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
              autocast: str | None = None) -> dict[str, Any]:
    """One training step (forward + backward of the teacher-forced pass) and one denoiser call.

    The batch: ``batch_size`` items of ``phonemes`` phonemes, ``frames`` target frames (durations
    spread evenly) and a ``prompt_frames`` prompt; ``autocast`` = "bf16" times under bfloat16 autocast.
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
    dtype = {"bf16": torch.bfloat16, None: None}[autocast]

    def ctx():
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else torch.autocast(device.type, enabled=False)

    def train_step() -> None:
        net.zero_grad(set_to_none=True)
        with ctx():
            out = net(**batch)
            loss = out.z0_hat.float().pow(2).mean() + out.log_duration.float().mean() + out.log_f0.float().mean()
        loss.backward()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_train = time_fn(train_step, device, repeats)
    train_mem = _peak_memory_mb(device)
    net.eval()
    with torch.inference_mode(), ctx():
        cond = net.infer_condition(ph, batch["phoneme_mask"], batch["z_prompt"], batch["prompt_mask"])
        denoise = net.denoiser(cond.cond, cond.frame_mask, cond.prompt_hidden, cond.prompt_mask)
        z = torch.randn(B, D, int(cond.cond.shape[-1]), generator=g).to(device)
        tt = torch.full((B,), 0.5, device=device)
        t_denoise = time_fn(lambda: denoise(z, tt), device, repeats)
    return {
        "params": _params(net),
        "batch_size": B,
        "phonemes": L,
        "frames": T,
        "prompt_frames": Tp,
        "autocast": autocast or "fp32",
        "repeats": repeats,
        "train_step_s": t_train,
        "train_frames_per_s": B * T / t_train,
        "denoise_call_ms": 1000 * t_denoise,
        "sampled_frames": int(cond.cond.shape[-1]),
        "peak_memory_mb": train_mem,
        **environment(device),
    }
