"""What every corpus recipe shares: fetching and unpacking archives, checksums, walking an
extracted tree into :class:`~ns2.data.manifest.Utterance` records, and quarantining bad files.

A recipe subclass declares its archives (:meth:`Recipe.archives`), how to find and check its
extracted tree (:attr:`Recipe.dirnames`, :meth:`Recipe.check_subset`) and how to walk it
(:meth:`Recipe.walk`, yielding :class:`Entry` or :class:`Quarantined`). Audio headers are read
here with ``soundfile.info`` (no decoding); files that cannot be read are quarantined, not fatal.

Layout under a corpus ``root``::

    <root>/downloads/<archive>            fetched archives (``<archive>.part`` while downloading)
    <root>/downloads/.<archive>.extracted marker written once an archive is unpacked
    <root>/<dirname>/...                  the extracted tree, as the corpus ships it
    <root>/raw.jsonl                      manifest written by :meth:`Recipe.build_manifest`
    <root>/quarantine.jsonl               {"id", "audio", "stage": "recipe", "reason"} per bad file
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import os
import random
import tarfile
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import soundfile as sf

from ns2.data.manifest import ManifestError, Utterance, write_manifest
from ns2.utils.io import write_jsonl

log = logging.getLogger(__name__)

CHUNK = 1 << 20
GIB = 1 << 30


class RecipeError(RuntimeError):
    """A corpus that cannot be fetched, verified or walked; the message is one line saying what to do."""


# ---------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Archive:
    """One downloadable file. ``checksums`` holds ``"md5:<hex>"`` / ``"sha256:<hex>"``; any one match passes."""

    name: str
    url: str
    checksums: tuple[str, ...] = ()
    extract_to: str = ""  # sub-folder of root to unpack into ("" = root itself)


@dataclass
class Entry:
    """One utterance found in a tree, before its audio header is read."""

    id: str
    audio: Path
    speaker: str
    text: str
    split: str
    kind: str | None = None
    language: str | None = None
    score: list[dict] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # optional: phonemes a recipe derives itself (from a corpus's own annotation or a score) with
    # their ground-truth times, and feature files it writes (absolute paths; stored relative)
    phonemes: list[str] | None = None
    word_index: list[int] | None = None
    phoneme_times: list[list[float]] | None = None
    features: dict[str, Path] = field(default_factory=dict)


@dataclass
class Quarantined:
    id: str
    audio: str
    reason: str
    stage: str = "recipe"

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "audio": self.audio, "stage": self.stage, "reason": self.reason}


class BuildResult(list):
    """The utterances of a built manifest (a ``list[Utterance]``) plus ``.quarantined`` records."""

    def __init__(self, utts: Iterable[Utterance] = (), quarantined: Iterable[Quarantined] = ()):
        super().__init__(utts)
        self.quarantined: list[Quarantined] = list(quarantined)


# ---------------------------------------------------------------------------------------- network
def one_line(text: object) -> str:
    return " ".join(str(text).split())


def fetch(url: str, dest: Path, *, timeout: float = 60.0, manual: str = "") -> Path:
    """Download ``url`` to ``dest`` through ``dest.part`` (resumed with an HTTP Range request), then rename.

    Raises :class:`RecipeError` (one line naming the URL and the manual alternative) when it fails.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "ns2-recipes"}
    if have:
        headers["Range"] = f"bytes={have}-"
    hint = manual or f"download it by hand and put it at {dest}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            status = getattr(resp, "status", None) or resp.getcode()
            if have and status != 206:
                have = 0  # the server ignored the Range request: start over
            length = resp.headers.get("Content-Length")
            expected = have + int(length) if length is not None else None
            log.info("downloading %s -> %s%s", url, dest, f" (resuming at {have} bytes)" if have else "")
            with open(part, "ab" if have else "wb") as f:
                done = have
                while block := resp.read(CHUNK):
                    f.write(block)
                    done += len(block)
                    if done // GIB != (done - len(block)) // GIB:
                        log.info("%s: %.0f GiB%s", dest.name, done / GIB, f" of {expected / GIB:.1f}" if expected else "")
                f.flush()
                os.fsync(f.fileno())
    except urllib.error.HTTPError as e:
        if not (e.code == 416 and have):  # 416 on a resume: the partial file is already complete
            raise RecipeError(f"cannot download {url}: HTTP {e.code} {one_line(e.reason)}; {hint}") from None
        expected = None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = one_line(getattr(e, "reason", e))
        resume = f" (the partial {part.name} resumes on the next try)" if part.exists() else ""
        raise RecipeError(f"cannot download {url} ({reason}); no internet here? {hint}{resume}") from None
    size = part.stat().st_size
    if expected is not None and size != expected:
        raise RecipeError(f"download of {url} stopped at {size} of {expected} bytes; run it again to resume from {part}")
    os.replace(part, dest)
    return dest


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def check_archive(path: Path, checksums: Sequence[str]) -> str:
    """Return ``"ok"`` when one published checksum matches (``"unchecked"`` when none is published)."""
    if not checksums:
        return "unchecked"
    got: dict[str, str] = {}
    for spec in checksums:
        algo, _, want = spec.partition(":")
        if algo not in got:
            got[algo] = file_digest(path, algo)
        if got[algo] == want.lower():
            return "ok"
    shown = ", ".join(f"{a} {d}" for a, d in got.items())
    raise RecipeError(f"{path} is corrupt or incomplete: {shown} does not match the published {' / '.join(checksums)}; "
                      f"delete it and download again")


