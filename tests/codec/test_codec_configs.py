"""configs/codec/*.yaml instantiate (dac_24khz against a fake cached file)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ns2.codec import Codec, RVQCodec, cached_path

DAC_TINY = Path(__file__).resolve().parent / "fixtures" / "dac_tiny_16k.pth"  # see conftest.py

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def codec_config(name: str):
    """The codec node as `ns2 train codec=<name>` places it, next to the paths group it refers to."""
    cfg = OmegaConf.create(
        {"paths": OmegaConf.load(CONFIGS / "paths" / "default.yaml"), "codec": OmegaConf.load(CONFIGS / "codec" / f"{name}.yaml")}
    )
    return cfg.codec


@pytest.mark.parametrize(
    "name, hop, n_q, k, d, params",
    [("tiny", 200, 4, 128, 32, (0.1e6, 1e6)), ("ns2_paper", 200, 16, 1024, 256, (25e6, 29e6))],
)
def test_trainable_configs(name, hop, n_q, k, d, params):
    codec = instantiate(codec_config(name))
    assert isinstance(codec, RVQCodec) and codec.sample_rate == 16000
    assert (codec.hop_length, codec.n_q, codec.codebook_size, codec.latent_dim) == (hop, n_q, k, d)
    assert params[0] < codec.num_parameters() < params[1]
    assert isinstance(codec.kwargs["encoder_rates"], list)


def test_pretrained_config_with_a_fake_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NS2_CACHE", str(tmp_path))
    dest = cached_path("dac_24khz")
    assert dest == tmp_path / "codec" / "dac_24khz-0.0.4.pth"
    dest.parent.mkdir(parents=True)
    shutil.copy(DAC_TINY, dest)  # stands in for the 300 MB release
    cfg = codec_config("dac_24khz")
    assert cfg.cache_dir == str(tmp_path / "codec")
    codec = instantiate(cfg)
    assert isinstance(codec, Codec) and codec.frozen and not codec.training
