"""Fixtures of the codec-training tests: a prepared corpus (session-wide) and one-thread CPU settings."""
from __future__ import annotations

from pathlib import Path

import pytest

from codec_train_helpers import make_prepared


@pytest.fixture(scope="session")
def prepared_corpus(tmp_path_factory) -> Path:
    """``<root>/data/synthetic-mini/prepared/manifest.jsonl`` under a session root; returns the root."""
    root = tmp_path_factory.mktemp("codec_root")
    make_prepared(root / "data" / "synthetic-mini")
    return root