def extract(path: Path, dest: Path) -> None:
    """Unpack a tar(.gz) or zip archive into ``dest`` (no member may land outside ``dest``); idempotent."""
    marker = path.with_name(f".{path.name}.extracted")
    if marker.exists():
        return
    dest.mkdir(parents=True, exist_ok=True)
    log.info("extracting %s -> %s", path, dest)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                top = dest.resolve()
                for name in zf.namelist():
                    if not (top / name).resolve().is_relative_to(top):
                        raise RecipeError(f"{path}: member {name!r} would be written outside {dest}")
                zf.extractall(dest)
        else:
            with tarfile.open(path, "r:*") as tf:
                tf.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise RecipeError(f"cannot extract {path} ({one_line(e)}); delete it and download again") from None
    marker.touch()


# ---------------------------------------------------------------------------------------- helpers
def audio_info(path: Path) -> tuple[int, float, int]:
    """``(sample_rate, duration_s, num_samples)`` from the file header, without decoding."""
    info = sf.info(str(path))
    if info.frames <= 0 or info.samplerate <= 0:
        raise ValueError(f"no audio samples (frames={info.frames}, rate={info.samplerate})")
    return int(info.samplerate), info.frames / info.samplerate, int(info.frames)


def read_text(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8").split())


def held_out_speakers(speakers: Iterable[str], seed: int, valid: int | Sequence[str], test: int | Sequence[str]) -> dict[str, str]:
    """Deterministic speaker -> split map: ``valid``/``test`` are counts (seeded choice) or explicit speaker lists."""
    pool = sorted(set(speakers))
    chosen: dict[str, str] = {}
    for split, spec in (("test", test), ("valid", valid)):
        if isinstance(spec, int):
            rest = [s for s in pool if s not in chosen]
            if spec > len(rest):
                raise RecipeError(f"asked for {spec} {split} speakers but only {len(rest)} are left of {len(pool)}")
            picked = random.Random(f"{seed}:{split}").sample(rest, spec)
        else:
            picked = [str(s) for s in spec]
            unknown = sorted(set(picked) - set(pool))
            if unknown:
                raise RecipeError(f"{split} speakers {unknown} are not in the corpus (it has {len(pool)} speakers)")
        chosen.update({s: split for s in picked})
    return {s: chosen.get(s, "train") for s in pool}


def plain(value: Any) -> Any:
    """Config containers (e.g. OmegaConf ListConfig) to plain lists; strings and scalars unchanged."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__"):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------- recipe
class Recipe:
    """Base corpus recipe: ``download`` / ``verify`` / ``build_manifest`` over a corpus ``root``."""

    name: str = ""
    title: str = ""
    homepage: str = ""
    dirnames: tuple[str, ...] = ()  # folder names the tree may sit in under root ("" = root itself)
    subsets: tuple[str, ...] = ()
    default_subsets: tuple[str, ...] = ()
    language: str = "en-us"
    kind: str = "speech"
    expected_counts: dict[str, int] = {}

    # -- to implement ---------------------------------------------------------------------------
    def archives(self, subsets: Sequence[str]) -> list[Archive]:
        raise NotImplementedError

    def walk(self, tree: Path, subsets: Sequence[str], **options: Any) -> Iterator[Entry | Quarantined]:
        raise NotImplementedError

    # -- tree structure (override the parts that differ) --------------------------------------
    audio_glob: str = "*/*/*.wav"  # audio files, relative to a subset's folder

    def subset_dir(self, tree: Path, subset: str) -> Path:
        return tree / subset

    def required(self, subset: str) -> tuple[str, ...]:
        """Paths that must exist inside a subset's folder."""
        return ()

    def check_subset(self, tree: Path, subset: str) -> str | None:
        """``None`` when the subset looks complete, otherwise what is missing (cheap: stops at one audio file)."""
        d = self.subset_dir(tree, subset)
        if not d.is_dir():
            return f"missing folder {d}"
        for req in self.required(subset):
            if not (d / req).exists():
                return f"missing {d / req}"
        if next(d.glob(self.audio_glob), None) is None:
            return f"no audio files matching {d}/{self.audio_glob}"
        return None

    def count_audio(self, tree: Path, subset: str) -> int:
        return sum(1 for _ in self.subset_dir(tree, subset).glob(self.audio_glob))

    # -- shared ---------------------------------------------------------------------------------
    def resolve_subsets(self, subsets: Sequence[str] | str | None, tree: Path | None = None) -> list[str]:
        """``None`` -> the subsets present in ``tree`` (or the defaults); names are checked."""
        if isinstance(subsets, str):
            subsets = [subsets]
        if subsets is None:
            present = [s for s in self.subsets if tree is not None and self.check_subset(tree, s) is None]
            return present or list(self.default_subsets)
        subsets = [str(s) for s in plain(subsets)]
        unknown = [s for s in subsets if s not in self.subsets]
        if unknown:
            raise RecipeError(f"{self.name}: unknown subsets {unknown}; expected some of {list(self.subsets)}")
        return subsets

    def find_tree(self, root: str | os.PathLike) -> Path | None:
        """The folder holding the extracted corpus: ``root/<dirname>`` (or ``root/<dirname>/<dirname>``),
        ``root`` itself or another child of ``root``."""
        root = Path(root).expanduser()
        candidates = [root / d / sub for d in self.dirnames for sub in ("", d)] + [root]
        if root.is_dir():
            candidates += sorted(p for p in root.iterdir() if p.is_dir() and p.name != "downloads")
        for c in candidates:
            if c.is_dir() and any(self.check_subset(c, s) is None for s in self.subsets):
                return c
        return None

    def how_to_get(self, root: Path, subsets: Sequence[str]) -> str:
        urls = " ".join(a.url for a in self.archives(subsets))
        return (f"download it with data.corpus.download=true on a machine with internet, "
                f"or fetch {urls} and extract it under {root}")

    def download(self, root: str | os.PathLike, subsets: Sequence[str] | str | None = None) -> Path:
        """Fetch (resumably), check and unpack the archives of ``subsets``; return the extracted tree."""
        root = Path(root).expanduser()
        subsets = self.resolve_subsets(subsets if subsets is not None else list(self.default_subsets))
        for arc in self.archives(subsets):
            path = root / "downloads" / arc.name
            marker = path.with_name(f".{arc.name}.extracted")
            if marker.exists():
                continue
            hint = f"fetch it by hand (see {self.homepage}) and put it at {path}"
            fetch(arc.url, path, manual=hint)
            check_archive(path, arc.checksums)
            extract(path, root / arc.extract_to)
        tree = self.find_tree(root)
        if tree is None:
            raise RecipeError(f"{self.title}: the archives were unpacked under {root} but no expected folder {list(self.dirnames)} appeared")
        return tree

    def verify(self, root: str | os.PathLike, subsets: Sequence[str] | str | None = None, *,
               checksums: bool = True, count: bool = True, strict: bool = False) -> dict[str, Any]:
        """Check downloaded archives (published checksums) and the extracted tree's structure.

        Raises :class:`RecipeError` naming what is missing; audio-file counts that differ from the
        official release are warnings (errors with ``strict``); ``count=False`` skips counting.
        Returns a report ``{"corpus", "tree", "subsets", "archives", "warnings"}``.
        """
        root = Path(root).expanduser()
        tree = self.find_tree(root)
        wanted = self.resolve_subsets(subsets, tree)
        if tree is None:
            raise RecipeError(f"{self.title} not found under {root} (expected {self._expect(wanted)}); {self.how_to_get(root, wanted)}")
        report: dict[str, Any] = {"corpus": self.name, "tree": str(tree), "subsets": {}, "archives": {}, "warnings": []}
        if checksums:
            for arc in self.archives(wanted):
                path = root / "downloads" / arc.name
                report["archives"][arc.name] = check_archive(path, arc.checksums) if path.exists() else "not downloaded"
        for s in wanted:
            problem = self.check_subset(tree, s)
            if problem:
                raise RecipeError(f"{self.title} at {tree}: {problem}; {self.how_to_get(root, [s])}")
            n = self.count_audio(tree, s) if count else None
            expected = self.expected_counts.get(s)
            report["subsets"][s] = {"files": n, "expected": expected}
            if n is not None and expected is not None and n != expected:
                msg = f"{self.name} {s}: {n} audio files, the official release has {expected} (incomplete extraction?)"
                if strict:
                    raise RecipeError(msg)
                report["warnings"].append(msg)
                log.warning(msg)
        return report

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Plain copies of the walk ``options``; a :class:`RecipeError` names the ones this recipe lacks."""
        options = {k: plain(v) for k, v in options.items()}
        sig = inspect.signature(self.walk)
        try:
            sig.bind(Path("."), [], **options)
        except TypeError:
            known = [p for p in sig.parameters if p not in ("tree", "subsets")]
            raise RecipeError(f"{self.name}: unknown options {sorted(options)}; this recipe takes {known}") from None
        return options

    def _expect(self, subsets: Sequence[str]) -> str:
        where = " or ".join(f"{d}/" for d in self.dirnames if d) or "the corpus folders"
        return f"{where} holding {list(subsets)}" if subsets and list(subsets) != ["all"] else where

    def build_manifest(self, root: str | os.PathLike, out_path: str | os.PathLike | None = None,
                       subsets: Sequence[str] | str | None = None, num_workers: int = 1, **options: Any) -> BuildResult:
        """Walk the tree, read each audio header, write ``out_path`` (default ``<root>/raw.jsonl``) and
        ``<out_dir>/quarantine.jsonl``; return the utterances (``.quarantined`` holds the bad files)."""
        root = Path(root).expanduser()
        out_path = Path(out_path) if out_path is not None else root / "raw.jsonl"
        tree = self.find_tree(root)
        wanted = self.resolve_subsets(subsets, tree)
        if tree is None:
            raise RecipeError(f"{self.title} not found under {root} (expected {self._expect(wanted)}); {self.how_to_get(root, wanted)}")
        options = self.check_options(options)
        found = list(self.walk(tree, wanted, **options))
        entries = [e for e in found if isinstance(e, Entry)]
        quarantined = [q for q in found if isinstance(q, Quarantined)]
        if not entries and not quarantined:
            raise RecipeError(f"{self.title} at {tree}: no utterances found for subsets {wanted}")

        def probe(e: Entry) -> tuple[int, float, int] | str:
            try:
                return audio_info(e.audio)
            except Exception as err:  # noqa: BLE001 - any unreadable file is quarantined
                return f"unreadable audio: {one_line(err)}"

        with ThreadPoolExecutor(max(1, int(num_workers))) as pool:
            infos = list(pool.map(probe, entries))
        out_dir = out_path.parent
        utts: list[Utterance] = []
        seen: set[str] = set()
        for e, info in zip(entries, infos):
            audio = self._rel(e.audio, out_dir)
            reason = info if isinstance(info, str) else "duplicate utterance id" if e.id in seen else \
                "empty transcript" if not e.text.strip() else None
            if reason:
                quarantined.append(Quarantined(e.id, audio, reason))
                continue
            rate, duration, frames = info
            utt = Utterance(id=e.id, audio=audio, sample_rate=rate, duration=duration, speaker=e.speaker,
                            text=e.text, kind=e.kind or self.kind, split=e.split,
                            language=e.language or self.language, score=e.score, phonemes=e.phonemes,
                            word_index=e.word_index, phoneme_times=e.phoneme_times,
                            features={k: self._rel(Path(v), out_dir) for k, v in e.features.items()},
                            extra={"corpus": self.name, "num_samples": frames, **e.extra})
            try:
                utt.validate()
            except ManifestError as err:  # a recipe's own fields that do not fit the schema: this item only
                quarantined.append(Quarantined(e.id, audio, f"invalid record: {one_line(err)}"))
                continue
            seen.add(e.id)
            utts.append(utt)
        for q in quarantined:  # walk() records absolute paths
            q.audio = self._rel(Path(q.audio), out_dir) if Path(q.audio).is_absolute() else q.audio
        write_manifest(out_path, utts)
        write_jsonl(out_dir / "quarantine.jsonl", [q.to_dict() for q in quarantined])
        if quarantined:
            log.warning("%s: %d files quarantined (see %s)", self.name, len(quarantined), out_dir / "quarantine.jsonl")
        log.info("%s: %d utterances -> %s", self.name, len(utts), out_path)
        return BuildResult(utts, quarantined)

    @staticmethod
    def _rel(path: Path, base: Path) -> str:
        try:
            return os.path.relpath(path, base)
        except ValueError:  # e.g. another drive
            return str(Path(path).absolute())

    def quarantine(self, id: str, audio: Path, reason: str) -> Quarantined:
        return Quarantined(id, str(Path(audio).absolute()), reason)
