"""Locate espeak-ng (shipped by the ``espeakng-loader`` package) and point phonemizer at it.

Never rely on a system espeak: 1.51 reads Mandarin wrongly. phonemizer needs *both* the
library and the data path; setting only one of them aborts the process inside libespeak-ng,
so :func:`setup_espeak` always sets the two together (and exports them as environment
variables so worker processes inherit them).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from ns2.text.errors import TextFrontendError

__all__ = ["espeak_paths", "setup_espeak", "espeak_version"]

LIBRARY_ENV = "PHONEMIZER_ESPEAK_LIBRARY"
DATA_ENV = "ESPEAK_DATA_PATH"

_lock = threading.Lock()
_configured: tuple[str, str] | None = None


def espeak_paths() -> tuple[str, str]:
    """``(library, data)`` paths of the espeak-ng shipped by ``espeakng-loader``.

    Raises :class:`TextFrontendError` (one line) when the package or its files are missing.
    """
    try:
        import espeakng_loader
    except ImportError as exc:
        raise TextFrontendError(
            "espeak-ng is not available: install the 'espeakng-loader' package (pip install espeakng-loader)"
        ) from exc
    try:
        library = str(espeakng_loader.get_library_path())
        data = str(espeakng_loader.get_data_path())
    except Exception as exc:  # the loader raises RuntimeError when its data folder is missing
        raise TextFrontendError(f"espeakng-loader is installed but broken: {exc}") from exc
    if not Path(library).is_file():
        raise TextFrontendError(f"espeakng-loader is installed but its library is missing: {library}")
    if not Path(data).is_dir():
        raise TextFrontendError(f"espeakng-loader is installed but its data folder is missing: {data}")
    return library, data


def setup_espeak() -> tuple[str, str]:
    """Point phonemizer at espeakng-loader's library *and* data (idempotent, thread-safe).

    Returns the ``(library, data)`` paths in use.
    """
    global _configured
    with _lock:
        if _configured is not None:
            return _configured
        library, data = espeak_paths()
        try:
            from phonemizer.backend.espeak.wrapper import EspeakWrapper
        except ImportError as exc:
            raise TextFrontendError(
                "phonemizer is not available: install the 'phonemizer' package (pip install phonemizer)"
            ) from exc
        os.environ[LIBRARY_ENV] = library
        os.environ[DATA_ENV] = data
        EspeakWrapper.set_library(library)
        EspeakWrapper.set_data_path(data)
        _configured = (library, data)
        return _configured


def espeak_version() -> tuple[int, int, int]:
    """Version of the espeak-ng library in use, e.g. ``(1, 52, 0)``."""
    setup_espeak()
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    return tuple(EspeakWrapper().version)  # type: ignore[return-value]
