"""Fixtures of the evaluation-harness tests: the prepared mini corpus and its test list."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "data"))  # fake_corpora
sys.path.insert(0, str(Path(__file__).resolve().parent))  # eval_helpers


@pytest.fixture(scope="session")
def mini(tmp_path_factory):
    """The prepared synthetic mini corpus: ``<root>/prepared/manifest.jsonl`` (audio, phonemes, durations)."""
    from ns2.data.prepare import prepare
    from ns2.data.synthetic import SyntheticCorpus

    root = tmp_path_factory.mktemp("eval") / "synthetic-mini"
    prepare(SyntheticCorpus(size="mini", seed=0), root, stages=["audio", "phonemes", "durations"],
            sample_rate=16000, hop_length=200, num_workers=1, durations_source="corpus", language="en-us",
            expected_rates=[22050])
    return root / "prepared"


@pytest.fixture()
def mini_list(mini, tmp_path):
    """The synthetic protocol's list of the mini corpus, in tmp_path."""
    from ns2.data.manifest import read_manifest
    from ns2.eval.builders import build_synthetic
    from ns2.eval.protocol import write_protocol

    path = tmp_path / "protocols" / "synthetic-mini.jsonl"
    write_protocol(path, build_synthetic(read_manifest(mini / "manifest.jsonl"), seed=0), {"builder": "synthetic"})
    return path
