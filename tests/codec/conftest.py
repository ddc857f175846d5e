"""Fixtures of the codec tests: the official-package reference model (random weights) and its I/O."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DAC_TINY = FIXTURES / "dac_tiny_16k.pth"  # written by descript-audio-codec (DAC.save) with random weights
DAC_TINY_IO = FIXTURES / "dac_tiny_16k_io.npz"  # x, x_pre, codes, z, z_from_codes, y of that model


@pytest.fixture(scope="session")
def dac_tiny():
    from ns2.codec import load_codec

    return load_codec(DAC_TINY)


@pytest.fixture(scope="session")
def dac_io():
    with np.load(DAC_TINY_IO) as npz:
        return {k: torch.from_numpy(npz[k]) for k in npz.files}


@pytest.fixture()
def tiny_codec():
    """A fresh small codec built in-process (random weights, eval mode)."""
    from ns2.codec import RVQCodec

    torch.manual_seed(0)
    return RVQCodec(
        encoder_dim=4, encoder_rates=[2, 5], latent_dim=16, decoder_dim=16, decoder_rates=[5, 2],
        n_codebooks=3, codebook_size=32, codebook_dim=4, quantizer_dropout=1.0, sample_rate=8000,
    ).eval()
