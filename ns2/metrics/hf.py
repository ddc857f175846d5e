"""Loading transformers models and processors from a local folder, quietly and without network."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and info logs while loading."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def load_local(cls: Any, folder: str | os.PathLike, **kwargs: Any) -> Any:
    """``cls.from_pretrained(folder, local_files_only=True)`` with the progress bars off."""
    folder = Path(folder)
    with quiet_transformers():
        return cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
