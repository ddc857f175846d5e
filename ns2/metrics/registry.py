"""The metric registry: every metric is a class with a reported name, a backbone and a per-utterance ``score``.

Usage::

    metrics = build_metrics(["sim_wavlm_tdnn", "wer_hubert_large", "prosody"], allow_fallbacks=True)
    [m.name for m in metrics]   # -> ['sim_resemblyzer', 'wer_pocketsphinx', 'prosody'] when offline
    metrics[0].score(hyp_wav, 16000, prompt_wav=prompt_wav)   # -> {'sim_resemblyzer_o': 0.83}

A metric's ``name`` is the name it is reported under and says which backbone produced it, so a
fallback can never pass for the real thing (``sim_resemblyzer`` is not ``sim_wavlm_tdnn``). Backbones
are loaded (and checksum-verified) when the metric is built, so a missing one fails before any audio is
scored. Each ``score`` call returns plain floats; NaN means "undefined for this utterance" (e.g. pitch
statistics of silent audio) and is counted, never silently turned into 0 or 1, by the aggregators in
:mod:`ns2.metrics.stats`.

The registry knows no metric by name: each metric module registers its classes when imported, and
``ns2/metrics/__init__.py`` imports the built-in ones (so any import of ``ns2.metrics...`` registers them).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, ClassVar, Iterable, Mapping, TypeVar

from ns2.metrics.backbones import MissingBackboneError, require

__all__ = [
    "INPUTS",
    "Metric",
    "MetricInputError",
    "available_metrics",
    "build_metrics",
    "get_metric_class",
    "register_metric",
]

log = logging.getLogger(__name__)

#: Keyword inputs of :meth:`Metric.score` besides the hypothesis waveform.
INPUTS = (
    "prompt_wav",  # the speech prompt given to the system
    "ref_wav",  # the ground-truth recording of the target utterance
    "text",  # the target transcript
    "prompt_resynth_wav",  # the prompt passed through the codec (encode + decode), for SIM-r
    "hyp_alignment",  # ns2.metrics.prosody.Alignment of the hypothesis (phoneme durations in frames)
    "prompt_alignment",
    "ref_alignment",
    "score",  # the written notes of a sung target (ns2.metrics.singing.notes_of reads both forms)
)


class MetricInputError(ValueError):
    """A metric was scored without an input it needs."""


class Metric:
    """One evaluation metric with its backbone.

    Subclasses set the class attributes and implement :meth:`_score`. ``requires`` lists the inputs of
    :data:`INPUTS` that must be given; ``keys`` lists every value ``score`` may return.
    """

    name: ClassVar[str] = ""
    backbone: ClassVar[str] = ""
    keys: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[frozenset[str]] = frozenset()
    needs_reference_audio: ClassVar[bool] = False
    needs_text: ClassVar[bool] = False
    higher_is_better: ClassVar[bool | None] = None
    fallback: ClassVar[str | None] = None  # metric built instead when the backbone is missing

    def __init__(
        self,
        cache_dir: str | os.PathLike | None = None,
        *,
        device: str = "cpu",
        checksums: str | os.PathLike | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.device = device
        self.checksums = checksums

    def _require_backbone(self, name: str | None = None):
        """Verify the backbone and return its folder (None for a backbone bundled in a package)."""
        return require(
            name or self.backbone, self.cache_dir, checksums=self.checksums, metric=self.name, fallback=self.fallback
        )

    def score(
        self,
        hyp_wav: Any,
        sr: int,
        *,
        prompt_wav: Any = None,
        ref_wav: Any = None,
        text: str | None = None,
        prompt_resynth_wav: Any = None,
        hyp_alignment: Any = None,
        prompt_alignment: Any = None,
        ref_alignment: Any = None,
        score: Any = None,
    ) -> dict[str, float]:
        """Score one synthesized utterance ``hyp_wav: [S]`` (all waveforms at ``sr``) -> ``{key: value}``."""
        given = dict(
            prompt_wav=prompt_wav,
            ref_wav=ref_wav,
            text=text,
            prompt_resynth_wav=prompt_resynth_wav,
            hyp_alignment=hyp_alignment,
            prompt_alignment=prompt_alignment,
            ref_alignment=ref_alignment,
            score=score,
        )
        missing = sorted(k for k in self.requires if given[k] is None)
        if missing:
            raise MetricInputError(f"metric {self.name!r}: expected input(s) {', '.join(missing)}, got None")
        return self._score(hyp_wav, int(sr), **given)

    def _score(self, hyp_wav: Any, sr: int, **inputs: Any) -> dict[str, float]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, backbone={self.backbone!r})"


_REGISTRY: dict[str, type[Metric]] = {}
M = TypeVar("M", bound=type[Metric])


def register_metric(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`Metric` subclass under its reported ``name``."""

    def deco(cls: M) -> M:
        if cls.name and cls.name != name:
            raise ValueError(f"register_metric({name!r}): the class declares name {cls.name!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"metric {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_metric_class(name: str) -> type[Metric]:
    if name not in _REGISTRY:
        raise KeyError(f"unknown metric {name!r}: expected one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def available_metrics() -> dict[str, str]:
    """``{metric name: backbone}`` for every registered metric."""
    return {n: c.backbone for n, c in sorted(_REGISTRY.items())}


def build_metrics(
    names: Iterable[str],
    cache_dir: str | os.PathLike | None = None,
    allow_fallbacks: bool = False,
    *,
    device: str = "cpu",
    checksums: str | os.PathLike | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    resolved: dict[str, str] | None = None,
) -> list[Metric]:
    """Instantiate (and load the backbones of) the metrics ``names``, in order, without duplicates.

    A metric whose backbone is missing raises :class:`MissingBackboneError` unless ``allow_fallbacks``,
    in which case its ``fallback`` metric is built instead (and reported under the fallback's name).
    ``options[name]`` holds extra constructor arguments of metric ``name``. When ``resolved`` is a dict,
    it receives ``{requested name: name of the metric built for it}`` (a fallback's name where one was used).
    """
    options = options or {}
    built: dict[str, Metric] = {}
    for name in names:
        chosen = name
        while True:
            cls = get_metric_class(chosen)
            if chosen in built:
                break
            try:
                built[chosen] = cls(cache_dir, device=device, checksums=checksums, **dict(options.get(chosen, {})))
                break
            except MissingBackboneError:
                if not (allow_fallbacks and cls.fallback):
                    raise
                log.warning(
                    "metric %r: backbone %r is not available; reporting %r instead "
                    "(fetch it with `python -m ns2.metrics download %s`)",
                    chosen, cls.backbone, cls.fallback, cls.backbone,
                )
                chosen = cls.fallback
        if resolved is not None:
            resolved[name] = chosen
    return list(built.values())
