"""``ns2 app``: config, systems from config (any Synthesizer), loopback by default, one-line errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ns2.cli.app import limits_of, load_systems

REPO = Path(__file__).resolve().parents[2]


def test_defaults_bind_loopback_and_take_the_checkpoint(compose, tiny_ckpt):
    cfg = compose("app", [f"ckpt={tiny_ckpt}"])
    assert cfg.host == "127.0.0.1" and cfg.share is False
    systems = load_systems(cfg.systems)
    assert list(systems) == ["ns2"] and systems["ns2"].checkpoint == str(tiny_ckpt)
    assert limits_of(cfg).max_seconds == 30.0 and limits_of(cfg).formats[0] == ".wav"


def test_more_systems_come_from_the_eval_system_configs(compose, tiny_ckpt):
    cfg = compose("app", [f"ckpt={tiny_ckpt}", "+eval/system@systems.ns2_ft=ns2", f"systems.ns2_ft.path={tiny_ckpt}",
                          "systems.ns2_ft.name=ns2_ft", "++systems.ns2_ft.steps=2"])
    systems = load_systems(cfg.systems)
    assert list(systems) == ["ns2", "ns2_ft"]
    assert systems["ns2_ft"].name == "ns2_ft" and systems["ns2_ft"].sampler.steps == 2


def test_bad_systems_are_one_line(compose, tmp_path):
    with pytest.raises(ValueError, match="no system to serve: pass ckpt=PATH"):
        load_systems(compose("app").systems)
    with pytest.raises(ValueError) as e:
        load_systems(compose("app", [f"ckpt={tmp_path}/missing.ckpt"]).systems)
    assert str(e.value).startswith("systems.ns2: ") and "no such checkpoint file" in str(e.value) and "\n" not in str(e.value)


def test_command_without_checkpoint_exits_with_one_line(tmp_path):
    env = {**os.environ, "NS2_ROOT": str(tmp_path), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "ns2.cli.main", "app"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip() == "ns2 app: no system to serve: pass ckpt=PATH (an NS2 checkpoint or exported .pt) or systems.<name>.path=PATH"
