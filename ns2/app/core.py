"""What the demo page does, without the page: checked uploads, side-by-side synthesis, prosody plots.

Every function here is plain Python over :class:`~ns2.inference.synthesizer.Synthesizer` objects, so
the page (:mod:`ns2.app.ui`) is a thin layer of widgets and the logic is tested without a browser::

    systems = {"ns2": NS2Synthesizer.from_checkpoint("my_voice.pt")}
    prompt = check_audio_file("me.wav", UploadLimits(), "prompt")
    outputs = synthesize_all(systems, "Hello there.", prompt, sampler="dpm_solver_pp", steps=20)
    outputs[0].wav, outputs[0].sample_rate, outputs[0].info["durations"]

Any Synthesizer plugs in: systems that expose a diffusion ``sampler`` (NaturalSpeech 2) take the page's
sampler and steps settings and report progress per step; systems with ``convert`` / ``enhance`` are
offered in the voice-conversion and enhancement tabs.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ns2.inference.samplers import SAMPLERS, Sampler, get_sampler
from ns2.inference.synthesizer import SynthesisError, Synthesizer

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

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], description)``."""


class AppError(ValueError):
    """A request the page cannot serve (bad upload, empty text, unknown sampler): one line for the user."""


# --- uploads ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadLimits:
    """What an uploaded or recorded clip may be: file size, duration and container format."""

    max_megabytes: float = 20.0
    min_seconds: float = 1.0
    max_seconds: float = 30.0
    formats: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3")
    max_text_chars: int = 600

    def __post_init__(self) -> None:
        if not self.max_megabytes > 0:
            raise ValueError(f"limits.max_megabytes must be > 0, got {self.max_megabytes}")
        if not 0 < self.min_seconds < self.max_seconds:
            raise ValueError(f"limits: expected 0 < min_seconds < max_seconds, got {self.min_seconds} and {self.max_seconds}")
        if not self.formats:
            raise ValueError("limits.formats: expected at least one extension such as .wav")
        object.__setattr__(self, "formats", tuple(f.lower() if f.startswith(".") else f".{f.lower()}" for f in self.formats))

    @property
    def max_bytes(self) -> int:
        return int(self.max_megabytes * 1024 * 1024)

    def describe(self) -> str:
        """The limits in one line, shown beside the upload widgets."""
        fmts = ", ".join(f.lstrip(".") for f in self.formats)
        return f"{fmts}; {self.min_seconds:g}–{self.max_seconds:g} s; at most {self.max_megabytes:g} MB"


@dataclass
class UploadedAudio:
    """A checked clip: mono float32 ``wav`` [S] at ``sample_rate``, with where it came from."""

    wav: np.ndarray
    sample_rate: int
    path: Path

    @property
    def seconds(self) -> float:
        return len(self.wav) / self.sample_rate


def check_audio_file(path: str | os.PathLike | None, limits: UploadLimits, what: str = "prompt") -> UploadedAudio:
    """Read an uploaded / recorded clip, or raise :class:`AppError` naming ``what`` and the limit it breaks."""
    import soundfile as sf

    if path is None or str(path) == "":
        raise AppError(f"{what}: no audio given; upload or record a clip ({limits.describe()})")
    p = Path(path)
    if p.suffix.lower() not in limits.formats:
        raise AppError(f"{what}: {p.name} is a {p.suffix or 'extension-less'} file; expected one of {', '.join(limits.formats)}")
    if not p.is_file():
        raise AppError(f"{what}: {p.name} was not received; upload it again")
    size = p.stat().st_size
    if size > limits.max_bytes:
        raise AppError(f"{what}: {p.name} is {size / 2**20:.1f} MB; expected at most {limits.max_megabytes:g} MB")
    try:
        info = sf.info(str(p))
    except (RuntimeError, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise AppError(f"{what}: {p.name} is not readable audio ({reason}); expected {', '.join(limits.formats)}") from None
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if seconds > limits.max_seconds:
        raise AppError(f"{what}: {p.name} is {seconds:.1f} s long; expected at most {limits.max_seconds:g} s (trim it)")
    if seconds < limits.min_seconds:
        raise AppError(f"{what}: {p.name} is {seconds:.2f} s long; expected at least {limits.min_seconds:g} s of speech")
    x, sr = sf.read(str(p), dtype="float32", always_2d=True)
    wav = np.ascontiguousarray(x.mean(axis=1))
    if not np.all(np.isfinite(wav)) or float(np.abs(wav).max(initial=0.0)) < 1e-4:
        raise AppError(f"{what}: {p.name} is silent or holds invalid samples; expected speech")
    return UploadedAudio(wav=wav, sample_rate=int(sr), path=p)


def check_text(text: str | None, limits: UploadLimits, what: str = "text") -> str:
    """The text to speak, stripped; :class:`AppError` when empty or longer than the limit."""
    t = (text or "").strip()
    if not t:
        raise AppError(f"{what}: empty; type the words to speak")
    if len(t) > limits.max_text_chars:
        raise AppError(f"{what}: {len(t)} characters; expected at most {limits.max_text_chars} (split it into shorter parts)")
    return t


# --- running systems ------------------------------------------------------------------------------
def supports(system: Any, method: str) -> bool:
    """Whether ``system`` offers ``method`` (``convert``: voice conversion, ``enhance``: enhancement,
    ``sampler``: a diffusion sampler the page may set)."""
    if method == "sampler":
        return isinstance(getattr(system, "sampler", None), Sampler)
    return callable(getattr(system, method, None))


class _ProgressSampler:
    """A sampler that reports each step to ``progress`` and otherwise behaves as ``inner``."""

    def __init__(self, inner: Sampler, progress: Progress, label: str) -> None:
        self._inner, self._progress, self._label = inner, progress, label

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        steps = max(int(self._inner.steps), 1)
        user_cb = kwargs.pop("callback", None)

        def callback(step: int, t: float, z_t: Any, z0_hat: Any) -> None:
            self._progress(min((step + 1) / steps, 1.0), f"{self._label}: step {step + 1}/{steps}")
            if user_cb is not None:
                user_cb(step, t, z_t, z0_hat)

        return self._inner(*args, callback=callback, **kwargs)


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(system: Any) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(system), threading.Lock())


