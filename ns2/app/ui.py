"""The demo page: Gradio widgets over :mod:`ns2.app.core` (all logic lives there).

Tabs: **Text to speech** (text + a prompt, uploaded or recorded, through every loaded system side by
side, each with its audio, a pitch / duration plot and what the model decided), **Voice conversion**
and **Speech enhancement** (systems with ``convert`` / ``enhance``). The sampler and steps controls
apply to systems with a diffusion sampler; long syntheses show per-step progress.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ns2.app.core import (
    AppError,
    SystemOutput,
    UploadLimits,
    check_audio_file,
    check_text,
    convert_voice,
    enhance_speech,
    prosody_figure,
    supports,
    synthesize_all,
)
from ns2.inference.samplers import SAMPLERS

__all__ = ["build_app", "launch", "DEFAULT_SAMPLER"]

DEFAULT_SAMPLER = "checkpoint default"


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError as e:
        raise SystemExit(f"ns2 app: gradio is not installed ({e}); install the page's extra: pip install '.[app]'") from None
    return gr


def _pcm16(out: SystemOutput) -> tuple[int, np.ndarray] | None:
    if out.wav is None:
        return None
    return int(out.sample_rate), (np.clip(out.wav, -1.0, 1.0) * 32767.0).astype(np.int16)


def _rendered(out: SystemOutput) -> list[Any]:
    """The values of one output's (status, audio, plot) widgets."""
    return [_status(out), _pcm16(out), None if out.wav is None else prosody_figure(out)]


def _output_widgets(gr: Any, tab: str, label: str, status: str = "", index: str = "") -> list[Any]:
    """One output's (status, audio, plot) widgets, ids ``<tab>-status<index>``, ``<tab>-out<index>`` and
    ``<tab>-plot<index>`` (the browser test finds them by these)."""
    return [gr.Markdown(status, elem_id=f"{tab}-status{index}"),
            gr.Audio(label=label, type="numpy", interactive=False, elem_id=f"{tab}-out{index}"),
            gr.Plot(label=f"{label}: pitch and durations", elem_id=f"{tab}-plot{index}")]


def _status(out: SystemOutput) -> str:
    if out.error:
        return f"**{out.name}** failed: {out.error}"
    bits = [f"**{out.name}**: {out.seconds:.2f} s at {out.sample_rate} Hz"]
    info = out.info
    if info.get("sampler"):
        bits.append(f"{info['sampler']}, {info.get('steps')} steps")
    if info.get("frames"):
        bits.append(f"{info['frames']} frames")
    if info.get("phonemes"):
        bits.append(f"{len(info['phonemes'])} phonemes")
    return " · ".join(bits)


def _options(sampler: str | None, steps: Any) -> tuple[str | None, int | None]:
    name = None if sampler in (None, "", DEFAULT_SAMPLER) else str(sampler)
    n = None if steps in (None, "", 0) else int(steps)
    return name, n


