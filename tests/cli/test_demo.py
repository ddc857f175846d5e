"""The demo's steps are real `ns2` commands: each one's overrides compose under its command's config."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ns2.cli.demo import STEPS, demo_commands


@pytest.fixture()
def demo_cfg(compose):
    return compose("demo")


def test_demo_steps_compose(compose, demo_cfg, tmp_path):
    cmds = demo_commands(demo_cfg, tmp_path / "demo")
    assert list(cmds) == list(STEPS)
    for step, argv in cmds.items():
        name, overrides = argv[0], [a for a in argv[1:] if not a.startswith("hydra.")]
        if name in ("eval", "compare"):
            overrides = [a.replace("protocol=", "eval/protocol@protocol=", 1) if a.startswith("protocol=") else a
                         for a in overrides]
        cfg = compose(name, overrides)
        OmegaConf.to_container(cfg, resolve=False)  # every override names a real key
        if name == "prep":
            assert cfg.data.prep.codec.endswith("experiments/codec_tiny/codec_tiny_harmonic.pth")
        if name == "train":
            assert cfg.model._target_ == "ns2.lit.NS2Lit"
            assert str(cfg.trainer.max_time) == "00:00:10:00"
        if name == "compare":  # the demo's eval step is the paper's comparison table
            assert list(cfg.systems) == ["groundtruth", "resynth", "ns2"] and cfg.fallbacks is True
            assert Path(cfg.system.ns2.path).name == "last.ckpt"
            assert cfg.system.resynth.codec.endswith("codec_tiny_harmonic.pth")
            assert "wer_pocketsphinx_domain" in cfg.metrics and cfg.report.pairs == "ns2"
        if step == "sing":  # the same checkpoint sings the singing lists
            assert cfg.protocol.name == "synthetic-singing-small" and list(cfg.metrics) == ["singing"]
            assert Path(cfg.system.ns2.path).name == "last.ckpt"


def test_demo_codec_is_shipped(demo_cfg):
    from ns2.cli.demo import _abs
    from ns2.codec import load_codec

    codec = load_codec(_abs(demo_cfg.demo.codec))
    assert codec.sample_rate == 16000 and codec.hop_length == 200


def test_demo_rejects_unknown_step(compose, tmp_path):
    from ns2.cli.demo import run_demo

    cfg = compose("demo", ["demo.steps=[prep,dance]"])
    with pytest.raises(SystemExit, match="unknown steps"):
        run_demo(cfg)
