"""Fixtures of the codec-training tests: a prepared corpus (session-wide) and one-thread CPU settings."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codec_train_helpers import make_prepared


@pytest.fixture(scope="session")
def prepared_corpus(tmp_path_factory) -> Path:
    """``<root>/data/synthetic-mini/prepared/manifest.jsonl`` under a session root; returns the root."""
    root = tmp_path_factory.mktemp("codec_root")
    make_prepared(root / "data" / "synthetic-mini")
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """Small convolutions on a shared 2-core machine run far faster on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
