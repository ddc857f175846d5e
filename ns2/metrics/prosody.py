"""Prosody similarity (the NaturalSpeech 2 metric): phoneme-level pitch and duration statistics.

Per utterance, with phoneme durations in frames (:class:`Alignment`, at the codec frame rate):

1. F0 per frame with Praat's autocorrelation tracker (parselmouth ``to_pitch_ac``, time step
   ``1 / frame_rate``, sampled at frame centres ``(i + 0.5) / frame_rate``; 0 = unvoiced).
2. Phoneme-level pitch: mean F0 over the voiced frames of each phoneme (Hz, or mean log-F0 with
   ``pitch_unit="log"``); NaN for a phoneme without a voiced frame. Phoneme-level duration: its length
   in frames (or seconds). Silence and boundary symbols (:data:`SILENCE_SYMBOLS`) are left out when the
   alignment names its phonemes (``skip_silence``).
3. Statistics of each sequence over its finite values (:func:`moments`): mean, standard deviation
   (population, ``ddof=0``), skewness (``scipy.stats.skew``, ``bias=True``: the plain third standardised
   moment) and kurtosis (``scipy.stats.kurtosis``, Fisher, ``bias=True``: excess over the normal's 3).
   ``bias=True`` is chosen because the corrected estimators are undefined below 3 (skew) or 4 (kurtosis)
   values and swing widely on short prompts.
4. vs the prompt: ``|stat(synthesis) - stat(prompt)|`` for each statistic of pitch and duration
   (``pitch_mean_diff`` ... ``dur_kurt_diff``; lower is better). The NS2 table's pitch differences
   (~10 for the mean) are in Hz and its durations in frames, hence the defaults.
5. vs the ground truth (``ref_wav`` + ``ref_alignment``, same phoneme count): Pearson correlation and
   RMSE of the phoneme-level pitch and duration sequences (``pitch_corr``, ``pitch_rmse``, ``dur_corr``,
   ``dur_rmse``), and frame level: F0 RMSE in cents and F0 correlation over frames voiced in both,
   V/UV F1 with voiced as the positive class (``f0_rmse_cents``, ``f0_corr``, ``vuv_f1``). Frame-level
   values compare frame i with frame i, so they mean something when the synthesis follows the
   ground-truth timing (codec resynthesis, ground-truth durations).

Undefined values are NaN, never 0 or 1: pitch statistics of silent or unvoiced audio, skewness and
kurtosis of fewer than 2 values or of constant sequences, correlations of fewer than 2 pairs or of a
constant sequence, frame metrics without a frame voiced in both. ``vuv_f1`` = 2TP / (2TP + FP + FN) is
NaN only when neither signal has a voiced frame (a silent synthesis of voiced speech scores 0, so it is
not dropped from averages). The aggregators in :mod:`ns2.metrics.stats` report how many NaNs they skip.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ns2.metrics.audio import as_mono
from ns2.metrics.registry import Metric, register_metric

__all__ = [
    "Alignment",
    "SILENCE_SYMBOLS",
    "ProsodyMetric",
    "extract_f0",
    "frame_f0_metrics",
    "moment_differences",
    "moments",
    "phoneme_durations",
    "phoneme_pitch",
    "sequence_agreement",
]

log = logging.getLogger(__name__)

SILENCE_SYMBOLS = frozenset({"<sil>", "<pad>", "<bos>", "<eos>", "|", "sil", "sp", "spn", "sil_S", ""})
STATS = ("mean", "std", "skew", "kurt")
NAN = float("nan")


@dataclass(frozen=True)
class Alignment:
    """Phoneme durations of one utterance: ``durations[i]`` frames at ``frame_rate`` frames/s."""

    durations: tuple[int, ...]
    frame_rate: float
    phonemes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        d = tuple(int(x) for x in self.durations)
        if any(x < 0 for x in d) or any(int(x) != x for x in self.durations):
            shown = list(self.durations)[:8]
            raise ValueError(f"Alignment.durations: expected non-negative integers (frames), got {shown}")
        if not self.frame_rate > 0:
            raise ValueError(f"Alignment.frame_rate: expected a positive number, got {self.frame_rate}")
        object.__setattr__(self, "durations", d)
        if self.phonemes is not None:
            p = tuple(self.phonemes)
            if len(p) != len(d):
                raise ValueError(f"Alignment: expected as many phonemes as durations, got {len(p)} and {len(d)}")
            object.__setattr__(self, "phonemes", p)

    @property
    def num_frames(self) -> int:
        return int(sum(self.durations))

    def speech_mask(self, skip: Iterable[str] = SILENCE_SYMBOLS) -> np.ndarray:
        """``[N]`` bool: phonemes that are not silence/boundary symbols (all True without phonemes)."""
        if self.phonemes is None:
            return np.ones(len(self.durations), dtype=bool)
        skip = set(skip)
        return np.array([p not in skip for p in self.phonemes], dtype=bool)

    @classmethod
    def coerce(cls, x: Any, name: str = "alignment") -> "Alignment":
        """An :class:`Alignment` from itself, a mapping, or an object with ``durations`` and ``frame_rate``
        (e.g. a manifest ``Utterance``)."""
        if isinstance(x, Alignment):
            return x
        if isinstance(x, Mapping):
            return cls(tuple(x["durations"]), float(x["frame_rate"]), x.get("phonemes"))
        if getattr(x, "durations", None) is not None and getattr(x, "frame_rate", None) is not None:
            return cls(tuple(x.durations), float(x.frame_rate), getattr(x, "phonemes", None))
        raise TypeError(
            f"{name}: expected an Alignment, a mapping or an Utterance with durations, got {type(x).__name__}"
        )


# --- F0 -----------------------------------------------------------------------------------------
def extract_f0(
    wav: Any,
    sr: int,
    frame_rate: float,
    num_frames: int | None = None,
    f0_min: float = 75.0,
    f0_max: float = 600.0,
) -> np.ndarray:
    """``wav: [S]`` -> F0 in Hz per frame ``[T]`` (float64, 0 = unvoiced), frame i centred at (i + 0.5) / frame_rate.

    ``num_frames`` defaults to ``ceil(S * frame_rate / sr)``. Audio too short for Praat's analysis window
    (3 periods of ``f0_min``) is all unvoiced.
    """
    import parselmouth

    x = as_mono(wav, "wav").astype(np.float64)
    if num_frames is None:
        num_frames = int(np.ceil(x.size * frame_rate / sr))
    f0 = np.zeros(int(num_frames), dtype=np.float64)
    if num_frames == 0 or not np.any(x):
        return f0
    try:
        pitch = parselmouth.Sound(x, sampling_frequency=float(sr)).to_pitch_ac(
            time_step=1.0 / frame_rate, pitch_floor=f0_min, pitch_ceiling=f0_max
        )
    except parselmouth.PraatError:
        return f0
    values = np.nan_to_num(pitch.selected_array["frequency"], nan=0.0)
    if values.size == 0:
        return f0
    t = (np.arange(num_frames) + 0.5) / frame_rate
    idx = np.round((t - pitch.x1) / pitch.dx).astype(np.int64)
    ok = (idx >= 0) & (idx < values.size)
    f0[ok] = values[idx[ok]]
    return f0


def phoneme_pitch(f0: np.ndarray, durations: Sequence[int], log_f0: bool = False) -> np.ndarray:
    """``f0: [T]`` (0 = unvoiced), ``durations: [N]`` summing to T -> ``[N]`` mean F0 of each phoneme's
    voiced frames (mean log-F0 with ``log_f0``); NaN for a phoneme with no voiced frame."""
    f0 = np.asarray(f0, dtype=np.float64)
    d = np.asarray(durations, dtype=np.int64)
    if d.sum() != f0.size:
        raise ValueError(f"phoneme_pitch: expected durations summing to the {f0.size} F0 frames, got {int(d.sum())}")
    out = np.full(d.size, np.nan)
    bounds = np.concatenate([[0], np.cumsum(d)])
    for i in range(d.size):
        seg = f0[bounds[i] : bounds[i + 1]]
        seg = seg[seg > 0]
        if seg.size:
            out[i] = np.mean(np.log(seg)) if log_f0 else np.mean(seg)
    return out


def phoneme_durations(alignment: Alignment, unit: str = "frames") -> np.ndarray:
    """``[N]`` durations in frames, or seconds with ``unit="seconds"``."""
    d = np.asarray(alignment.durations, dtype=np.float64)
    if unit == "frames":
        return d
    if unit == "seconds":
        return d / alignment.frame_rate
    raise ValueError(f"duration unit: expected 'frames' or 'seconds', got {unit!r}")


# --- statistics ---------------------------------------------------------------------------------
def moments(x: Sequence[float]) -> dict[str, float]:
    """Mean, std (ddof=0), skewness and Fisher kurtosis (scipy, ``bias=True``) of the finite values of ``x``.

    NaN where undefined: everything for no value; std for one value; skew and kurtosis for fewer than
    two values or a constant sequence.
    """
    from scipy import stats

    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return dict.fromkeys(STATS, NAN)
    out = {"mean": float(v.mean()), "std": float(v.std()) if v.size > 1 else NAN, "skew": NAN, "kurt": NAN}
    if v.size > 1 and np.ptp(v) > 0:
        out["skew"] = float(stats.skew(v, bias=True))
        out["kurt"] = float(stats.kurtosis(v, fisher=True, bias=True))
    return out


def moment_differences(hyp: Sequence[float], prompt: Sequence[float], prefix: str) -> dict[str, float]:
    """``{f"{prefix}_{stat}_diff": |stat(hyp) - stat(prompt)|}`` for mean, std, skew, kurt (NaN propagates)."""
    mh, mp = moments(hyp), moments(prompt)
    return {f"{prefix}_{k}_diff": float(abs(mh[k] - mp[k])) for k in STATS}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return NAN
    return float(np.corrcoef(a, b)[0, 1])


def sequence_agreement(hyp: Sequence[float], ref: Sequence[float]) -> tuple[float, float]:
    """(Pearson correlation, RMSE) of two equally long sequences over the positions finite in both."""
    a, b = np.asarray(hyp, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"sequence_agreement: expected equal lengths, got {a.size} and {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size == 0:
        return NAN, NAN
    return _pearson(a, b), float(np.sqrt(np.mean((a - b) ** 2)))


def frame_f0_metrics(f0_hyp: np.ndarray, f0_ref: np.ndarray) -> dict[str, float]:
    """Frame-level F0 agreement of equally long ``[T]`` tracks (0 = unvoiced).

    ``f0_rmse_cents`` and ``f0_corr`` over frames voiced in both; ``vuv_f1`` with voiced as positive.
    """
    h, r = np.asarray(f0_hyp, dtype=np.float64), np.asarray(f0_ref, dtype=np.float64)
    if h.shape != r.shape:
        raise ValueError(f"frame_f0_metrics: expected equal lengths, got {h.size} and {r.size}")
    vh, vr = h > 0, r > 0
    both = vh & vr
    tp, fp, fn = int(both.sum()), int((vh & ~vr).sum()), int((~vh & vr).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else NAN
    if not both.any():
        return {"f0_rmse_cents": NAN, "f0_corr": NAN, "vuv_f1": float(f1)}
    cents = 1200.0 * np.log2(h[both] / r[both])
    return {
        "f0_rmse_cents": float(np.sqrt(np.mean(cents**2))),
        "f0_corr": _pearson(h[both], r[both]),
        "vuv_f1": float(f1),
    }


# --- the metric ---------------------------------------------------------------------------------
PROMPT_KEYS = tuple(f"{p}_{s}_diff" for p in ("pitch", "dur") for s in STATS)
GT_KEYS = ("pitch_corr", "pitch_rmse", "dur_corr", "dur_rmse", "f0_rmse_cents", "f0_corr", "vuv_f1")


@register_metric("prosody")
class ProsodyMetric(Metric):
    """Phoneme-level pitch/duration statistics vs the prompt, and agreement with the ground truth.

    Needs ``prompt_wav``, ``hyp_alignment`` and ``prompt_alignment``; the ground-truth keys also need
    ``ref_wav`` and ``ref_alignment`` and are left out without them.
    """

    backbone = "praat"
    keys = PROMPT_KEYS + GT_KEYS
    requires = frozenset({"prompt_wav", "hyp_alignment", "prompt_alignment"})
    needs_reference_audio = True
    higher_is_better = False  # for the *_diff, *_rmse keys; correlations and vuv_f1 are higher-better

    def __init__(
        self,
        *args: Any,
        f0_min: float = 75.0,
        f0_max: float = 600.0,
        pitch_unit: str = "hz",
        duration_unit: str = "frames",
        skip_silence: bool = True,
        max_frame_mismatch: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._require_backbone()
        if pitch_unit not in ("hz", "log"):
            raise ValueError(f"prosody: pitch_unit expected 'hz' or 'log', got {pitch_unit!r}")
        phoneme_durations(Alignment((1,), 1.0), duration_unit)  # validates the unit
        self.f0_min, self.f0_max = f0_min, f0_max
        self.pitch_unit, self.duration_unit = pitch_unit, duration_unit
        self.skip_silence = skip_silence
        self.max_frame_mismatch = max_frame_mismatch

    def analyse(self, wav: Any, sr: int, alignment: Alignment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (frame F0 ``[T]``, phoneme pitch ``[N']``, phoneme durations ``[N']``), N' = speech phonemes."""
        f0 = extract_f0(wav, sr, alignment.frame_rate, alignment.num_frames, self.f0_min, self.f0_max)
        pitch = phoneme_pitch(f0, alignment.durations, log_f0=self.pitch_unit == "log")
        dur = phoneme_durations(alignment, self.duration_unit)
        if self.skip_silence:
            keep = alignment.speech_mask()
            pitch, dur = pitch[keep], dur[keep]
        return f0, pitch, dur

    def _score(
        self,
        hyp_wav: Any,
        sr: int,
        *,
        prompt_wav: Any,
        hyp_alignment: Any,
        prompt_alignment: Any,
        ref_wav: Any = None,
        ref_alignment: Any = None,
        **_: Any,
    ) -> dict[str, float]:
        ha = Alignment.coerce(hyp_alignment, "hyp_alignment")
        pa = Alignment.coerce(prompt_alignment, "prompt_alignment")
        f0_h, pitch_h, dur_h = self.analyse(hyp_wav, sr, ha)
        _, pitch_p, dur_p = self.analyse(prompt_wav, sr, pa)
        out = {**moment_differences(pitch_h, pitch_p, "pitch"), **moment_differences(dur_h, dur_p, "dur")}
        if ref_wav is None or ref_alignment is None:
            return out
        ra = Alignment.coerce(ref_alignment, "ref_alignment")
        f0_r, pitch_r, dur_r = self.analyse(ref_wav, sr, ra)
        if pitch_h.size == pitch_r.size:
            out["pitch_corr"], out["pitch_rmse"] = sequence_agreement(pitch_h, pitch_r)
            out["dur_corr"], out["dur_rmse"] = sequence_agreement(dur_h, dur_r)
        else:
            log.warning(
                "prosody: %d synthesized vs %d ground-truth phonemes; phoneme-level agreement is NaN",
                pitch_h.size,
                pitch_r.size,
            )
            out.update(pitch_corr=NAN, pitch_rmse=NAN, dur_corr=NAN, dur_rmse=NAN)
        if abs(f0_h.size - f0_r.size) <= self.max_frame_mismatch:
            t = min(f0_h.size, f0_r.size)
            out.update(frame_f0_metrics(f0_h[:t], f0_r[:t]))
        else:
            out.update(f0_rmse_cents=NAN, f0_corr=NAN, vuv_f1=NAN)
        return out