def build_app(systems: Mapping[str, Any], limits: UploadLimits | None = None, *, title: str = "ns2: zero-shot speech synthesis"):
    """The page (a ``gradio.Blocks``) over ``systems`` ({name: Synthesizer}, shown in this order)."""
    gr = _gradio()
    limits = limits or UploadLimits()
    if not systems:
        raise AppError("no systems to show; expected at least one Synthesizer")
    names = list(systems)
    vc_names = [n for n in names if supports(systems[n], "convert")]
    se_names = [n for n in names if supports(systems[n], "enhance")]
    with_sampler = [n for n in names if supports(systems[n], "sampler")]

    def fail(e: Exception):
        return gr.Error(" ".join(str(e).split()), print_exception=False)

    def progress_of(p):
        return lambda frac, desc: p(float(frac), desc=desc)

    def sampler_controls(prefix: str):
        with gr.Row():
            sampler = gr.Dropdown([DEFAULT_SAMPLER, *sorted(SAMPLERS)], value=DEFAULT_SAMPLER, label="sampler",
                                  elem_id=f"{prefix}-sampler", interactive=bool(with_sampler))
            steps = gr.Slider(0, 200, value=0, step=1, label="steps (0: the checkpoint's setting)", elem_id=f"{prefix}-steps",
                              interactive=bool(with_sampler))
            seed = gr.Number(0, precision=0, label="seed", elem_id=f"{prefix}-seed")
        return sampler, steps, seed

    audio_kw = dict(sources=["upload", "microphone"], type="filepath")
    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(f"# {title}\nSystems: {', '.join(names)}. Uploads: {limits.describe()}.")
        with gr.Tab("Text to speech"):
            with gr.Row():
                text = gr.Textbox(label="text", lines=3, max_length=limits.max_text_chars, elem_id="tts-text",
                                  placeholder="The words to speak, in the prompt's voice.")
                prompt = gr.Audio(label=f"speech prompt: upload or record ({limits.describe()})", elem_id="tts-prompt", **audio_kw)
            sampler, steps, seed = sampler_controls("tts")
            run = gr.Button("Synthesize", variant="primary", elem_id="tts-run")
            outputs: list[Any] = []
            with gr.Row(equal_height=False):
                for i, name in enumerate(names):
                    with gr.Column(min_width=320):
                        outputs += _output_widgets(gr, "tts", name, f"**{name}**", f"-{i}")

            def on_tts(text_value, prompt_path, sampler_value, steps_value, seed_value, progress=gr.Progress()):
                try:
                    t = check_text(text_value, limits)
                    clip = check_audio_file(prompt_path, limits, "prompt")
                    name_, n = _options(sampler_value, steps_value)
                    outs = synthesize_all(systems, t, clip, sampler=name_, steps=n, seed=int(seed_value or 0),
                                          progress=progress_of(progress))
                except AppError as e:
                    raise fail(e) from None
                values: list[Any] = []
                for out in outs:
                    values += _rendered(out)
                return values

            run.click(on_tts, [text, prompt, sampler, steps, seed], outputs, concurrency_limit=1)

        with gr.Tab("Voice conversion"):
            if not vc_names:
                gr.Markdown("None of the loaded systems does voice conversion.")
            else:
                gr.Markdown("Source-aware diffusion: the source's words and timing in the prompt speaker's voice.")
                with gr.Row():
                    vc_system = gr.Dropdown(vc_names, value=vc_names[0], label="system", elem_id="vc-system")
                with gr.Row():
                    with gr.Column():
                        source = gr.Audio(label=f"source speech ({limits.describe()})", elem_id="vc-source", **audio_kw)
                        source_text = gr.Textbox(label="transcript of the source", elem_id="vc-source-text",
                                                 max_length=limits.max_text_chars)
                    vc_prompt = gr.Audio(label=f"target voice prompt ({limits.describe()})", elem_id="vc-prompt", **audio_kw)
                vc_sampler, vc_steps, vc_seed = sampler_controls("vc")
                vc_run = gr.Button("Convert", variant="primary", elem_id="vc-run")
                vc_outputs = _output_widgets(gr, "vc", "converted")

                def on_vc(name, src, src_text, tgt, sampler_value, steps_value, seed_value, progress=gr.Progress()):
                    try:
                        st = check_text(src_text, limits, "transcript of the source")
                        s = check_audio_file(src, limits, "source")
                        p = check_audio_file(tgt, limits, "prompt")
                        name_, n = _options(sampler_value, steps_value)
                        out = convert_voice(name, systems[name], s, st, p, sampler=name_, steps=n,
                                            seed=int(seed_value or 0), progress=progress_of(progress))
                    except AppError as e:
                        raise fail(e) from None
                    return _rendered(out)

                vc_run.click(on_vc, [vc_system, source, source_text, vc_prompt, vc_sampler, vc_steps, vc_seed],
                             vc_outputs, concurrency_limit=1)

        with gr.Tab("Speech enhancement"):
            if not se_names:
                gr.Markdown("None of the loaded systems does speech enhancement.")
            else:
                gr.Markdown("Source-aware diffusion from the noisy recording; a clean prompt of the same speaker helps.")
                with gr.Row():
                    se_system = gr.Dropdown(se_names, value=se_names[0], label="system", elem_id="se-system")
                with gr.Row():
                    with gr.Column():
                        noisy = gr.Audio(label=f"noisy speech ({limits.describe()})", elem_id="se-noisy", **audio_kw)
                        se_text = gr.Textbox(label="transcript", elem_id="se-text", max_length=limits.max_text_chars)
                    clean = gr.Audio(label="clean prompt of the same speaker (optional)", elem_id="se-clean", **audio_kw)
                se_sampler, se_steps, se_seed = sampler_controls("se")
                se_run = gr.Button("Enhance", variant="primary", elem_id="se-run")
                se_outputs = _output_widgets(gr, "se", "enhanced")

                def on_se(name, noisy_path, text_value, clean_path, sampler_value, steps_value, seed_value, progress=gr.Progress()):
                    try:
                        t = check_text(text_value, limits, "transcript")
                        n_clip = check_audio_file(noisy_path, limits, "noisy speech")
                        c_clip = None if not clean_path else check_audio_file(clean_path, limits, "clean prompt")
                        name_, n = _options(sampler_value, steps_value)
                        out = enhance_speech(name, systems[name], n_clip, t, c_clip, sampler=name_, steps=n,
                                             seed=int(seed_value or 0), progress=progress_of(progress))
                    except AppError as e:
                        raise fail(e) from None
                    return _rendered(out)

                se_run.click(on_se, [se_system, noisy, se_text, clean, se_sampler, se_steps, se_seed],
                             se_outputs, concurrency_limit=1)
    return page


def launch(page: Any, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
           limits: UploadLimits | None = None, block: bool = True, quiet: bool = False) -> str:
    """Serve ``page`` on ``host:port`` (loopback unless told otherwise); returns the local URL.
    ``block=False`` returns at once, leaving the server running (``page.close()`` stops it)."""
    limits = limits or UploadLimits()
    page.queue(default_concurrency_limit=1)
    _, url, _ = page.launch(server_name=host, server_port=port, share=bool(share), max_file_size=limits.max_bytes,
                            prevent_thread_lock=True, quiet=quiet, show_error=True, ssr_mode=False)
    if block:
        page.block_thread()
    return url
