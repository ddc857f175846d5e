"""The training dataset over a prepared manifest, and its collate function.

An item (``dataset[i]`` or ``dataset[(i, epoch)]``) is a dict:

* ``id``, ``speaker`` (str), ``index`` (int);
* ``num_frames`` ``T`` (after cropping) and ``frame_offset`` (first frame of the crop);
* ``prompt_start``, ``prompt_end``: the prompt span ``[start, end)`` in frames;
* field ``phonemes``: ``phonemes [L]`` long symbol ids;
* field ``durations``: ``durations [L]`` long frames per phoneme, summing to ``T``;
* field ``f0``: ``f0 [T]`` float Hz (0 = unvoiced), ``log_f0 [T]`` float (interpolated through
  unvoiced frames), ``voiced [T]`` bool;
* field ``audio``: ``audio [T * hop]`` float mono waveform, zero-padded to whole frames;
* field ``codes``: ``codes [n_q, T]`` long codec codes (``features["codes"]``, an ``.npy``);
* field ``notes`` (score conditioning): ``note_pitch [L]`` float, the written pitch (MIDI) of the note
  each phoneme is sung on, 0 for none (rests, phonemes outside every note, items without a score:
  speech), and ``note_start [L]`` bool, the phoneme starts a note (:func:`note_inputs`, from the
  manifest's ``score``, whose notes index ``phonemes``).

Randomness (crop position, prompt span) comes from an RNG seeded by ``(seed, epoch, index)``: the same
item of the same epoch is identical in any worker, and differs between epochs. The epoch is taken
from the key when the sampler sends ``(index, epoch)`` (``FrameBucketSampler(with_epoch=True)``),
otherwise from :meth:`TTSDataset.set_epoch`.

Prompt: a span of ``frac * T`` frames, ``frac ~ U(min_frac, max_frac)``, clamped to
``[min_frames, max_frames]`` and to ``T - 1`` (at least one target frame), placed uniformly anywhere
in the utterance. Cropping (``max_frames_per_item``) keeps whole phonemes when durations are known.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, fields as dc_fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ns2.audio.f0 import f0_to_log
from ns2.data.audio import load_audio, to_mono
from ns2.data.manifest import Utterance, read_manifest

FIELDS = ("phonemes", "durations", "f0", "audio", "codes", "notes")
PHONEME_FIELDS = {"phonemes", "durations", "notes"}  # per phoneme: crops keep whole phonemes


def note_inputs(utt: Utterance) -> tuple[np.ndarray, np.ndarray]:
    """Per phoneme of ``utt.phonemes`` [L], from ``utt.score``: (note_pitch [L] float32, the MIDI pitch
    of the note whose phoneme range ``[phoneme_start, phoneme_end)`` holds the phoneme, 0 for none;
    note_start [L] bool, true on the first phoneme of each sung note's range). Rests (``rest: true`` or
    pitch <= 0) give 0 and no start; a phoneme in several notes' ranges belongs to the first. Without a
    score (speech) both are all 0 / false."""
    n = len(utt.phonemes or [])
    pitch = np.zeros(n, dtype=np.float32)
    start = np.zeros(n, dtype=bool)
    taken = np.zeros(n, dtype=bool)
    for note in utt.score or []:
        a, b = max(int(note["phoneme_start"]), 0), min(int(note["phoneme_end"]), n)
        if b <= a:
            continue
        p = float(note.get("pitch") or 0.0)
        if p > 0 and not note.get("rest", False):
            free = ~taken[a:b]
            pitch[a:b][free] = p
            start[a] = start[a] or bool(free[0])
        taken[a:b] = True
    return pitch, start


@dataclass(frozen=True)
class PromptConfig:
    """How the prompt span is drawn (frames at the manifest's frame rate)."""

    min_frac: float = 0.1
    max_frac: float = 0.5
    min_frames: int = 0
    max_frames: int | None = None
    at_start: bool = False  # the span starts at frame 0 (a prefix, as VALL-E prompts), else anywhere

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_frac <= self.max_frac <= 1.0:
            raise ValueError(f"prompt fractions need 0 <= min_frac <= max_frac <= 1, got {self.min_frac}, {self.max_frac}")

    @classmethod
    def create(cls, spec: "PromptConfig | Mapping[str, Any] | None | bool") -> "PromptConfig | None":
        if spec is None or spec is True:
            return cls()
        if spec is False:
            return None
        if isinstance(spec, PromptConfig):
            return spec
        known = {f.name for f in dc_fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"unknown prompt settings {unknown}; expected some of {sorted(known)}")
        return cls(**dict(spec))

    def draw(self, rng: np.random.Generator, num_frames: int) -> tuple[int, int]:
        """``[start, end)`` of a prompt inside ``num_frames`` frames."""
        if num_frames <= 1:
            return 0, 0
        n = int(round(rng.uniform(self.min_frac, self.max_frac) * num_frames))
        n = max(n, self.min_frames)
        if self.max_frames is not None:
            n = min(n, self.max_frames)
        n = min(n, num_frames - 1)
        start = 0 if self.at_start else int(rng.integers(0, num_frames - n + 1))
        return start, start + n


def _symbol_table(symbols: Any):
    if symbols is None:
        from ns2.text import DEFAULT_SYMBOLS

        return DEFAULT_SYMBOLS
    if isinstance(symbols, str):
        from ns2.text import get_symbol_table

        return get_symbol_table(symbols)
    return symbols


class TTSDataset(Dataset):
    """Items of one prepared manifest (optionally one ``split``), with the requested ``fields``."""

    def __init__(self, manifest_path: str | os.PathLike, fields: Sequence[str] = ("phonemes", "durations", "f0", "audio"),
                 symbols: Any = None, max_frames_per_item: int | None = None,
                 prompt: PromptConfig | Mapping[str, Any] | bool | None = None, seed: int = 0,
                 split: str | None = None, utterances: Sequence[Utterance] | None = None):
        self.manifest_path = Path(manifest_path)
        self.root = self.manifest_path.parent
        self.fields = tuple(str(f) for f in fields)
        unknown = [f for f in self.fields if f not in FIELDS]
        if unknown:
            raise ValueError(f"unknown dataset fields {unknown}; expected some of {list(FIELDS)}")
        self.symbols = _symbol_table(symbols) if "phonemes" in self.fields else symbols
        self.pad_id = int(getattr(self.symbols, "pad_id", 0) or 0)
        self.max_frames_per_item = int(max_frames_per_item) if max_frames_per_item else None
        self.prompt = PromptConfig.create(prompt)
        self.seed = int(seed)
        self.epoch = 0
        utts = list(utterances) if utterances is not None else read_manifest(self.manifest_path)
        self.utts = [u for u in utts if split is None or u.split == split]
        for u in self.utts:
            self._check(u)
        if "phonemes" in self.fields:
            used = {p for u in self.utts for p in u.phonemes}
            unknown = sorted(p for p in used if p not in self.symbols)
            if unknown:
                raise ValueError(f"{self.manifest_path}: phonemes {unknown[:10]} are not in symbol table "
                                 f"{getattr(self.symbols, 'version', '?')!r}")

    def _check(self, u: Utterance) -> None:
        where = f"{self.manifest_path}: utterance {u.id!r}"
        if u.num_frames is None or u.frame_rate is None:
            raise ValueError(f"{where} has no num_frames/frame_rate; prepare the corpus first (ns2 prep)")
        need = {"phonemes": u.phonemes is not None, "durations": u.durations is not None,
                "f0": "f0" in u.features, "codes": "codes" in u.features, "audio": True,
                "notes": u.phonemes is not None}
        missing = [f for f in self.fields if not need[f]]
        if missing:
            raise ValueError(f"{where} lacks {missing} (run the preparation stages that make them)")

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.utts)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def frame_lengths(self) -> list[int]:
        """Frames per item after cropping: what a frame-budget sampler needs."""
        cap = self.max_frames_per_item
        return [min(u.num_frames, cap) if cap else u.num_frames for u in self.utts]

    def hop_length(self, utt: Utterance) -> int:
        return int(round(utt.sample_rate / utt.frame_rate))

    @property
    def collate(self):
        """:func:`collate` with this dataset's ``<pad>`` id."""
        return functools.partial(collate, pad_id=self.pad_id)

    # ------------------------------------------------------------------ loading
    def load_f0(self, utt: Utterance) -> np.ndarray:
        f0 = np.load(utt.feature_path("f0", self.root)).astype(np.float32)
        if f0.shape != (utt.num_frames,):
            raise ValueError(f"{utt.id}: F0 has shape {f0.shape}, expected ({utt.num_frames},) frames")
        return f0

    def load_codes(self, utt: Utterance) -> np.ndarray:
        """Codec codes ``[n_q, T]`` from ``features["codes"]`` (a shard ``.npz`` or an ``.npy``)."""
        from ns2.data.codes import load_codes

        return load_codes(utt, self.root).numpy()

    def load_audio(self, utt: Utterance) -> np.ndarray:
        """Mono waveform ``[T * hop]``: zero-padded (or cut) to whole frames."""
        x, sr = load_audio(utt.audio_path(self.root))
        if sr != utt.sample_rate:
            raise ValueError(f"{utt.id}: audio is at {sr} Hz but the manifest says {utt.sample_rate} Hz")
        x = to_mono(x)
        n = utt.num_frames * self.hop_length(utt)
        return np.pad(x, (0, n - len(x))) if len(x) < n else x[:n]

    # ------------------------------------------------------------------ cropping
    def crop_window(self, utt: Utterance, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """``(frame_start, frame_end, phoneme_start, phoneme_end)`` of the crop (the whole item when short)."""
        T, cap = utt.num_frames, self.max_frames_per_item
        L = len(utt.phonemes) if utt.phonemes is not None else 0
        if not cap or T <= cap:
            return 0, T, 0, L
        s = int(rng.integers(0, T - cap + 1))
        if utt.durations is None or not PHONEME_FIELDS & set(self.fields):
            return s, s + cap, 0, L  # no text requested: any window of ``cap`` frames
        bounds = np.concatenate([[0], np.cumsum(utt.durations)])
        i = int(np.searchsorted(bounds, s, side="left"))  # first phoneme starting at or after s
        if i < L and bounds[i] < T:
            j = int(np.searchsorted(bounds, bounds[i] + cap, side="right")) - 1  # last boundary within the budget
            if bounds[j] > bounds[i]:
                return int(bounds[i]), int(bounds[j]), i, j
            k = i + int(np.argmax(np.asarray(utt.durations[i:]) > 0))  # the next phoneme with frames
        else:  # no phoneme with frames starts after s: the one holding s reaches the end
            k = int(np.searchsorted(bounds, s, side="right")) - 1
        # a single phoneme longer than the budget (zero-length phonemes around it never make an empty window)
        a = int(bounds[k]) + int(rng.integers(0, int(utt.durations[k]) - cap + 1))
        return a, a + cap, k, k + 1

    # ------------------------------------------------------------------ items
    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (int(key), self.epoch)
        utt = self.utts[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        a, b, pi, pj = self.crop_window(utt, rng)
        T = b - a
        item: dict[str, Any] = {"id": utt.id, "speaker": utt.speaker, "kind": utt.kind, "index": index, "num_frames": T,
                                "frame_offset": a}
        if "phonemes" in self.fields:
            item["phonemes"] = torch.tensor(self.symbols.encode(utt.phonemes[pi:pj]), dtype=torch.long)
        if "durations" in self.fields:
            d = list(utt.durations[pi:pj])
            if sum(d) != T:  # a window inside one phoneme
                d = [T]
            item["durations"] = torch.tensor(d, dtype=torch.long)
        if "notes" in self.fields:
            pitch, start = note_inputs(utt)
            item["note_pitch"] = torch.from_numpy(pitch[pi:pj].copy())
            item["note_start"] = torch.from_numpy(start[pi:pj].copy())
        if "f0" in self.fields:
            f0 = self.load_f0(utt)[a:b]
            log_f0, voiced = f0_to_log(f0, interpolate=True)
            item["f0"] = torch.from_numpy(f0)
            item["log_f0"] = torch.from_numpy(log_f0)
            item["voiced"] = torch.from_numpy(voiced)
        if "audio" in self.fields:
            hop = self.hop_length(utt)
            item["audio"] = torch.from_numpy(np.ascontiguousarray(self.load_audio(utt)[a * hop:b * hop], dtype=np.float32))
        if "codes" in self.fields:
            item["codes"] = torch.from_numpy(np.ascontiguousarray(self.load_codes(utt)[:, a:b]))
        start, end = self.prompt.draw(rng, T) if self.prompt is not None else (0, 0)
        item["prompt_start"], item["prompt_end"] = start, end
        return item


def _pad_stack(xs: Sequence[torch.Tensor], value: float | int | bool = 0) -> torch.Tensor:
    """Pad tensors along their last dimension to the longest and stack: ``[B, ..., max_len]``."""
    n = max((x.shape[-1] for x in xs), default=0)
    out = xs[0].new_full((len(xs), *xs[0].shape[:-1], n), value)
    for k, x in enumerate(xs):
        out[k, ..., : x.shape[-1]] = x
    return out


def _mask(lengths: torch.Tensor, n: int | None = None) -> torch.Tensor:
    n = int(lengths.max()) if n is None and len(lengths) else (n or 0)
    return torch.arange(n)[None, :] < lengths[:, None]


def collate(batch: Sequence[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
    """Pad a list of items into a batch.

    Returns ``ids``, ``speakers``, ``kinds`` (``speech``/``singing``), ``indices`` (lists), ``frame_lengths [B]``, ``frame_mask [B, T]``,
    ``frame_offset [B]``, ``prompt_start``/``prompt_end [B]``, ``prompt_mask [B, T]`` (True inside the
    prompt span), and per field: ``phonemes [B, L]`` (padded with ``pad_id``), ``phoneme_lengths [B]``,
    ``phoneme_mask [B, L]``, ``durations [B, L]`` (0-padded), ``f0``/``log_f0 [B, T]``, ``voiced [B, T]``,
    ``audio [B, S]`` with ``audio_lengths [B]``, ``codes [B, n_q, T]``, ``note_pitch [B, L]`` (0-padded)
    and ``note_start [B, L]`` (false-padded). Masks are True on real entries.
    """
    if not batch:
        raise ValueError("collate got an empty batch")
    out: dict[str, Any] = {"ids": [b["id"] for b in batch], "speakers": [b["speaker"] for b in batch],
                           "kinds": [b.get("kind", "speech") for b in batch], "indices": [b.get("index", -1) for b in batch]}
    frames = torch.tensor([b["num_frames"] for b in batch], dtype=torch.long)
    T = int(frames.max())
    out["frame_lengths"] = frames
    out["frame_mask"] = _mask(frames, T)
    out["frame_offset"] = torch.tensor([b.get("frame_offset", 0) for b in batch], dtype=torch.long)
    start = torch.tensor([b["prompt_start"] for b in batch], dtype=torch.long)
    end = torch.tensor([b["prompt_end"] for b in batch], dtype=torch.long)
    pos = torch.arange(T)[None, :]
    out["prompt_start"], out["prompt_end"] = start, end
    out["prompt_mask"] = (pos >= start[:, None]) & (pos < end[:, None])
    first = batch[0]
    if "phonemes" in first:
        lengths = torch.tensor([len(b["phonemes"]) for b in batch], dtype=torch.long)
        out["phonemes"] = _pad_stack([b["phonemes"] for b in batch], pad_id)
        out["phoneme_lengths"] = lengths
        out["phoneme_mask"] = _mask(lengths, out["phonemes"].shape[1])
    if "durations" in first:
        out["durations"] = _pad_stack([b["durations"] for b in batch], 0)
    if "note_pitch" in first:
        out["note_pitch"] = _pad_stack([b["note_pitch"] for b in batch], 0.0)
        out["note_start"] = _pad_stack([b["note_start"] for b in batch], False)
    for name, value in (("f0", 0.0), ("log_f0", 0.0), ("voiced", False)):
        if name in first:
            x = _pad_stack([b[name] for b in batch], value)
            out[name] = torch.nn.functional.pad(x, (0, T - x.shape[-1]), value=value) if x.shape[-1] < T else x
    if "audio" in first:
        out["audio_lengths"] = torch.tensor([len(b["audio"]) for b in batch], dtype=torch.long)
        out["audio"] = _pad_stack([b["audio"] for b in batch], 0.0)
    if "codes" in first:
        out["codes"] = _pad_stack([b["codes"] for b in batch], 0)
    return out
