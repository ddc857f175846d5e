"""Build test lists from corpus manifests, seeded: the NS2, VALL-E and synthetic protocols.

Every builder takes manifest :class:`~ns2.data.manifest.Utterance` records and returns
:class:`~ns2.eval.protocol.ProtocolItem` lists whose audio paths are the manifest's own (relative to
the manifest's folder, the list's audio root). Randomness comes from one ``numpy`` generator per
decision, derived from ``seed`` and the names involved, so a list does not change when an unrelated
speaker is added, and the 3 s / 5 s / 10 s lists of one protocol share their targets.

Prompts (``cross_sentence``): a crop of ``prompt_seconds`` from a *different* utterance of the same
speaker, chosen at random among the speaker's other utterances at least that long (the longest other
one, uncropped, when none is; ``extra.prompt_short`` marks it). Crop boundaries lie on the manifest's
frame grid (``frame_rate``; 100 frames/s when unknown) so the prompt's phoneme durations can be cropped
exactly. ``prompt_text`` is the words lying wholly inside the crop when the manifest has phoneme
timings, else null (``extra.prompt_source_text`` keeps the source's full transcript).

Items are ordered round-robin over speakers (the first item of every speaker, then the second ...),
so the first N items of a list span the speakers.
"""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

from ns2.data.manifest import Utterance
from ns2.eval.protocol import ProtocolItem

__all__ = [
    "build_ns2",
    "build_singing",
    "build_synthetic",
    "build_valle",
    "crop_words",
    "make_prompt",
    "rng_for",
]

log = logging.getLogger(__name__)
DEFAULT_FRAME_RATE = 100.0


