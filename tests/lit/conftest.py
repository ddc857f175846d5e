"""Fixtures of the NS2 LightningModule tests (helpers in ns2_lit_helpers.py)."""
from __future__ import annotations

import pytest

from ns2_lit_helpers import Corpus, make_corpus, tiny_codec


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    """A prepared 18-utterance corpus (12 train, 3 valid, 3 test; 0.4-1.3 s each) with codes extracted by a
    tiny random codec, which is saved beside it with ``save_codec``."""
    from ns2.codec import save_codec
    from ns2.data.codes import extract_codes_for_manifest

    root = tmp_path_factory.mktemp("ns2_corpus")
    manifest = make_corpus(root)
    codec = tiny_codec().eval()
    codec_file = save_codec(codec, root / "codec.pth")
    extract_codes_for_manifest(codec, manifest, batch_frames=0, shard_size=64, accelerator="cpu")
    return Corpus(root, manifest, codec_file)
