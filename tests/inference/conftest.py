"""Fixtures: a tiny random NaturalSpeech 2 synthesizer (:mod:`tiny_synth`) and a 2 s prompt."""
from __future__ import annotations

import numpy as np
import pytest
from tiny_synth import build_tiny, tone


@pytest.fixture(scope="session")
def synth():
    return build_tiny()


@pytest.fixture(scope="session")
def prompt() -> np.ndarray:
    return tone(2.0)