@contextlib.contextmanager
def sampler_override(system: Any, sampler: str | None = None, steps: int | None = None,
                     progress: Progress | None = None, label: str = "") -> Iterator[Any]:
    """Run ``system`` with another diffusion sampler / step count and per-step progress, then restore
    it. Systems without a sampler are used as they are. One request at a time per system."""
    with _lock(system):
        if not supports(system, "sampler"):
            yield system
            return
        original: Sampler = system.sampler
        chosen = original
        if sampler not in (None, "", original.name) or (steps is not None and int(steps) != original.steps):
            name = original.name if sampler in (None, "") else str(sampler)
            if name not in SAMPLERS:
                raise AppError(f"sampler {name!r}: unknown; expected one of {', '.join(sorted(SAMPLERS))}")
            if steps is not None and not 1 <= int(steps) <= 1000:
                raise AppError(f"steps {steps}: expected a whole number from 1 to 1000")
            keep = {"grid": original.grid, "t_min": original.t_min} if name == original.name else {}
            chosen = get_sampler(name, steps=None if steps is None else int(steps), tau=original.tau, **keep)
        system.sampler = chosen if progress is None else _ProgressSampler(chosen, progress, label or system.name)
        try:
            yield system
        finally:
            system.sampler = original


@dataclass
class SystemOutput:
    """One system's answer to a request: audio, or the one-line error it gave."""

    name: str
    wav: np.ndarray | None = None
    sample_rate: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def seconds(self) -> float:
        return 0.0 if self.wav is None or not self.sample_rate else len(self.wav) / self.sample_rate


def _scaled(progress: Progress | None, i: int, n: int) -> Progress | None:
    if progress is None:
        return None
    return lambda frac, desc: progress((i + min(max(frac, 0.0), 1.0)) / n, desc)


def _run(name: str, system: Any, call: Callable[[Any], tuple[np.ndarray, int]], sampler: str | None,
         steps: int | None, progress: Progress | None) -> SystemOutput:
    try:
        with sampler_override(system, sampler, steps, progress, name) as s:
            wav, sr = call(s)
    except (SynthesisError, AppError) as e:
        return SystemOutput(name, error=" ".join(str(e).split()))
    except Exception as e:  # noqa: BLE001 - one system failing must not take the page down
        return SystemOutput(name, error=f"{type(e).__name__}: {' '.join(str(e).split())}")
    info = dict(getattr(system, "last_info", None) or {})
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    info.setdefault("seconds", round(len(wav) / int(sr), 4))
    codec = getattr(system, "codec", None)
    if codec is not None and getattr(codec, "hop_length", None):
        info.setdefault("frame_rate", float(codec.sample_rate) / float(codec.hop_length))
    return SystemOutput(name, wav=wav, sample_rate=int(sr), info=info)


