"""Fixtures of the demo page's tests: a tiny random NS2 checkpoint (tests/inference/tiny_synth.py) and clips."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))

from tiny_synth import SR, save_tiny_checkpoint, tone  # noqa: E402


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("app") / "tiny.ckpt")


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Prompt-like clips: 2 s wav, 2 s stereo flac, 40 s wav (too long), 0.3 s wav (too short),
    silence, a text file named .wav, and an .aiff (a format the page does not take)."""
    import numpy as np
    import soundfile as sf

    d = tmp_path_factory.mktemp("clips")
    out = {
        "ok": d / "prompt.wav",
        "stereo": d / "stereo.flac",
        "long": d / "long.wav",
        "short": d / "short.wav",
        "silent": d / "silent.wav",
        "garbage": d / "garbage.wav",
        "aiff": d / "prompt.aiff",
    }
    sf.write(out["ok"], tone(2.0), SR)
    sf.write(out["stereo"], tone(2.0, channels=2).T, SR)
    sf.write(out["long"], tone(40.0), SR)
    sf.write(out["short"], tone(0.3), SR)
    sf.write(out["silent"], np.zeros(2 * SR, dtype=np.float32), SR)
    out["garbage"].write_text("not audio")
    sf.write(out["aiff"], tone(2.0), SR, format="AIFF")
    return out
