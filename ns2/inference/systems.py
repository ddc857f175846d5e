"""Reference systems: the ground truth, its codec resynthesis, and a folder of another system's files.

- :class:`GroundTruthSystem` returns the recording of the target utterance (the ``gt_wav`` of a test
  item); bound to a test list with :meth:`GroundTruthSystem.bind`, or given ``{id: path}`` directly.
- :class:`ResynthesisSystem` returns the ground truth passed through a codec, ``decode(encode(gt))``: the
  codec's ceiling, the "codec resynthesis" row of the papers' tables (:class:`CodecResynthesis`, also
  the harness's SIM-r reference).
- :class:`FolderSystem` returns ``<dir>/<id>.wav`` (or ``.flac``/``.ogg``/``.mp3`` as configured): any
  other system's outputs (YourTTS, VALL-E, F5-TTS, Qwen3-TTS ...) named by test-item id.

Both raise :class:`~ns2.inference.synthesizer.SynthesisError` for a missing or unreadable output, which
the evaluation harness counts as a failure of that item (never skipped). ``same_timing_as_reference``
says the outputs follow the ground truth's timing frame by frame (true for ground truth; set it for a
folder of codec resynthesis or degraded copies), so the ground truth's phoneme durations may be used
for the outputs' prosody statistics.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ns2.inference.synthesizer import SynthesisError, Synthesizer
from ns2.metrics.audio import resample

__all__ = ["CodecResynthesis", "FolderSystem", "GroundTruthSystem", "ResynthesisSystem", "read_output"]


def read_output(path: Path, who: str) -> tuple[np.ndarray, int]:
    """A mono float32 waveform ``[S]`` and its rate from an audio file, or :class:`SynthesisError`."""
    import soundfile as sf

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as e:  # soundfile's errors are RuntimeErrors
        raise SynthesisError(f"{who}: cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if x.shape[0] == 0:
        raise SynthesisError(f"{who}: {path} holds no samples")
    return np.ascontiguousarray(x.mean(axis=1)), int(sr)


class GroundTruthSystem(Synthesizer):
    """The target utterance's own recording (an upper reference for every metric)."""

    same_timing_as_reference = True
    stores_outputs = True  # outputs already exist as files: the harness need not save them

    def __init__(self, paths: Mapping[str, str | os.PathLike] | None = None, name: str = "groundtruth") -> None:
        self.name = name
        self.paths: dict[str, Path] = {k: Path(v) for k, v in (paths or {}).items()}

    def bind(self, items: Iterable[Any], audio_root: str | os.PathLike | None = None) -> None:
        """Take ``{id: gt path}`` from test items (:class:`~ns2.eval.protocol.ProtocolItem`)."""
        for it in items:
            p = it.path("gt_wav", audio_root)
            if p is not None:
                self.paths[it.id] = p

    def synthesize(self, text: str, prompt_wav: np.ndarray, prompt_sr: int, *, prompt_text: str | None = None,
                   score: Any = None, seed: int = 0, utt_id: str | None = None) -> tuple[np.ndarray, int]:
        if utt_id is None:
            raise SynthesisError(f"{self.name}: expected utt_id (ground truth is looked up by test-item id)")
        path = self.paths.get(utt_id)
        if path is None:
            raise SynthesisError(f"{self.name}: item {utt_id!r} has no ground-truth recording (gt_wav)")
        if not path.is_file():
            raise SynthesisError(f"{self.name}: ground truth of {utt_id!r} not found: {path}")
        return read_output(path, self.name)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "items": len(self.paths)}


