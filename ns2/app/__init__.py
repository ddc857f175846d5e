"""The demo page: :mod:`ns2.app.core` (uploads, synthesis side by side, plots; no browser needed) and
:mod:`ns2.app.ui` (the Gradio widgets). Start it with ``ns2 app ckpt=...``."""
from ns2.app.core import (
    AppError,
    SystemOutput,
    UploadedAudio,
    UploadLimits,
    check_audio_file,
    check_text,
    convert_voice,
    enhance_speech,
    prosody_figure,
    sampler_override,
    supports,
    synthesize_all,
)

__all__ = [
    "AppError",
    "SystemOutput",
    "UploadLimits",
    "UploadedAudio",
    "check_audio_file",
    "check_text",
    "convert_voice",
    "enhance_speech",
    "prosody_figure",
    "sampler_override",
    "supports",
    "synthesize_all",
]
