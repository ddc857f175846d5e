"""Fixtures for the diffusion tests."""
from __future__ import annotations

import pytest

from ns2.models.ns2.sde import VPSDE


@pytest.fixture()
def sde() -> VPSDE:
    return VPSDE()