def rng_for(seed: int, *names: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and ``names`` (stable across runs and Python versions)."""
    h = hashlib.sha256(repr((int(seed),) + tuple(str(n) for n in names)).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def _frame_rate(u: Utterance) -> float:
    return float(u.frame_rate) if u.frame_rate else DEFAULT_FRAME_RATE


def _word_spans(u: Utterance) -> tuple[list[str], dict[int, tuple[float, float]]] | None:
    """(words, {word index: (start s, end s)}) from phoneme times (or durations), None without them."""
    if u.phonemes is None or u.word_index is None:
        return None
    if u.phoneme_times is not None:
        times = [tuple(t) for t in u.phoneme_times]
    elif u.durations is not None and u.frame_rate:
        edges = np.concatenate([[0], np.cumsum(u.durations)]) / float(u.frame_rate)
        times = list(zip(edges[:-1], edges[1:]))
    else:
        return None
    normalized = u.extra.get("normalized_text") if isinstance(u.extra, dict) else None
    if not normalized:
        try:
            from ns2.text import normalize

            normalized = normalize(u.text, u.language)
        except Exception:  # noqa: BLE001  (a language the front end lacks: no prompt text)
            return None
    words = normalized.split()
    spans: dict[int, tuple[float, float]] = {}
    for w, (a, b) in zip(u.word_index, times):
        if w < 0:
            continue
        lo, hi = spans.get(w, (a, b))
        spans[w] = (min(lo, a), max(hi, b))
    if spans and max(spans) >= len(words):
        return None
    return words, spans


def crop_words(u: Utterance, start: float, end: float, tol: float = 1e-6) -> str | None:
    """The words of ``u`` lying wholly inside ``[start, end]`` seconds, None without word timings."""
    ws = _word_spans(u)
    if ws is None:
        return None
    words, spans = ws
    inside = [words[w] for w in sorted(spans) if spans[w][0] >= start - tol and spans[w][1] <= end + tol]
    return " ".join(inside) or None


def make_prompt(
    source: Utterance, prompt_seconds: float | None, rng: np.random.Generator, *, at_start: bool = False
) -> dict:
    """Crop fields for a prompt of ``prompt_seconds`` from ``source`` (random position, or its start).

    Returns ``prompt_start``, ``prompt_end`` (None when the whole file is used), ``prompt_text`` and
    the ``extra`` entries (``prompt_seconds`` nominal, ``prompt_actual_seconds``, ``prompt_short``).
    """
    fr = _frame_rate(source)
    total = int(source.num_frames) if source.num_frames else int(np.floor(source.duration * fr + 1e-9))
    extra: dict = {"prompt_seconds": prompt_seconds}
    if prompt_seconds is None or total <= int(round(prompt_seconds * fr)):
        start = end = None
        actual = source.duration
        extra["prompt_short"] = prompt_seconds is not None and source.duration + 1e-6 < prompt_seconds
        text = source.text
    else:
        length = int(round(prompt_seconds * fr))
        first = 0 if at_start else int(rng.integers(0, total - length + 1))
        start, end = first / fr, (first + length) / fr
        actual = end - start
        text = crop_words(source, start, end)
        extra["prompt_short"] = False
    extra["prompt_actual_seconds"] = round(float(actual), 6)
    if start is not None:
        extra["prompt_source_text"] = source.text
    return {"prompt_start": start, "prompt_end": end, "prompt_text": text, "extra": extra}


def _by_speaker(utts: Iterable[Utterance]) -> dict[str, list[Utterance]]:
    groups: dict[str, list[Utterance]] = defaultdict(list)
    for u in utts:
        groups[u.speaker].append(u)
    return {s: sorted(g, key=lambda u: u.id) for s, g in sorted(groups.items())}


def _round_robin(per_speaker: dict[str, list[ProtocolItem]]) -> list[ProtocolItem]:
    out: list[ProtocolItem] = []
    lists = [v for _, v in sorted(per_speaker.items())]
    for i in range(max((len(v) for v in lists), default=0)):
        out.extend(v[i] for v in lists if i < len(v))
    return out


def _cross_item(
    target: Utterance, others: Sequence[Utterance], prompt_seconds: float | None, seed: int, with_gt: bool = True
) -> ProtocolItem:
    """A cross-sentence item: ``target``'s text, a prompt cropped from one of ``others``."""
    if not others:
        raise ValueError(f"speaker {target.speaker!r}: no other utterance to take a prompt from for {target.id!r}")
    rng = rng_for(seed, "prompt", target.id, prompt_seconds)
    long_enough = [u for u in others if prompt_seconds is None or u.duration + 1e-6 >= prompt_seconds]
    source = long_enough[int(rng.integers(len(long_enough)))] if long_enough else max(others, key=lambda u: (u.duration, u.id))
    crop = make_prompt(source, prompt_seconds, rng)
    return ProtocolItem(
        id=target.id, text=target.text, prompt_wav=source.audio, speaker=target.speaker,
        prompt_text=crop["prompt_text"], prompt_start=crop["prompt_start"], prompt_end=crop["prompt_end"],
        gt_wav=target.audio if with_gt else None, language=target.language, mode="cross_sentence",
        prompt_id=source.id, gt_id=target.id if with_gt else None, extra=crop["extra"],
    )


def _speech(utts: Iterable[Utterance], split: str | None) -> list[Utterance]:
    return [u for u in utts if u.kind == "speech" and (split is None or u.split == split) and u.text.strip()]


def build_ns2(
    utts: Iterable[Utterance],
    *,
    n_speakers: int,
    per_speaker: int,
    prompt_seconds: Sequence[float] = (3.0, 5.0, 10.0),
    seed: int = 0,
    split: str | None = "test",
    min_seconds: float = 0.0,
    max_seconds: float | None = None,
) -> dict[float, list[ProtocolItem]]:
    """The NaturalSpeech 2 protocol: ``n_speakers`` x ``per_speaker`` targets, one list per prompt length.

    LibriSpeech test-clean: ``n_speakers=40, per_speaker=15`` (600 items); VCTK: ``108, 5`` (540),
    ``split=None`` (every VCTK speaker is unseen by a model trained on LibriTTS or MLS). Speakers need at
    ``per_speaker`` targets in range and one more utterance (each prompt comes from another utterance
    of the speaker, possibly another target); speakers and targets are drawn at random (seeded). Targets are limited to
    ``[min_seconds, max_seconds]``. Returns ``{prompt seconds: items}``.
    """
    speech = _speech(utts, split)
    groups = _by_speaker(speech)
    eligible = []
    for spk, g in groups.items():
        targets = [u for u in g if u.duration >= min_seconds and (max_seconds is None or u.duration <= max_seconds)]
        if len(targets) >= per_speaker and len(g) >= 2:
            eligible.append(spk)
    if len(eligible) < n_speakers:
        log.warning("ns2 protocol: %d speakers eligible (%d asked); using all of them", len(eligible), n_speakers)
    rng = rng_for(seed, "speakers")
    chosen = sorted(eligible) if len(eligible) <= n_speakers else sorted(rng.choice(eligible, n_speakers, replace=False).tolist())
    out: dict[float, list[ProtocolItem]] = {}
    picks: dict[str, list[Utterance]] = {}
    for spk in chosen:
        g = groups[spk]
        pool = [u for u in g if u.duration >= min_seconds and (max_seconds is None or u.duration <= max_seconds)]
        idx = rng_for(seed, "targets", spk).choice(len(pool), per_speaker, replace=False)
        picks[spk] = sorted((pool[i] for i in idx), key=lambda u: u.id)
    for secs in prompt_seconds:
        per: dict[str, list[ProtocolItem]] = {}
        for spk, targets in picks.items():
            per[spk] = [_cross_item(t, [u for u in groups[spk] if u.id != t.id], float(secs), seed) for t in targets]
        out[float(secs)] = _round_robin(per)
    return out


def build_valle(
    utts: Iterable[Utterance],
    *,
    prompt_seconds: float = 3.0,
    min_seconds: float = 4.0,
    max_seconds: float = 10.0,
    seed: int = 0,
    split: str | None = "test",
) -> dict[str, list[ProtocolItem]]:
    """The VALL-E protocol: every utterance of ``[min_seconds, max_seconds]`` is a target.

    ``cross_sentence``: a ``prompt_seconds`` crop of another utterance of the same speaker.
    ``continuation``: the first ``prompt_seconds`` of the target itself (``mode="continuation"``;
    ``text`` is the whole utterance's transcript, ``prompt_text`` the words inside the prompt when
    timings are known). Returns ``{"cross_sentence": items, "continuation": items}``.
    """
    speech = _speech(utts, split)
    groups = _by_speaker(speech)
    cross: dict[str, list[ProtocolItem]] = {}
    cont: dict[str, list[ProtocolItem]] = {}
    for spk, g in groups.items():
        targets = [u for u in g if min_seconds <= u.duration <= max_seconds]
        if len(g) >= 2:
            cross[spk] = [_cross_item(t, [u for u in g if u.id != t.id], prompt_seconds, seed) for t in targets]
        items = []
        for t in targets:
            crop = make_prompt(t, prompt_seconds, rng_for(seed, "continuation", t.id), at_start=True)
            items.append(
                ProtocolItem(
                    id=t.id, text=t.text, prompt_wav=t.audio, speaker=spk, prompt_text=crop["prompt_text"],
                    prompt_start=crop["prompt_start"], prompt_end=crop["prompt_end"], gt_wav=t.audio,
                    language=t.language, mode="continuation", prompt_id=t.id, gt_id=t.id, extra=crop["extra"],
                )
            )
        cont[spk] = items
    return {"cross_sentence": _round_robin(cross), "continuation": _round_robin(cont)}


def build_synthetic(
    utts: Iterable[Utterance], *, prompt_seconds: float = 3.0, seed: int = 0, split: str = "test"
) -> list[ProtocolItem]:
    """The synthetic corpus's held-out speakers: every speech utterance of ``split`` is a target, with
    a ``prompt_seconds`` crop of another utterance of its speaker as the prompt."""
    groups = _by_speaker(_speech(utts, split))
    per = {
        spk: [_cross_item(t, [u for u in g if u.id != t.id], prompt_seconds, seed) for t in g]
        for spk, g in groups.items()
        if len(g) >= 2
    }
    return _round_robin(per)


def build_singing(
    utts: Iterable[Utterance], *, prompt_seconds: float = 3.0, seed: int = 0, split: str = "test"
) -> dict[str, list[ProtocolItem]]:
    """Singing targets of ``split`` (items with ``kind == "singing"`` and a score), in two lists:
    ``speech`` (the prompt a ``prompt_seconds`` crop of the speaker's speech, the paper's zero-shot
    singing) and ``singing`` (a crop of another sung item of the speaker; targets whose speaker sings
    only once are left out of this list). Each item carries its score in ``extra.score`` and the score's
    phonemes and frame durations in ``extra.score_phonemes`` / ``score_durations`` / ``score_frame_rate``
    (the synthetic corpus sings exactly these durations), what a system sings from
    (:func:`ns2.eval.inputs.synthesis_score`)."""
    utts = list(utts)
    sung = [u for u in utts if u.kind == "singing" and u.split == split and u.score and u.text.strip()]
    speech = _by_speaker(_speech(utts, split))
    singing = _by_speaker(sung)
    out: dict[str, list[ProtocolItem]] = {}
    for prompt_kind, pools in (("speech", speech), ("singing", singing)):
        per: dict[str, list[ProtocolItem]] = {}
        for spk, targets in singing.items():
            for t in targets:
                others = [u for u in pools.get(spk, []) if u.id != t.id]
                if not others:
                    continue
                item = _cross_item(t, others, prompt_seconds, seed)
                item.extra.update(score=t.score, target_kind="singing", prompt_kind=prompt_kind,
                                  score_phonemes=list(t.phonemes), score_durations=[int(d) for d in t.durations],
                                  score_frame_rate=float(t.frame_rate))
                per.setdefault(spk, []).append(item)
        out[prompt_kind] = _round_robin(per)
    return out
