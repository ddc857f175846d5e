"""A source-filter decoder for the RVQ codec: the latent drives a harmonic oscillator and filtered noise.

``codec.decoder=harmonic`` swaps DAC's upsampling decoder (:class:`~ns2.codec.rvq.Decoder`) for this one;
the encoder, the residual quantiser and so NaturalSpeech 2's latent and CE-RVQ targets are unchanged.
It is the small-compute codec decoder: DAC's decoder learns to produce periodic waveforms at any pitch
only after hundreds of thousands of GAN steps, while an oscillator driven by a predicted F0 carries the
speaker's pitch from the first thousand (the DDSP idea, Engel et al. 2020; NSF, Wang et al. 2019).

From the latent ``z: [B, D, T]`` a convolutional trunk predicts, per codec frame,

* ``log_f0 [B, T]``: the fundamental frequency (natural log of Hz; clamped to [f0_min, f0_max] for
  synthesis, which does not pass gradients back to it: F0 is learnt from its target alone);
* ``voicing_logit [B, T]``: whether the frame is voiced (it gates the harmonic part);
* the amplitudes of ``n_harmonics`` harmonics (a loudness times a distribution over harmonics, the
  harmonics above Nyquist removed), and a noise magnitude response in ``n_noise_bands`` bands.

Audio: F0 and amplitudes are linearly upsampled to samples; the phase accumulates F0 / sample_rate
(in float64, wrapped), the harmonic part is ``Σ_k a_k sin(2π k φ)``; the noise part is white noise shaped
in the STFT domain by the band magnitudes (``n_fft = 4·hop``, hop = the codec's hop). The codec is
trained with the GAN recipe plus two supervised terms on these controls (``f0``: L1 of log-F0 against
the corpus's Praat F0, interpolated through unvoiced frames; ``voicing``: BCE against its voiced flags),
see :class:`~ns2.lit.codec.CodecLit`. Noise is drawn fresh in training and from a fixed seed in eval
mode, so decoding is deterministic at inference.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ns2.codec.layers import Snake1d, WNConv1d

__all__ = ["HarmonicNoiseDecoder", "HARMONIC_DEFAULTS", "PitchInput"]

HARMONIC_DEFAULTS: dict[str, float | int] = {
    "channels": 128, "layers": 4, "n_harmonics": 64, "n_noise_bands": 64, "f0_min": 40.0, "f0_max": 1000.0,
}
"""The decoder's options (``decoder_options`` of :class:`~ns2.codec.rvq.RVQCodec`) and their defaults."""


