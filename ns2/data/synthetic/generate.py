"""Generate the synthetic corpus: a LibriTTS-like tree of wavs and texts plus ``raw.jsonl``.

Layout under ``root``::

    <split>/<speaker>/<chapter>/<speaker>_<chapter>_<nnnnnn>.wav   16-bit PCM, 22050 Hz, mono
    <split>/<speaker>/<chapter>/<speaker>_<chapter>_<nnnnnn>.original.txt     the sentence
    <split>/<speaker>/<chapter>/<speaker>_<chapter>_<nnnnnn>.normalized.txt   what was spoken
    raw.jsonl               the manifest (audio paths relative to root)
    synthetic.json          generation parameters, speakers, summary
    synthetic.journal.jsonl records of finished items while a generation is under way

Speech comes from one of two engines (``engine``): espeak-ng (:mod:`.espeak_synth`, exact phoneme
events) or Flite (:mod:`.flite_synth`, voices reshaped per speaker by Praat's "Change gender", its
segment times mapped onto the front end's phones by :mod:`.flite_alignment`). Flite's speech is what
an offline recogniser reads (PocketSphinx WER ~0.3 with its general LM, ~0.03 with the corpus's
domain LM, against ~0.9 on espeak-ng), so the corpus's WER column can tell systems apart.

Speech is chapter ``1``, singing chapter ``2``. Training speakers (ids ``1000+``) give
``train`` and a few ``valid`` items; held-out speakers (ids ``9000+``, voices never used for
training) only ``test`` items. Everything follows from ``seed``: the same seed and size give a
byte-identical manifest and identical audio (each item depends only on its own parameters, so
the number of workers does not matter). A run that stops part-way is completed by the next one
(finished items are journaled; each wav is written atomically), and a finished corpus with the
same parameters is returned at once (missing wavs, if any, are regenerated).
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import random
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ns2.data.manifest import Utterance, read_manifest, summarize, write_manifest
from ns2.data.synthetic.sentences import SentenceGenerator
from ns2.data.synthetic.speakers import ACCENTS, FliteSpeaker, Speaker, make_flite_speakers, make_speakers
from ns2.utils.io import atomic_open, read_jsonl, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SAMPLE_RATE = 22050
SPEECH_CHAPTER = "1"
SINGING_CHAPTER = "2"
PARAMS_FILE = "synthetic.json"
JOURNAL_FILE = "synthetic.journal.jsonl"
MANIFEST_FILE = "raw.jsonl"

#: Corpus sizes. Add an entry (or pass overrides) for another size; every key is required.
SIZES: dict[str, dict[str, Any]] = {
    "mini": {
        "train_speakers": 6, "test_speakers": 2,
        "utterances_per_speaker": 6,       # per training speaker, valid ones included
        "valid_per_speaker": 1,
        "test_utterances_per_speaker": 6,
        "singing_train": 4, "singing_valid": 1, "singing_test": 1,
        "accents": list(ACCENTS), "formant_shift_prob": 0.5, "singing_rate_scale": 0.8,
        "engine": "espeak",
    },
    "small": {
        "train_speakers": 24, "test_speakers": 6,
        "utterances_per_speaker": 32,
        "valid_per_speaker": 2,
        "test_utterances_per_speaker": 20,
        "singing_train": 84, "singing_valid": 6, "singing_test": 10,
        "accents": list(ACCENTS), "formant_shift_prob": 0.5, "singing_rate_scale": 0.8,
        "engine": "flite",
    },
}
#: The espeak-ng version of ``small`` (what ``small`` was before the Flite voices; the earlier studies
#: in experiments/ were trained on it).
SIZES["small_espeak"] = dict(SIZES["small"], engine="espeak")
#: Synthesizers: ``espeak`` (espeak-ng voices x variants, exact phoneme events; ``accents`` and
#: ``formant_shift_prob`` apply) or ``flite`` (Flite voices reshaped by Praat, far more intelligible
#: to an offline recogniser; see :func:`make_flite_speakers`).
ENGINES = ("espeak", "flite")

#: espeak voice language -> text front-end language code (espeak calls British English "en").
FRONTEND_LANGUAGE = {"en": "en-gb"}


class SyntheticError(RuntimeError):
    """The synthetic corpus cannot be generated here (one line saying why and what to do)."""


@dataclass(frozen=True)
class Job:
    """One item to generate."""

    id: str
    kind: str
    split: str
    speaker: Speaker | FliteSpeaker
    text: str
    chapter: str
    rel: str          # wav path relative to root
    seed: int
    rate_scale: float = 1.0


def language_of(speaker: Speaker | FliteSpeaker) -> str:
    return FRONTEND_LANGUAGE.get(speaker.accent, speaker.accent)


# ------------------------------------------------------------------------------- planning
def _plain(value: Any) -> Any:
    """Lists (also OmegaConf's) as plain lists of plain values, for JSON and comparisons."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if hasattr(value, "__iter__") and not isinstance(value, dict):
        return [_plain(v) for v in value]
    return value


def resolve_params(size: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    if size not in SIZES:
        raise SyntheticError(f"unknown synthetic corpus size {size!r}; expected one of {sorted(SIZES)} "
                             "(or add an entry to ns2.data.synthetic.SIZES)")
    params = {k: _plain(v) for k, v in SIZES[size].items()}
    for key, value in (overrides or {}).items():
        if key not in params:
            raise SyntheticError(f"unknown synthetic corpus parameter {key!r}; expected one of {sorted(params)}")
        params[key] = _plain(value)
    if params["engine"] not in ENGINES:
        raise SyntheticError(f"synthetic corpus: unknown engine {params['engine']!r}; expected one of {ENGINES}")
    if params["valid_per_speaker"] >= params["utterances_per_speaker"]:
        raise SyntheticError("synthetic corpus: valid_per_speaker must be smaller than utterances_per_speaker")
    return params


def plan(params: dict[str, Any], seed: int) -> tuple[list[Speaker], list[Job]]:
    """Speakers and the ordered list of items; a pure function of ``params`` and ``seed``."""
    if params["engine"] == "flite":
        speakers = make_flite_speakers(params["train_speakers"], params["test_speakers"], seed)
    else:
        speakers = make_speakers(params["train_speakers"], params["test_speakers"], seed, params["accents"],
                                 params["formant_shift_prob"])
    train = [s for s in speakers if not s.held_out]
    test = [s for s in speakers if s.held_out]
    sentences = SentenceGenerator(seed)
    lyrics = SentenceGenerator(seed + 7919)
    seen: set[str] = set()

    def fresh(gen: SentenceGenerator, lyric: bool) -> str:
        for _ in range(1000):
            s = gen.lyric() if lyric else gen.sentence()
            if s not in seen:
                seen.add(s)
                return s
        raise SyntheticError("the sentence generator keeps repeating itself; lower the corpus size")

    jobs: list[Job] = []
    counters: dict[tuple[str, str], int] = {}

    def add(kind: str, split: str, spk: Speaker, text: str, rate_scale: float = 1.0) -> None:
        chapter = SPEECH_CHAPTER if kind == "speech" else SINGING_CHAPTER
        n = counters.get((spk.id, chapter), 0)
        counters[(spk.id, chapter)] = n + 1
        uid = f"{spk.id}_{chapter}_{n:06d}"
        rel = f"{split}/{spk.id}/{chapter}/{uid}.wav"
        jobs.append(Job(uid, kind, split, spk, text, chapter, rel, seed, rate_scale))

    for spk in train:
        for k in range(params["utterances_per_speaker"]):
            split = "valid" if k >= params["utterances_per_speaker"] - params["valid_per_speaker"] else "train"
            add("speech", split, spk, fresh(sentences, False))
    for spk in test:
        for _ in range(params["test_utterances_per_speaker"]):
            add("speech", "test", spk, fresh(sentences, False))
    scale = params["singing_rate_scale"]
    for split, count, pool in (("train", params["singing_train"], train), ("valid", params["singing_valid"], train),
                               ("test", params["singing_test"], test)):
        if count and not pool:
            raise SyntheticError(f"synthetic corpus: {count} {split} singing items need at least one "
                                 f"{'held-out' if split == 'test' else 'training'} speaker")
        for k in range(count):
            add("singing", split, pool[(k * 5 + (split == "valid")) % len(pool)], fresh(lyrics, True), scale)
    return speakers, jobs


# ------------------------------------------------------------------------------- one item
_FRONTENDS: dict[str, Any] = {}


def _reference(text: str, language: str) -> list[list[str]] | None:
    """The text front end's symbols per word of ``text`` (already normalised), or None."""
    from ns2.text import Phonemizer

    if language not in _FRONTENDS:
        _FRONTENDS[language] = Phonemizer(language, normalize_text=False)
    quiet = logging.getLogger("phonemizer")  # "words count mismatch" on joined words is expected
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        words = _FRONTENDS[language].phonemize(text)
    finally:
        quiet.setLevel(level)
    return [list(w.phonemes) for w in words if not w.is_punctuation]


def _to_int16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(y, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def _formant_shift(audio: np.ndarray, sample_rate: int, ratio: float, seed: int, f0: float = 0.0,
                   pitch_range: float = 1.0) -> np.ndarray:
    """Praat "Change gender": formants x ``ratio``, median F0 set to ``f0`` Hz (0: unchanged),
    pitch excursions x ``pitch_range``; duration unchanged, same length. ``audio``: int16."""
    import parselmouth
    from parselmouth.praat import call

    from ns2.data.synthetic.singing import seed_praat

    seed_praat(seed)
    snd = parselmouth.Sound(audio.astype(np.float64) / 32768.0, float(sample_rate))
    out = call(snd, "Change gender", 60.0, 600.0, float(ratio), float(f0), float(pitch_range), 1.0)
    y = np.asarray(out.values[0], dtype=np.float64)
    n = audio.shape[0]
    y = y[:n] if y.size >= n else np.pad(y, (0, n - y.size))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.98:
        y *= 0.98 / peak
    return _to_int16(y)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    with atomic_open(path, "wb") as f:
        sf.write(f, audio, sample_rate, format="WAV", subtype="PCM_16")


def _write_texts(root: Path, job: Job, normalized: str) -> None:
    base = root / job.rel[: -len(".wav")]
    for suffix, content in ((".original.txt", job.text), (".normalized.txt", normalized)):
        with atomic_open(base.with_name(base.name + suffix), "w", encoding="utf-8") as f:
            f.write(content + "\n")


def _restore_texts(root: Path, utt: Utterance) -> None:
    base = utt.audio_path(root).with_suffix("")
    for suffix, content in ((".original.txt", utt.text), (".normalized.txt", utt.extra.get("normalized_text", utt.text))):
        path = base.with_name(base.name + suffix)
        if not path.exists():
            with atomic_open(path, "w", encoding="utf-8") as f:
                f.write(content + "\n")


def run_job(job: Job, root: str | os.PathLike) -> dict[str, Any]:
    """Synthesize, align, (sing,) write one item; returns its manifest record."""
    from ns2.data.synthetic.alignment import align_events
    from ns2.data.synthetic.espeak_synth import get_espeak
    from ns2.text import DEFAULT_SYMBOLS, normalize

    root = Path(root)
    spk = job.speaker
    language = language_of(spk)
    normalized = normalize(job.text, language)
    context = f"item {job.id}, voice {spk.voice}"
    item_seed = zlib.crc32(f"{job.seed}-{job.id}".encode())
    if isinstance(spk, FliteSpeaker):
        audio, aligned = _speak_flite(job, normalized, language, context, item_seed)
    else:
        out = get_espeak().synthesize(normalized, spk.settings(job.rate_scale))
        if out.sample_rate != SAMPLE_RATE:
            raise SyntheticError(f"espeak-ng runs at {out.sample_rate} Hz; the synthetic corpus expects {SAMPLE_RATE}")
        aligned = align_events(out.events, out.audio, out.sample_rate, normalized, DEFAULT_SYMBOLS,
                               reference=_reference(normalized, language), context=context)
        audio = out.audio
        if spk.formant_shift != 1.0:
            audio = _formant_shift(audio, out.sample_rate, spk.formant_shift, item_seed)
    phonemes, word_index, times, score = aligned.phonemes, aligned.word_index, aligned.times, None
    extra: dict[str, Any] = {"voice": spk.voice, "formant_shift": spk.formant_shift, "normalized_text": normalized}
    if job.kind == "singing":
        from ns2.data.synthetic.singing import sing

        rng = random.Random(f"singing-{job.seed}-{job.id}")
        item = sing(audio.astype(np.float64) / 32768.0, SAMPLE_RATE, phonemes, word_index, times,
                    aligned.words, rng)
        audio, times, score = _to_int16(item.audio), item.phoneme_times, item.score
        extra.update(item.info)
    _write_wav(root / job.rel, audio, SAMPLE_RATE)
    _write_texts(root, job, normalized)
    utt = Utterance(
        id=job.id, audio=job.rel, sample_rate=SAMPLE_RATE, duration=len(audio) / SAMPLE_RATE,
        speaker=spk.id, text=job.text, kind=job.kind, split=job.split, language=language,
        phonemes=phonemes, word_index=word_index, phoneme_times=times, score=score, extra=extra,
    ).validate()
    return utt.to_dict()


def _speak_flite(job: Job, normalized: str, language: str, context: str, seed: int):
    """Flite speech of ``normalized`` in ``job.speaker``'s voice at :data:`SAMPLE_RATE` (int16) and
    its ground truth (:class:`~ns2.data.synthetic.alignment.Aligned`)."""
    from ns2.data.audio import resample
    from ns2.data.synthetic.alignment import align_events
    from ns2.data.synthetic.flite_alignment import flite_events
    from ns2.data.synthetic.flite_synth import get_flite
    from ns2.text import DEFAULT_SYMBOLS

    spk = job.speaker
    out = get_flite().synthesize(normalized, spk.base, spk.duration_stretch / job.rate_scale, seed=seed)
    reference = _reference(normalized, language)
    events = flite_events(out.segments, normalized, reference, out.sample_rate, context)
    aligned = align_events(events, out.audio, out.sample_rate, normalized, DEFAULT_SYMBOLS, reference=reference,
                           context=context, pause_rms=None)
    audio = _formant_shift(out.audio, out.sample_rate, spk.formant_shift, seed, spk.f0, spk.pitch_range)
    audio = _to_int16(resample(audio.astype(np.float32) / 32768.0, out.sample_rate, SAMPLE_RATE))
    aligned.times[-1][1] = len(audio) / SAMPLE_RATE
    return audio, aligned


def _run_chunk(jobs: list[Job], root: str) -> list[dict[str, Any]]:
    return [run_job(job, root) for job in jobs]


# ------------------------------------------------------------------------------- corpus
def _identity(size: str, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "size": size, "seed": int(seed), "params": params}


def _clear(root: Path) -> None:
    for name in (MANIFEST_FILE, JOURNAL_FILE, PARAMS_FILE):
        (root / name).unlink(missing_ok=True)
    for split in ("train", "valid", "test"):
        if (root / split).is_dir():
            shutil.rmtree(root / split)


def generate_corpus(root: str | os.PathLike, size: str = "mini", seed: int = 0, num_workers: int = 1,
                    overwrite: bool = False, **overrides: Any) -> Path:
    """Generate (or complete) the synthetic corpus under ``root``; returns ``<root>/raw.jsonl``.

    ``size``: a key of :data:`SIZES`; ``overrides``: replace some of its parameters. A corpus
    generated with other parameters in ``root`` is an error unless ``overwrite`` (which deletes
    its tree first).
    """
    t0 = time.time()
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    params = resolve_params(size, overrides)
    identity = _identity(size, seed, params)
    params_path, manifest_path, journal_path = root / PARAMS_FILE, root / MANIFEST_FILE, root / JOURNAL_FILE
    if params_path.exists():
        try:
            stored = json.loads(params_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            stored = {}
        if {k: stored.get(k) for k in identity} != identity:
            if not overwrite:
                raise SyntheticError(
                    f"{root} holds a synthetic corpus generated with other parameters "
                    f"(size {stored.get('size')!r}, seed {stored.get('seed')!r}); use another root or overwrite=True")
            _clear(root)
    elif manifest_path.exists() and not overwrite:
        raise SyntheticError(f"{manifest_path} exists but {params_path} does not: {root} is not a synthetic corpus "
                             "folder; use another root or overwrite=True")
    elif overwrite:
        _clear(root)

    records: dict[str, dict[str, Any]] = {}
    if manifest_path.exists():
        utts = read_manifest(manifest_path)
        if all(u.audio_path(root).is_file() for u in utts):  # finished: restore lost texts, done
            for u in utts:
                _restore_texts(root, u)
            return manifest_path
        records.update({u.id: u.to_dict() for u in utts})
    records.update({r["id"]: r for r in read_jsonl(journal_path) if isinstance(r, dict) and "id" in r})
    speakers, jobs = plan(params, seed)
    todo = [j for j in jobs if j.id not in records or not (root / j.rel).is_file()]

    write_json(params_path, identity | {"speakers": [s.to_dict() for s in speakers], "complete": False})
    manifest_path.unlink(missing_ok=True)  # rewritten below, once every item is there
    log.info("synthetic corpus %s: generating %d of %d items with %d worker(s)", root, len(todo), len(jobs), num_workers)
    with open(journal_path, "a", encoding="utf-8") as journal:
        def keep(rec: dict[str, Any]) -> None:
            records[rec["id"]] = rec
            journal.write(json.dumps(rec, ensure_ascii=False) + "\n")
            journal.flush()

        if num_workers <= 1 or len(todo) < 2:
            for job in todo:
                keep(run_job(job, root))
        else:
            chunk = max(1, min(16, len(todo) // (num_workers * 4)))
            chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
            ctx = multiprocessing.get_context("spawn")
            pool = cf.ProcessPoolExecutor(max_workers=num_workers, mp_context=ctx)
            try:
                futures = [pool.submit(_run_chunk, c, str(root)) for c in chunks]
                for fut in cf.as_completed(futures):
                    for rec in fut.result():
                        keep(rec)
            finally:  # on an error, finished items stay journaled and pending ones are dropped
                pool.shutdown(wait=True, cancel_futures=True)

    utts = [Utterance.from_dict(records[j.id]) for j in jobs]
    write_manifest(manifest_path, utts)
    journal_path.unlink(missing_ok=True)
    summary = summarize(utts)
    write_json(params_path, identity | {"speakers": [s.to_dict() for s in speakers], "complete": True,
                                        "summary": summary})
    log.info("synthetic corpus %s: %d items, %.3f h in %.1f s", root, len(utts), summary["hours"], time.time() - t0)
    return manifest_path


class SyntheticCorpus:
    """The synthetic corpus for the ``data.corpus`` node of the Hydra configs.

    ``SyntheticCorpus(size="mini", seed=0).build(root, num_workers) -> <root>/raw.jsonl``; extra
    keyword arguments override entries of :data:`SIZES` (``utterances_per_speaker=10``).
    """

    def __init__(self, size: str = "mini", seed: int = 0, root: str | os.PathLike | None = None,
                 overwrite: bool = False, **overrides: Any):
        self.size = size
        self.seed = int(seed)
        self.root = Path(root) if root is not None else None
        self.overwrite = bool(overwrite)
        self.overrides = dict(overrides)
        resolve_params(size, self.overrides)  # fail early on a bad size or key

    def __repr__(self) -> str:
        return f"SyntheticCorpus(size={self.size!r}, seed={self.seed})"

    def build(self, root: str | os.PathLike | None = None, num_workers: int = 1) -> Path:
        root = Path(root) if root is not None else self.root
        if root is None:
            raise SyntheticError("SyntheticCorpus.build needs a root folder (none given here or at construction)")
        return generate_corpus(root, self.size, self.seed, num_workers, self.overwrite, **self.overrides)
