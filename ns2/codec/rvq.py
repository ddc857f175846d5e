"""An RVQ codec with the architecture of DAC (Descript Audio Codec, "Improved RVQGAN").

Encoder: a 7-tap conv to ``encoder_dim`` channels, then per rate r an :class:`EncoderBlock` (three
:class:`ResidualUnit` s with dilations 1, 3, 9, Snake, and a strided conv of kernel 2r that doubles the
channels), then Snake and a 3-tap conv to ``latent_dim``. Decoder, mirrored: a 7-tap conv to
``decoder_dim`` channels, per rate r a :class:`DecoderBlock` (Snake, a transposed conv of kernel 2r that
halves the channels, three residual units), then Snake, a 7-tap conv to one channel and tanh.
Between them a :class:`~ns2.codec.quantize.ResidualVectorQuantize`.

Module names mirror the official implementation (``encoder.block.*``, ``quantizer.quantizers.*``,
``decoder.model.*``) so official weight files load unchanged (see :mod:`ns2.codec.load`).
Odd rates make the decoder return slightly fewer than ``T * hop_length`` samples (each odd-rate
transposed conv yields ``r·L − 1``), as DAC does; pass ``length`` to :meth:`RVQCodec.decode` to crop/pad.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ns2.codec.base import Codec
from ns2.codec.harmonic import HARMONIC_DEFAULTS, HarmonicNoiseDecoder, PitchInput
from ns2.codec.layers import Snake1d, WNConv1d, WNConvTranspose1d
from ns2.codec.quantize import ResidualVectorQuantize

__all__ = ["RVQCodec", "CodecOutput", "Encoder", "Decoder", "EncoderBlock", "DecoderBlock", "ResidualUnit"]


class ResidualUnit(nn.Module):
    """x + conv1x1(snake(conv7_dilated(snake(x)))). [B, C, T] -> [B, C, T]."""

    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(dim),
            WNConv1d(dim, dim, kernel_size=7, dilation=dilation, padding=3 * dilation),
            Snake1d(dim),
            WNConv1d(dim, dim, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        trim = (x.shape[-1] - y.shape[-1]) // 2  # 0 with this padding; kept for odd configurations
        if trim > 0:
            x = x[..., trim:-trim]
        return x + y


class EncoderBlock(nn.Module):
    """Residual units at dim/2 channels, then a stride-``stride`` conv to ``dim`` channels."""

    def __init__(self, dim: int, stride: int):
        super().__init__()
        half = dim // 2
        self.block = nn.Sequential(
            ResidualUnit(half, dilation=1),
            ResidualUnit(half, dilation=3),
            ResidualUnit(half, dilation=9),
            Snake1d(half),
            WNConv1d(half, dim, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Encoder(nn.Module):
    """wav [B, 1, S] -> continuous latent [B, d_latent, S / prod(strides)]."""

    def __init__(self, d_model: int, strides: Sequence[int], d_latent: int):
        super().__init__()
        layers: list[nn.Module] = [WNConv1d(1, d_model, kernel_size=7, padding=3)]
        for stride in strides:
            d_model *= 2
            layers.append(EncoderBlock(d_model, stride))
        layers += [Snake1d(d_model), WNConv1d(d_model, d_latent, kernel_size=3, padding=1)]
        self.block = nn.Sequential(*layers)
        self.enc_dim = d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class DecoderBlock(nn.Module):
    """Snake, a transposed conv upsampling by ``stride`` (input_dim -> output_dim), residual units."""

    def __init__(self, input_dim: int, output_dim: int, stride: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(input_dim),
            WNConvTranspose1d(
                input_dim, output_dim, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)
            ),
            ResidualUnit(output_dim, dilation=1),
            ResidualUnit(output_dim, dilation=3),
            ResidualUnit(output_dim, dilation=9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Decoder(nn.Module):
    """latent [B, input_channel, T] -> wav [B, d_out, ≈T·prod(rates)] in (-1, 1)."""

    def __init__(self, input_channel: int, channels: int, rates: Sequence[int], d_out: int = 1):
        super().__init__()
        layers: list[nn.Module] = [WNConv1d(input_channel, channels, kernel_size=7, padding=3)]
        out_dim = channels
        for i, stride in enumerate(rates):
            in_dim, out_dim = channels // 2**i, channels // 2 ** (i + 1)
            layers.append(DecoderBlock(in_dim, out_dim, stride))
        layers += [Snake1d(out_dim), WNConv1d(out_dim, d_out, kernel_size=7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass
class CodecOutput:
    """What :meth:`RVQCodec.forward` returns (the inputs of the GAN trainer's losses).

    wav: [B, 1, S] reconstruction (cropped to the input length); z: [B, D, T] quantised latent;
    z_e: [B, D, T] encoder output; codes: [B, n_q, T]; latents: [B, n_q*d, T] projected stage inputs;
    commitment_loss, codebook_loss: scalars; controls: the per-frame controls of a decoder that
    predicts them (``log_f0``, ``voicing_logit`` [B, T], ...; see :mod:`ns2.codec.harmonic`), else None.
    """

    wav: torch.Tensor
    z: torch.Tensor
    z_e: torch.Tensor
    codes: torch.Tensor
    latents: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor
    controls: dict[str, torch.Tensor] | None = None


def _ints(xs: Sequence[int]) -> list[int]:
    return [int(x) for x in xs]


class RVQCodec(Codec):
    """DAC's encoder / residual VQ / decoder behind the :class:`~ns2.codec.base.Codec` interface.

    The constructor takes DAC's keyword arguments (the ``metadata['kwargs']`` of an official weight
    file), so ``RVQCodec(**kwargs)`` has exactly the parameters of the DAC model they describe.

    Args:
        encoder_dim: channels after the first encoder conv (doubled by every encoder block).
        encoder_rates: downsampling factors; their product is the hop length.
        latent_dim: D; default ``encoder_dim * 2**len(encoder_rates)`` (as DAC).
        decoder_dim: channels after the first decoder conv (halved by every decoder block).
        decoder_rates: upsampling factors; their product must equal the hop length.
        n_codebooks, codebook_size, codebook_dim, quantizer_dropout: see ResidualVectorQuantize.
        sample_rate: Hz.
        decoder: ``dac`` (DAC's decoder, built from ``decoder_dim``/``decoder_rates``) or ``harmonic``
            (:class:`~ns2.codec.harmonic.HarmonicNoiseDecoder`, a source-filter decoder that predicts F0;
            ``decoder_dim``/``decoder_rates`` are then unused). Not a DAC keyword: files with
            ``decoder: harmonic`` are read by this package only.
        decoder_options: keyword arguments of the harmonic decoder (defaults: ``HARMONIC_DEFAULTS``).
        explicit_pitch: add a projection of the input's Praat F0 to the encoder's latent
            (:class:`~ns2.codec.harmonic.PitchInput`), so the codes carry pitch as a parameter. Not a
            DAC keyword either (written only when True).
        factorized_codebooks: DAC's factorised, L2-normalised codebooks (True, the default) or
            NaturalSpeech 2's: codebooks in the latent space (``codebook_dim`` = ``latent_dim`` or
            null), plain Euclidean distance (:mod:`ns2.codec.quantize`). Not a DAC keyword (written
            only when False).
    """

    def __init__(
        self,
        encoder_dim: int = 64,
        encoder_rates: Sequence[int] = (2, 4, 8, 8),
        latent_dim: int | None = None,
        decoder_dim: int = 1536,
        decoder_rates: Sequence[int] = (8, 8, 4, 2),
        n_codebooks: int = 9,
        codebook_size: int = 1024,
        codebook_dim: int | Sequence[int] | None = 8,
        quantizer_dropout: float | bool = 0.0,
        sample_rate: int = 44100,
        decoder: str = "dac",
        decoder_options: dict | None = None,
        explicit_pitch: bool = False,
        factorized_codebooks: bool = True,
    ):
        super().__init__()
        encoder_rates, decoder_rates = _ints(encoder_rates), _ints(decoder_rates)
        if latent_dim is None:
            latent_dim = encoder_dim * 2 ** len(encoder_rates)
        hop = math.prod(encoder_rates)
        if decoder not in ("dac", "harmonic"):
            raise ValueError(f"decoder must be 'dac' or 'harmonic', got {decoder!r}")
        if decoder == "dac" and math.prod(decoder_rates) != hop:
            raise ValueError(f"decoder_rates {decoder_rates} do not multiply to the hop {hop} of {encoder_rates}")
        if decoder == "dac" and decoder_dim // 2 ** len(decoder_rates) < 1:
            raise ValueError(f"decoder_dim {decoder_dim} is too small to halve {len(decoder_rates)} times")
        if codebook_dim is None:
            codebook_dim = int(latent_dim)
        codebook_dim = int(codebook_dim) if isinstance(codebook_dim, int) else _ints(codebook_dim)
        # DAC's own kwargs, as plain Python: written as metadata by ns2.codec.load.save_codec
        self.kwargs = dict(
            encoder_dim=int(encoder_dim),
            encoder_rates=encoder_rates,
            latent_dim=int(latent_dim),
            decoder_dim=int(decoder_dim),
            decoder_rates=decoder_rates,
            n_codebooks=int(n_codebooks),
            codebook_size=int(codebook_size),
            codebook_dim=codebook_dim,
            quantizer_dropout=quantizer_dropout if isinstance(quantizer_dropout, bool) else float(quantizer_dropout),
            sample_rate=int(sample_rate),
        )
        if decoder != "dac":  # DAC's files keep exactly DAC's keywords
            options = {**HARMONIC_DEFAULTS, **dict(decoder_options or {})}
            unknown = sorted(set(options) - set(HARMONIC_DEFAULTS))
            if unknown:
                raise ValueError(f"decoder_options: unknown keys {unknown}; expected among {sorted(HARMONIC_DEFAULTS)}")
            self.kwargs.update(decoder=decoder, decoder_options={k: type(HARMONIC_DEFAULTS[k])(v) for k, v in options.items()})
        if explicit_pitch:
            self.kwargs["explicit_pitch"] = True
        if not factorized_codebooks:
            self.kwargs["factorized_codebooks"] = False
        self._sample_rate = int(sample_rate)
        self._hop_length = hop
        self._latent_dim = int(latent_dim)

        self.encoder = Encoder(int(encoder_dim), encoder_rates, int(latent_dim))
        self.pitch = PitchInput(int(latent_dim), hop, int(sample_rate)) if explicit_pitch else None
        self.quantizer = ResidualVectorQuantize(
            int(latent_dim), int(n_codebooks), int(codebook_size), codebook_dim, quantizer_dropout,
            factorized=bool(factorized_codebooks),
        )
        if decoder == "dac":
            self.decoder = Decoder(int(latent_dim), int(decoder_dim), decoder_rates)
        else:
            self.decoder = HarmonicNoiseDecoder(int(latent_dim), hop, int(sample_rate), **self.kwargs["decoder_options"])
        self.apply(_init_biases)

    # --- description ------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def hop_length(self) -> int:
        return self._hop_length

    @property
    def n_q(self) -> int:
        return self.quantizer.n_codebooks

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    # --- the codec --------------------------------------------------------------------------
    def encode_continuous(self, wav: torch.Tensor) -> torch.Tensor:
        """The encoder's output before quantisation. wav: [B, 1, S] -> z_e: [B, D, frames(S)]."""
        wav = self.preprocess(wav)
        z_e = self.encoder(wav)
        if self.pitch is not None:
            z_e = z_e + self.pitch(wav)
        return z_e

    def quantize(self, z: torch.Tensor, n_q: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """z: [B, D, T] -> (codes [B, n_q, T], z_q [B, D, T]). Deterministic (no quantiser dropout)
        unless the module is in training mode and n_q is None."""
        out = self.quantizer(z, n_q)
        return out.codes, out.z_q

    def encode(self, wav: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """wav: [B, 1, S] -> codes: [B, n_q, frames(S)] (long)."""
        return self.quantizer(self.encode_continuous(wav), self.n_q if n_q is None else n_q).codes

    def encode_latent(self, wav: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """The quantised latent (as DAC's ``encode`` returns it). [B, 1, S] -> [B, D, frames(S)]."""
        return self.quantizer(self.encode_continuous(wav), self.n_q if n_q is None else n_q).z_q

    def codes_to_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, n, T] -> z: [B, D, T] (DAC's ``quantizer.from_codes``)."""
        return self.quantizer.from_codes(codes)

    def decode(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """z: [B, D, T] -> wav: [B, 1, S]; S = T·hop for even rates, slightly less with odd ones (DAC's
        own output), or exactly ``length`` when given (cropped, or right-padded with zeros)."""
        return _fit(self.decoder(z), length)

    def layer_latent(self, codes_j: torch.Tensor, layer: int) -> torch.Tensor:
        """e_j = out_proj_j(codebook_j[codes_j]). codes_j: [B, T] -> [B, D, T]."""
        return self.quantizer.quantizers[layer].embed(codes_j)

    def codebook_logits(self, residual: torch.Tensor, layer: int, metric: str = "latent") -> torch.Tensor:
        """``metric="latent"``: −‖residual − out_proj_j(codebook_j)‖² (latent space); ``"quantizer"``:
        −‖normalize(in_proj_j(residual)) − normalize(codebook_j)‖² (DAC's search; in [−4, 0]). The
        same for Euclidean codebooks. [B, D, T] -> [B, K, T] (see VectorQuantize.logits)."""
        return self.quantizer.quantizers[layer].logits(residual, metric)

    def forward(self, wav: torch.Tensor, n_q: int | None = None) -> CodecOutput:
        """Reconstruct audio: preprocess, encode, quantise (dropout in training), decode, crop to S."""
        length = wav.shape[-1]
        z_e = self.encode_continuous(wav)
        q = self.quantizer(z_e, n_q)
        controls = None
        if getattr(self.decoder, "predicts_f0", False):
            controls = self.decoder.controls(q.z_q)
            wav_hat = _fit(self.decoder.synthesize(controls), length)
        else:
            wav_hat = self.decode(q.z_q, length)
        return CodecOutput(wav_hat, q.z_q, z_e, q.codes, q.latents, q.commitment_loss, q.codebook_loss, controls)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.kwargs.items())

    def __reduce_ex__(self, protocol):
        # Parametrised (weight-normalised) modules refuse to pickle; rebuild from kwargs + state dict
        # instead, so torch.save(model), deepcopy and spawn-based multiprocessing work.
        return _rebuild, (type(self), self.kwargs, self.state_dict(), self.training, self._frozen)


def _fit(wav: torch.Tensor, length: int | None) -> torch.Tensor:
    """Crop or right-pad wav [..., S] to ``length`` samples (unchanged when None)."""
    if length is None:
        return wav
    length = int(length)
    return wav[..., :length] if wav.shape[-1] >= length else F.pad(wav, (0, length - wav.shape[-1]))


def _rebuild(cls, kwargs, state, training, frozen):
    codec = cls(**kwargs)
    codec.load_state_dict(state)
    first = next(iter(state.values()), None)
    if first is not None:
        codec.to(first.device)
    codec.train(training)
    return codec.freeze() if frozen else codec


def _init_biases(m: nn.Module) -> None:
    # DAC's init_weights sets trunc_normal(0.02) on the *computed* weight of weight-normalised convs,
    # which the next forward recomputes from g and v, so in effect only zeroes the Conv1d biases.
    # We reproduce that effective initialisation: PyTorch's default weights, zero Conv1d biases.
    if isinstance(m, nn.Conv1d) and m.bias is not None:
        nn.init.zeros_(m.bias)
