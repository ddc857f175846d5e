"""A NaturalSpeech 2 synthesizer built from a random tiny network and a random tiny codec.

The duration and pitch heads are biased to about 4 frames per phoneme and 150 Hz, so outputs have a
plausible length; everything else is untrained.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SR = 16000


def tiny_parts():
    """(net, codec, net kwargs): a random tiny NaturalSpeech 2 and codec (configs' tiny sizes), seeded."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ns2.models.ns2 import NaturalSpeech2
    from ns2.text import DEFAULT_SYMBOLS

    torch.manual_seed(0)
    codec = instantiate(OmegaConf.load(CONFIGS / "codec" / "tiny.yaml"))
    net_kw = OmegaConf.to_container(OmegaConf.load(CONFIGS / "model" / "scale" / "tiny.yaml"))
    net_kw.update(latent_dim=codec.latent_dim, vocab_size=len(DEFAULT_SYMBOLS))
    net = NaturalSpeech2(**net_kw)
    with torch.no_grad():
        net.duration_predictor.out.weight.mul_(0.01)
        net.duration_predictor.out.bias.fill_(math.log1p(4.0))
        net.pitch_predictor.out.weight.mul_(0.01)
        net.pitch_predictor.out.bias.fill_(math.log(150.0))
    return net, codec.eval(), net_kw


def build_tiny(steps: int = 4, **kwargs):
    """An NS2Synthesizer over :func:`tiny_parts` (Euler ODE with ``steps`` steps by default)."""
    from ns2.inference import NS2Synthesizer
    from ns2.models.ns2.sde import VPSDE
    from ns2.text import DEFAULT_SYMBOLS

    net, codec, _ = tiny_parts()
    return NS2Synthesizer(net, codec, VPSDE(), DEFAULT_SYMBOLS, "en-us", steps=steps, **kwargs)


def save_tiny_checkpoint(path: Path, steps: int = 3) -> Path:
    """A real NS2 checkpoint file of :func:`tiny_parts` (the ``checkpoint["ns2"]`` record of ns2.inference.checkpoint)."""
    from ns2.inference.checkpoint import make_record
    from ns2.text import DEFAULT_SYMBOLS

    net, codec, net_kw = tiny_parts()
    record = make_record(net=net_kw, sde={"beta_min": 0.05, "beta_max": 20.0, "schedule": "linear"},
                         sampler={"name": "euler_ode", "steps": steps, "tau": 1.2**2}, symbols=DEFAULT_SYMBOLS,
                         language="en-us", codec=codec, ema=net.state_dict())
    torch.save({"ns2": record}, path)
    return path


def tone(seconds: float, sr: int = SR, f0: float = 180.0, channels: int = 0) -> np.ndarray:
    """A harmonic test signal [S] (or [channels, S])."""
    t = np.arange(int(round(seconds * sr))) / sr
    x = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)).astype(np.float32)
    return np.stack([x, 0.5 * x]) if channels == 2 else x
