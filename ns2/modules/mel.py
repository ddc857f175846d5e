"""Log-mel spectrogram front end shared by the aligner and the models (torch.stft, no torchaudio).

Framing follows the codec: a signal of ``S`` samples gives exactly ``T = ceil(S / hop_length)`` frames.
The signal is zero-padded on the right to ``T * hop_length`` samples (as the codec pads it) and then by
``(n_fft - hop_length) / 2`` zeros on each side, so frame ``t`` is centred on the middle of the codec
frame ``[t * hop, (t + 1) * hop)``. Padding is always with zeros (never reflection): the frames of a
right-padded batch item within its own length equal those of the item processed alone.

Output: ``log(clamp(|STFT| @ mel_basis, min=clamp_min))`` shaped ``[B, n_mels, T]`` (magnitude, not
power, with librosa's Slaney-normalised mel filterbank, as HiFi-GAN-style vocoders use).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MelSpectrogram"]


class MelSpectrogram(nn.Module):
    """wav: [B, S] (or [B, 1, S] or [S]) -> log-mel: [B, n_mels, ceil(S / hop_length)]."""

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 200,
        win_length: int = 800,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = 8000.0,
        clamp_min: float = 1e-5,
    ):
        super().__init__()
        if win_length > n_fft:
            raise ValueError(f"MelSpectrogram: win_length ({win_length}) must be <= n_fft ({n_fft})")
        if hop_length > n_fft:
            raise ValueError(f"MelSpectrogram: hop_length ({hop_length}) must be <= n_fft ({n_fft})")
        if f_max is not None and f_max > sample_rate / 2:
            raise ValueError(f"MelSpectrogram: f_max ({f_max}) must be <= sample_rate / 2 ({sample_rate / 2})")
        import librosa

        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = int(win_length)
        self.n_mels = int(n_mels)
        self.f_min = float(f_min)
        self.f_max = float(f_max) if f_max is not None else sample_rate / 2
        self.clamp_min = float(clamp_min)
        self.config = dict(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
                           win_length=self.win_length, n_mels=self.n_mels, f_min=self.f_min, f_max=self.f_max,
                           clamp_min=self.clamp_min)
        basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=self.f_max)
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)  # [n_mels, n_fft/2+1]
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)  # [win_length]

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    def frames(self, num_samples: int) -> int:
        """Frames for ``num_samples`` samples: ``ceil(num_samples / hop_length)``."""
        return math.ceil(int(num_samples) / self.hop_length)

    def magnitude(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, S] (or [B, 1, S] or [S]) float -> |STFT| [B, n_fft/2+1, T], T = ceil(S / hop_length)
        (the linear spectrogram, on the same frames as the log-mel)."""
        if wav.dim() == 3 and wav.shape[1] == 1:
            wav = wav[:, 0]
        elif wav.dim() == 1:
            wav = wav[None]
        if wav.dim() != 2:
            raise ValueError(f"MelSpectrogram: wav must be shaped [B, S], [B, 1, S] or [S], got {tuple(wav.shape)}")
        num_samples = wav.shape[-1]
        frames = self.frames(num_samples)
        if frames == 0:
            return wav.new_zeros(wav.shape[0], self.n_fft // 2 + 1, 0)
        side = (self.n_fft - self.hop_length) // 2
        right = frames * self.hop_length - num_samples + (self.n_fft - self.hop_length - side)
        x = F.pad(wav.float(), (side, right))  # [B, n_fft + (T - 1) * hop]
        with torch.autocast(device_type=x.device.type, enabled=False):
            mag = torch.stft(
                x, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                window=self.window.to(x.device), center=False, return_complex=True,
            ).abs()  # [B, n_fft/2+1, T]
        if mag.shape[-1] != frames:  # cannot happen with the padding above; kept as a guard
            raise RuntimeError(f"MelSpectrogram: produced {mag.shape[-1]} frames for {num_samples} samples, expected {frames}")
        return mag

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, S] float -> [B, n_mels, T], T = ceil(S / hop_length)."""
        mag = self.magnitude(wav)
        with torch.autocast(device_type=mag.device.type, enabled=False):
            mel = torch.matmul(self.mel_basis, mag)  # [B, n_mels, T]
            return torch.log(torch.clamp(mel, min=self.clamp_min))

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"win_length={self.win_length}, n_mels={self.n_mels}, f_min={self.f_min}, f_max={self.f_max}")