def synthesize_all(systems: Mapping[str, Synthesizer], text: str, prompt: UploadedAudio, *, sampler: str | None = None,
                   steps: int | None = None, seed: int = 0, progress: Progress | None = None) -> list[SystemOutput]:
    """Zero-shot TTS of ``text`` in the prompt's voice by every system, in order. A system's failure is
    its own :class:`SystemOutput` with ``error`` set; the others still run."""
    if not systems:
        raise AppError("no systems loaded; start the page with ckpt=PATH (or systems.<name>=...)")
    n = len(systems)
    outs = []
    for i, (name, system) in enumerate(systems.items()):
        if progress is not None:
            progress(i / n, f"{name}: starting")
        outs.append(_run(name, system, lambda s: s.synthesize(text, prompt.wav, prompt.sample_rate, seed=int(seed)),
                         sampler, steps, _scaled(progress, i, n)))
    if progress is not None:
        progress(1.0, "done")
    return outs


def convert_voice(name: str, system: Any, source: UploadedAudio, source_text: str, prompt: UploadedAudio, *,
                  sampler: str | None = None, steps: int | None = None, seed: int = 0,
                  progress: Progress | None = None) -> SystemOutput:
    """Zero-shot voice conversion: the source's words and timing in the prompt speaker's voice."""
    if not supports(system, "convert"):
        raise AppError(f"{name}: this system does not do voice conversion")
    return _run(name, system, lambda s: s.convert(source.wav, source.sample_rate, prompt.wav, prompt.sample_rate,
                                                  source_text=source_text, seed=int(seed)), sampler, steps, progress)


def enhance_speech(name: str, system: Any, noisy: UploadedAudio, text: str, clean_prompt: UploadedAudio | None = None, *,
                   sampler: str | None = None, steps: int | None = None, seed: int = 0,
                   progress: Progress | None = None) -> SystemOutput:
    """Zero-shot speech enhancement, optionally prompted by a clean recording of the same speaker."""
    if not supports(system, "enhance"):
        raise AppError(f"{name}: this system does not do speech enhancement")
    clean = {} if clean_prompt is None else {"clean_prompt_wav": clean_prompt.wav, "clean_prompt_sr": clean_prompt.sample_rate}
    return _run(name, system, lambda s: s.enhance(noisy.wav, noisy.sample_rate, text=text, seed=int(seed), **clean),
                sampler, steps, progress)


# --- plots --------------------------------------------------------------------------------------
def prosody_figure(out: SystemOutput, frame_rate: float | None = None):
    """A matplotlib figure of an output's prosody: the F0 measured on its audio (Praat) and, when the
    system reports them, the predicted pitch contour and the phoneme durations. ``frame_rate``: frames
    per second of the reported durations / pitch (default: from the info, else 80)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from ns2.metrics.prosody import extract_f0

    if out.wav is None:
        raise AppError(f"{out.name}: no audio to plot ({out.error})")
    info = out.info
    rate = float(frame_rate or info.get("frame_rate") or 80.0)
    durations: Sequence[int] = info.get("durations") or []
    phonemes: Sequence[str] = info.get("phonemes") or []
    fig = Figure(figsize=(7.5, 4.2 if durations else 2.6), layout="constrained")
    axes = fig.subplots(2 if durations else 1, 1, squeeze=False)[:, 0]
    ax = axes[0]
    f0 = extract_f0(out.wav, int(out.sample_rate), rate)
    t = (np.arange(len(f0)) + 0.5) / rate
    ax.plot(t, np.where(f0 > 0, f0, np.nan), lw=1.2, label="F0 of the output (Praat)")
    if info.get("log_f0"):
        lf = np.asarray(info["log_f0"], dtype=np.float64)
        ax.plot((np.arange(len(lf)) + 0.5) / rate, np.exp(lf), lw=1, ls="--", label="predicted F0")
    if durations:
        for edge in np.cumsum(durations)[:-1] / rate:
            ax.axvline(edge, color="0.85", lw=0.5, zorder=0)
    ax.set(ylabel="Hz", xlim=(0, max(out.seconds, 1e-3)), title=f"{out.name}: {out.seconds:.2f} s")
    ax.legend(loc="upper right", fontsize=7)
    if durations:
        b = axes[1]
        b.bar(range(len(durations)), list(durations), color="tab:gray")
        b.set_xticks(range(len(durations)))
        b.set_xticklabels(list(phonemes) if len(phonemes) == len(durations) else [], fontsize=6)
        b.set(ylabel="frames", xlim=(-0.5, len(durations) - 0.5), title="phoneme durations")
    ax.set_xlabel("s")
    return fig