def _exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7) -> torch.Tensor:
    """DDSP's positive, bounded amplitude nonlinearity: max_value · sigmoid(x)^log(exponent) + threshold."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


class _ResBlock(nn.Module):
    """x + conv1x1(snake(conv3_dilated(snake(x)))). [B, C, T] -> [B, C, T]."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(channels),
            WNConv1d(channels, channels, kernel_size=3, dilation=dilation, padding=dilation),
            Snake1d(channels),
            WNConv1d(channels, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class PitchInput(nn.Module):
    """An explicit pitch parameter for the encoder (``explicit_pitch=True`` of :class:`~ns2.codec.rvq.RVQCodec`).

    Like parametric speech codecs (LPCNet, Codec2) that send the pitch as a parameter, the encoder's latent
    gets a learned projection of Praat's F0 of the input: ``z_e += proj([ (log F0 − 5) / 0.5, voiced ])``
    per frame (log-F0 interpolated through unvoiced frames). A small waveform encoder learns to extract
    pitch only slowly; with this path the quantised latent carries the speaker's pitch from the start.
    F0 is measured on the CPU (no gradient), one item at a time. wav: [B, 1, S] -> [B, D, ceil(S / hop)].
    """

    def __init__(self, latent_dim: int, hop_length: int, sample_rate: int):
        super().__init__()
        self.hop_length, self.sample_rate = int(hop_length), int(sample_rate)
        self.proj = nn.Conv1d(2, latent_dim, kernel_size=1)

    @torch.no_grad()
    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: [B, 1, S] -> [B, 2, ceil(S / hop)]: normalised log-F0 (interpolated) and the voiced flag."""
        import numpy as np

        from ns2.audio.f0 import compute_f0, f0_to_log

        rows = []
        for x in wav[:, 0].detach().float().cpu().numpy():
            log_f0, voiced = f0_to_log(compute_f0(x, self.sample_rate, self.hop_length), interpolate=True)
            norm = np.where(log_f0 > 0, (log_f0 - 5.0) / 0.5, 0.0)
            rows.append(np.stack([norm, voiced.astype(np.float32)]))
        return torch.from_numpy(np.stack(rows).astype(np.float32)).to(wav.device)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(wav).to(self.proj.weight.dtype))


class HarmonicNoiseDecoder(nn.Module):
    """latent z: [B, D, T] -> wav: [B, 1, T·hop] in [-1, 1], through predicted F0, voicing, harmonics, noise.

    Args:
        latent_dim: D.
        hop_length, sample_rate: the codec's.
        channels, layers: the trunk (a 3-tap conv, then ``layers`` residual blocks with dilations 1, 2, 4, ...).
        n_harmonics: oscillator harmonics (those above Nyquist are silenced frame by frame).
        n_noise_bands: bands of the noise filter (linearly spaced, interpolated to the STFT bins).
        f0_min, f0_max: the range of the predicted F0 in Hz.
    """

    predicts_f0 = True

    def __init__(self, latent_dim: int, hop_length: int, sample_rate: int, channels: int = 128, layers: int = 4,
                 n_harmonics: int = 64, n_noise_bands: int = 64, f0_min: float = 40.0, f0_max: float = 1000.0):
        super().__init__()
        if not 0 < f0_min < f0_max <= sample_rate / 2:
            raise ValueError(f"HarmonicNoiseDecoder: need 0 < f0_min < f0_max <= Nyquist, got {f0_min}, {f0_max}")
        self.hop_length, self.sample_rate = int(hop_length), int(sample_rate)
        self.n_harmonics, self.n_noise_bands = int(n_harmonics), int(n_noise_bands)
        self.log_f0_min, self.log_f0_max = math.log(f0_min), math.log(f0_max)
        self.n_fft = 4 * self.hop_length
        trunk: list[nn.Module] = [WNConv1d(latent_dim, channels, kernel_size=3, padding=1)]
        trunk += [_ResBlock(channels, 2**i) for i in range(int(layers))]
        trunk += [Snake1d(channels)]
        self.trunk = nn.Sequential(*trunk)
        # outputs: log-F0, voicing, loudness, harmonic distribution, noise bands
        self.head = nn.Conv1d(channels, 3 + self.n_harmonics + self.n_noise_bands, kernel_size=1)
        self.register_buffer("harmonic_numbers", torch.arange(1, self.n_harmonics + 1, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def controls(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-frame controls. z: [B, D, T] -> log_f0, voicing_logit, loudness: [B, T];
        harmonics: [B, K, T] (sums to 1 below Nyquist); noise: [B, n_noise_bands, T]."""
        h = self.head(self.trunk(z))
        # unbounded (a bounded squashing saturates and stops the F0 loss), clamped where it is used
        log_f0 = 0.5 * (self.log_f0_min + self.log_f0_max) + h[:, 0]
        f0 = log_f0.clamp(self.log_f0_min, self.log_f0_max).exp()
        below = (self.harmonic_numbers[None, :, None] * f0[:, None, :]) < self.sample_rate / 2  # [B, K, T]
        logits = h[:, 3 : 3 + self.n_harmonics].masked_fill(~below, float("-inf"))
        harmonics = torch.softmax(logits, dim=1).nan_to_num(0.0)
        return {
            "log_f0": log_f0,
            "voicing_logit": h[:, 1],
            "loudness": _exp_sigmoid(h[:, 2]),
            "harmonics": harmonics,
            "noise": _exp_sigmoid(h[:, 3 + self.n_harmonics :] - 5.0),
        }

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame values [B, C, T] -> per-sample [B, C, T·hop] (linear, frame centres at hop/2)."""
        return F.interpolate(x, scale_factor=self.hop_length, mode="linear", align_corners=False)

    def harmonic(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        """The voiced part. -> [B, 1, T·hop]."""
        # F0 is learnt from its own target only: the gradient of a spectral loss through the phase is useless
        log_f0 = c["log_f0"].detach().clamp(self.log_f0_min, self.log_f0_max)
        f0 = self._upsample(log_f0.exp()[:, None])  # [B, 1, S]
        # the running phase in float64 (no drift over long utterances), wrapped to [0, 1) cycles
        phase = torch.cumsum(f0.double() / self.sample_rate, dim=-1).remainder(1.0).float()  # [B, 1, S]
        gate = torch.sigmoid(c["voicing_logit"])[:, None]  # [B, 1, T]
        amps = self._upsample(c["harmonics"] * (c["loudness"][:, None] * gate))  # [B, K, S]
        k = self.harmonic_numbers[None, :, None]
        waves = torch.sin(2 * math.pi * (phase * k).remainder(1.0)).to(amps.dtype)  # [B, K, S]
        return (amps * waves).sum(dim=1, keepdim=True)

    def noise(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        """The unvoiced part: white noise shaped per frame by the band magnitudes. -> [B, 1, T·hop]."""
        bands = c["noise"]  # [B, n_bands, T]
        b, _, t = bands.shape
        bins = self.n_fft // 2 + 1
        mag = F.interpolate(bands.transpose(1, 2), size=bins, mode="linear", align_corners=True).transpose(1, 2)
        generator = None if self.training else torch.Generator(device="cpu").manual_seed(0)
        shape = (b, bins, t + 1)  # istft with centred frames: T+1 frames cover T·hop samples
        phase = torch.rand(shape, generator=generator).to(bands.device) * (2 * math.pi)
        mag = F.pad(mag, (0, 1), mode="replicate")
        spec = torch.polar(mag.float(), phase.float())
        wav = torch.istft(spec, self.n_fft, self.hop_length, window=self.window, center=True, length=t * self.hop_length)
        return wav[:, None].to(bands.dtype)

    def synthesize(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        """Controls -> wav [B, 1, T·hop] in [-1, 1]."""
        return torch.tanh(self.harmonic(c) + self.noise(c))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: [B, D, T] -> wav: [B, 1, T·hop]."""
        return self.synthesize(self.controls(z))