class FolderSystem(Synthesizer):
    """Outputs of another system in ``dir``, one file per test item named ``<id><ext>``."""

    stores_outputs = True

    def __init__(self, dir: str | os.PathLike, name: str = "folder", extensions: Sequence[str] = (".wav", ".flac"),
                 same_timing_as_reference: bool = False) -> None:
        self.name = name
        self.dir = Path(dir).expanduser()
        self.extensions = tuple(e if e.startswith(".") else f".{e}" for e in extensions)
        if not self.extensions:
            raise ValueError(f"{name}: expected at least one file extension, got none")
        self.same_timing_as_reference = bool(same_timing_as_reference)
        if not self.dir.is_dir():
            raise FileNotFoundError(f"{name}: output folder not found: {self.dir} (expected <dir>/<item id>.wav files)")

    def output_path(self, utt_id: str) -> Path | None:
        for ext in self.extensions:
            p = self.dir / f"{utt_id}{ext}"
            if p.is_file():
                return p
        return None

    def synthesize(self, text: str, prompt_wav: np.ndarray, prompt_sr: int, *, prompt_text: str | None = None,
                   score: Any = None, seed: int = 0, utt_id: str | None = None) -> tuple[np.ndarray, int]:
        if utt_id is None:
            raise SynthesisError(f"{self.name}: expected utt_id (outputs are looked up by test-item id)")
        path = self.output_path(utt_id)
        if path is None:
            raise SynthesisError(
                f"{self.name}: no output for item {utt_id!r} in {self.dir} (looked for {'/'.join(self.extensions)})"
            )
        return read_output(path, self.name)

    def describe(self) -> dict[str, Any]:
        n = sum(1 for p in self.dir.iterdir() if p.suffix in self.extensions) if self.dir.is_dir() else 0
        return {**super().describe(), "dir": str(self.dir), "files": n,
                "same_timing_as_reference": self.same_timing_as_reference}


class CodecResynthesis:
    """``wav [S] at sr -> decode(encode(wav)) [S] at sr`` with a codec checkpoint, DAC file or release name."""

    def __init__(self, source: str | os.PathLike, device: str = "cpu", n_q: int | None = None) -> None:
        from ns2.codec.load import load_any_codec

        self.source = str(source)
        self.codec = load_any_codec(source).to(device).eval()
        self.device = device
        self.n_q = n_q

    def __call__(self, wav: np.ndarray, sr: int) -> np.ndarray:
        import torch

        x = resample(np.asarray(wav, dtype=np.float32), sr, int(self.codec.sample_rate))
        with torch.inference_mode():
            t = torch.from_numpy(x)[None, None].to(self.device)
            codes = self.codec.encode(t, self.n_q)
            y = self.codec.decode_codes(codes, length=t.shape[-1])[0, 0].float().cpu().numpy()
        return resample(y, int(self.codec.sample_rate), sr)

    def describe(self) -> dict[str, Any]:
        import os.path

        out: dict[str, Any] = {"source": self.source, "sample_rate": int(self.codec.sample_rate), "n_q": self.n_q}
        if os.path.isfile(self.source):
            from ns2.metrics.backbones import sha256_file

            out["sha256"] = sha256_file(self.source)
        return out


class ResynthesisSystem(GroundTruthSystem):
    """The ground-truth recording resynthesised by a codec (``codec``: a CodecLit ``.ckpt``, a DAC file or
    a release name; ``n_q``: the quantisers used, all by default). Same timing as the ground truth."""

    stores_outputs = False

    def __init__(self, codec: str | os.PathLike, n_q: int | None = None, name: str = "resynth", device: str = "cpu",
                 paths: Mapping[str, str | os.PathLike] | None = None) -> None:
        super().__init__(paths, name)
        self.resynth = CodecResynthesis(codec, device=device, n_q=n_q)

    def synthesize(self, text: str, prompt_wav: np.ndarray, prompt_sr: int, *, prompt_text: str | None = None,
                   score: Any = None, seed: int = 0, utt_id: str | None = None) -> tuple[np.ndarray, int]:
        gt, sr = super().synthesize(text, prompt_wav, prompt_sr, utt_id=utt_id)
        return self.resynth(gt, sr), sr

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "codec": self.resynth.describe()}
