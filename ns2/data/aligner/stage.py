"""Durations for a manifest from a trained aligner: the ``aligner`` source of the durations stage.

:func:`align_manifest` is a plain function over :class:`~ns2.data.manifest.Utterance` records whose
audio is found relative to ``root`` (the manifest's folder). Each returned utterance has
``durations`` (frames per phoneme, summing exactly to ``num_frames``; symbols without acoustics of
their own, i.e. word boundaries ``|``, punctuation, stress/length marks and tones, get 0 frames),
``frame_rate`` and ``num_frames = ceil(samples / hop_length)`` at the aligner's sample rate, and
``extra["align_confidence"]``: the mean soft-attention probability on the chosen path (near 1 when
the aligner is sure; low values flag transcripts that do not match their audio).

Items that cannot be aligned (no phonemes, unknown symbols, unreadable audio, fewer frames than
phonemes, a ``num_frames`` that disagrees with the audio) raise ``ValueError`` naming the utterance,
or, when a ``quarantine`` list is given, are left out and recorded there as
``{"id", "audio", "stage", "reason"}``.
"""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import torch

from ns2.data.aligner.infer import Aligner, load_aligner
from ns2.data.manifest import Utterance

__all__ = ["align_manifest", "align_utterance", "STAGE_NAME"]

STAGE_NAME = "aligner"


def _load_item(aligner: Aligner, utt: Utterance, root: str | os.PathLike) -> tuple[list[int], np.ndarray, int]:
    """(phoneme ids, mono audio [S] at the aligner's rate, frames) for one utterance; ValueError when unusable."""
    from ns2.data.audio import load_audio, resample, to_mono

    if not utt.phonemes:
        raise ValueError("no phonemes (run the phonemes stage first)")
    try:
        ids = aligner.encode(utt.phonemes)
    except ValueError as e:
        raise ValueError(" ".join(str(e).split())) from None
    x, sr = load_audio(utt.audio_path(root))
    wav = to_mono(x)
    rate = aligner.mel.sample_rate
    if sr != rate:
        wav = resample(wav, sr, rate)
    frames = aligner.mel.frames(len(wav))
    if utt.num_frames is not None and utt.frame_rate is not None and math.isclose(utt.frame_rate, aligner.mel.frame_rate) \
            and utt.num_frames != frames:
        raise ValueError(f"num_frames is {utt.num_frames} but the audio has {frames} frames at {utt.frame_rate:g} frames/s")
    skip = set(aligner.skip_ids)
    tokens = sum(i not in skip for i in ids)
    if tokens == 0:
        raise ValueError("no phones or <sil> to align (only boundaries, punctuation or marks)")
    if frames < tokens:
        raise ValueError(f"{frames} frames for {tokens} phonemes: the audio is too short for its text")
    return ids, np.ascontiguousarray(wav, dtype=np.float32), frames


def _result(aligner: Aligner, utt: Utterance, durations: list[int], frames: int, confidence: float) -> Utterance:
    if sum(durations) != frames or len(durations) != len(utt.phonemes or []):
        raise RuntimeError(f"utterance {utt.id!r}: aligner durations do not cover the utterance")
    extra = dict(utt.extra)
    extra["align_confidence"] = round(float(confidence), 4)
    return utt.replace(durations=[int(d) for d in durations], frame_rate=aligner.mel.frame_rate,
                       num_frames=int(frames), extra=extra)


def _align_items(aligner: Aligner, items: list[tuple[list[int], np.ndarray, int]]) -> tuple[list[list[int]], list[float]]:
    B = len(items)
    L = max(len(ids) for ids, _, _ in items)
    S = max(len(w) for _, w, _ in items)
    phonemes = torch.zeros(B, L, dtype=torch.long)
    mask = torch.zeros(B, L, dtype=torch.bool)
    audio = torch.zeros(B, S)
    lengths = torch.zeros(B, dtype=torch.long)
    for b, (ids, wav, _) in enumerate(items):
        phonemes[b, : len(ids)] = torch.tensor(ids)
        mask[b, : len(ids)] = True
        audio[b, : len(wav)] = torch.from_numpy(wav)
        lengths[b] = len(wav)
    res = aligner.align_batch(phonemes, mask, audio, lengths)
    return res.durations, res.confidence


def align_utterance(aligner: Aligner, utt: Utterance, root: str | os.PathLike) -> Utterance:
    """One utterance with aligner durations (see :func:`align_manifest`); ValueError when it cannot be aligned."""
    try:
        item = _load_item(aligner, utt, root)
    except ValueError as e:
        raise ValueError(f"utterance {utt.id!r}: {e}") from None
    durations, confidence = _align_items(aligner, [item])
    return _result(aligner, utt, durations[0], item[2], confidence[0])


def align_manifest(checkpoint_or_module: Any, utts: Sequence[Utterance], root: str | os.PathLike, *,
                   device: str | torch.device = "cpu", batch_size: int = 16, max_batch_seconds: float = 400.0,
                   quarantine: list[dict] | None = None, symbols: Any = "default",
                   skip_tokens: Sequence[str] | None = None) -> list[Utterance]:
    """Align every utterance; return them (in input order, failures left out when ``quarantine`` is given).

    checkpoint_or_module: an aligner checkpoint path (:func:`~ns2.data.aligner.infer.save_aligner` or a
    Lightning checkpoint of ``AlignerLit``), an ``Aligner``, an ``AlignerLit`` or an ``AlignerModel``
    (``symbols``/``skip_tokens`` apply to a bare model). Utterances are batched by length, at most
    ``batch_size`` items and ``max_batch_seconds`` of audio per batch.
    """
    aligner = load_aligner(checkpoint_or_module, device=device, symbols=symbols, skip_tokens=skip_tokens)
    results: dict[int, Utterance] = {}

    def fail(i: int, reason: str) -> None:
        utt = utts[i]
        if quarantine is None:
            raise ValueError(f"utterance {utt.id!r}: {reason}")
        quarantine.append({"id": utt.id, "audio": utt.audio, "stage": STAGE_NAME, "reason": reason})

    order = sorted(range(len(utts)), key=lambda i: utts[i].duration)
    start = 0
    while start < len(order):
        group, seconds = [], 0.0
        while start < len(order) and len(group) < max(batch_size, 1) and (not group or seconds + utts[order[start]].duration <= max_batch_seconds):
            group.append(order[start])
            seconds += utts[order[start]].duration
            start += 1
        loaded: list[tuple[int, tuple[list[int], np.ndarray, int]]] = []
        for i in group:
            try:
                loaded.append((i, _load_item(aligner, utts[i], root)))
            except Exception as e:  # noqa: BLE001 - one bad item never stops the manifest
                fail(i, " ".join(f"{type(e).__name__}: {e}".split()) if not isinstance(e, ValueError) else " ".join(str(e).split()))
        if not loaded:
            continue
        try:
            durations, confidence = _align_items(aligner, [item for _, item in loaded])
            for (i, item), d, c in zip(loaded, durations, confidence):
                results[i] = _result(aligner, utts[i], d, item[2], c)
        except Exception:  # noqa: BLE001 - find the item that broke the batch
            for i, item in loaded:
                try:
                    d, c = _align_items(aligner, [item])
                    results[i] = _result(aligner, utts[i], d[0], item[2], c[0])
                except Exception as e:  # noqa: BLE001
                    fail(i, " ".join(f"{type(e).__name__}: {e}".split()))
    return [results[i] for i in range(len(utts)) if i in results]
