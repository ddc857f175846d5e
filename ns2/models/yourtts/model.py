"""YourTTS (Casanova et al. 2022): multilingual zero-shot multi-speaker VITS (Kim et al. 2021), as one nn.Module.

The boxes (one file each)::

    tokens ─ TextEncoder(+ lang emb) ─ h, prior N(m_p, exp(logs_p)²) per token ───┐
    spec ─ PosteriorEncoder(g) ─ z ~ N(m_q, exp(logs_q)²) ─ Flow(g) ─ z_p ────────┴─ MAS ─ path A [T, L]
                                 └─ random window ─ HiFi-GAN(g) ─ y_hat          durations d = Σ_t A
    h (detached), d, g, lang ─ (stochastic) duration predictor ─ bound on -log p(d | h)

Training (:meth:`YourTTS.forward`) returns what VITS's losses need (VITS eq. 10; the weights live with the losses):
the KL between the posterior through the flow and the alignment-expanded prior (eq. 3-4, from ``z_p, logs_q,
m_p, logs_p, spec_mask``), the duration predictor's bound (eq. 9, ``duration_nll``) or regression pair, and
the waveform window ``y_hat`` for the reconstruction and adversarial terms (its start ``wav_slice_start``, in
frames, to cut the same window of the target). Monotonic alignment search (VITS §2.2.1) maximises, under
no_grad, ``log N(z_p[:, t]; m_p[:, j], exp(logs_p[:, j])²)`` over monotonic paths (:meth:`YourTTS.align`).
Inference (:meth:`YourTTS.infer`) samples log-durations from the SDP, expands the prior, samples
``z_p ~ N(m_p, (noise_scale · σ_p)²)``, inverts the flow and decodes.

The speaker condition ``g`` is the external d-vector itself (YourTTS: 512-d, from an H/ASP speaker encoder),
L2-normalised first as Coqui does (``normalize_speaker``); it conditions the posterior encoder, the flow, the
duration predictor and the decoder. The language embedding ``emb_l`` (4-d) is concatenated to the token
embeddings and conditions the duration predictor (``cond_lang``).

The alignment search is passed in (``maximum_path``, normally :func:`ns2.data.aligner.mas.maximum_path`):
``ns2.models`` is a pure package and may not import ``ns2.data`` (tests/test_layering.py), so whoever builds
the model for training (the LightningModule, the checkpoint adapter) hands it over.

Attribute names follow Coqui TTS's ``Vits`` (``TTS/tts/models/vits.py`` and the layers it builds), so a Coqui
YourTTS checkpoint loads by a small key mapping. Differences (Coqui key -> ours)::

    <conv>.weight_g / <conv>.weight_v          -> <conv>.parametrizations.weight.original0 / .original1
        (torch.nn.utils.weight_norm vs torch.nn.utils.parametrizations.weight_norm; same shapes, dim 0; in the
         WN layers in_layers / res_skip_layers / cond_layer, and waveform_decoder.ups / resblocks.*.convs1 / convs2)
    text_encoder.encoder.norm_layers_{1,2}.i.gamma / .beta      -> .weight / .bias   (LayerNorm2: [C], eps 1e-5)
    duration_predictor.{convs,post_convs}.norms_{1,2}.i.gamma / .beta and
    duration_predictor.{flows,post_flows}.k.convs.norms_{1,2}.i.gamma / .beta  -> .weight / .bias
    duration_predictor.norm_{1,2}.gamma / .beta ([1, C, 1], use_sdp=False)     -> .weight / .bias ([C], reshape)
    disc.*, emb_g.*, speaker-encoder keys       -> (none: no discriminator, no speaker table here)

Everything else has Coqui's name and shape: ``text_encoder.emb``, ``text_encoder.encoder.attn_layers.i.{conv_q,
conv_k, conv_v, conv_o, emb_rel_k, emb_rel_v}``, ``...ffn_layers.i.{conv_1, conv_2}``, ``text_encoder.proj``,
``posterior_encoder.{pre, enc, proj}``, ``flow.flows.i.{pre, enc, post}``, ``duration_predictor.{pre, convs, proj,
flows, post_pre, post_convs, post_proj, post_flows, cond, cond_lang}`` (``flows.0`` an ElementwiseAffine with
``translation`` / ``log_scale``, ``flows.1..4`` ConvFlows ``{pre, convs, proj}``), ``waveform_decoder.{conv_pre,
ups, resblocks, conv_post, cond_layer}`` (``conv_pre`` / ``conv_post`` without weight norm, ``conv_post`` without
bias, in both), ``emb_l``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ns2.models.yourtts.duration_predictor import DurationPredictor, StochasticDurationPredictor
from ns2.models.yourtts.flow import ResidualCouplingBlocks
from ns2.models.yourtts.generator import HifiganGenerator
from ns2.models.yourtts.posterior_encoder import PosteriorEncoder
from ns2.models.yourtts.text_encoder import TextEncoder
from ns2.modules.masks import sequence_mask

__all__ = ["YourTTS", "durations_to_path", "slice_segments"]

_LOG_2PI = math.log(2 * math.pi)

MaximumPath = Callable[..., torch.Tensor]


def durations_to_path(durations: torch.Tensor, frames: int) -> torch.Tensor:
    """durations [B, L] (frames per token, int) -> monotonic one-hot path [B, T = frames, L] (float)."""
    end = torch.cumsum(durations, dim=1)
    start = end - durations
    t = torch.arange(frames, device=durations.device)[None, :, None]
    return ((t >= start[:, None, :]) & (t < end[:, None, :])).float()


def slice_segments(x: torch.Tensor, start: torch.Tensor, size: int) -> torch.Tensor:
    """x [B, C, T], start [B] (frames) -> x[b, :, start_b : start_b + size] [B, C, size], zero past the end."""
    idx = start[:, None].long() + torch.arange(size, device=x.device)[None, :]  # [B, size]
    padded = F.pad(x, (0, size))
    return padded.gather(2, idx[:, None, :].expand(-1, x.shape[1], -1))


class YourTTS(nn.Module):
    """VITS with YourTTS's speaker (d-vector) and language conditioning. Sizes default to the paper's.

    Args:
        vocab_size: number of token ids.
        hidden, ffn, heads, layers, kernel_size, dropout: the text encoder (192, 768, 2, 10, 3, 0.1); ``hidden``
            is also the width of ``z`` and of the WaveNets.
        spec_channels: linear-spectrogram bins (``n_fft / 2 + 1``).
        posterior_layers, posterior_kernel_size: the posterior WaveNet (16, 5).
        flow_couplings, flow_layers, flow_kernel_size: the flow (4 couplings of 4 WaveNet layers, kernel 5).
        use_sdp: stochastic duration predictor (True) or the deterministic one.
        dp_channels, dp_dropout: duration-predictor width (None: 192 for the SDP, 256 otherwise) and dropout.
        speaker_dim: d-vector size (512); 0 = no speaker conditioning.
        num_languages, lang_dim: language table (``lang_dim`` 4); either 0 = no language embedding.
        upsample_rates, upsample_kernel_sizes, upsample_initial_channel, resblock_kernel_sizes,
            resblock_dilation_sizes: the HiFi-GAN generator; ``prod(upsample_rates)`` must equal ``hop_length``.
        normalize_speaker: L2-normalise the d-vector before use (Coqui's YourTTS does).
        detach_dp_input: stop the duration loss's gradient into the text encoder and embeddings (VITS, Coqui).
        maximum_path: the alignment search, ``(log_p [B, T, L], frame_lengths, token_lengths, strict) ->
            path [B, T, L]`` (see the module docstring); needed by :meth:`forward` only.
    """

    def __init__(self, vocab_size: int, hidden: int = 192, ffn: int = 768, heads: int = 2, layers: int = 10,
                 kernel_size: int = 3, dropout: float = 0.1, spec_channels: int = 513, posterior_layers: int = 16,
                 posterior_kernel_size: int = 5, flow_couplings: int = 4, flow_layers: int = 4,
                 flow_kernel_size: int = 5, use_sdp: bool = True, dp_channels: int | None = None,
                 dp_dropout: float = 0.5, speaker_dim: int = 512, num_languages: int = 0, lang_dim: int = 4,
                 upsample_rates: Sequence[int] = (8, 8, 2, 2), upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
                 upsample_initial_channel: int = 512, resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
                 resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
                 hop_length: int | None = None, normalize_speaker: bool = True, detach_dp_input: bool = True,
                 maximum_path: MaximumPath | None = None) -> None:
        super().__init__()
        self.hop_length = math.prod(upsample_rates)
        if hop_length is not None and hop_length != self.hop_length:
            raise ValueError(f"upsample rates {list(upsample_rates)} give a hop of {self.hop_length}, not {hop_length}")
        self.use_sdp = use_sdp
        self.speaker_dim = speaker_dim
        self.normalize_speaker = normalize_speaker
        self.detach_dp_input = detach_dp_input
        self.maximum_path = maximum_path
        self.lang_dim = lang_dim if num_languages > 0 and lang_dim > 0 else 0
        self.emb_l = None
        if self.lang_dim:
            self.emb_l = nn.Embedding(num_languages, self.lang_dim)
            nn.init.xavier_uniform_(self.emb_l.weight)

        self.text_encoder = TextEncoder(vocab_size, hidden, hidden, ffn, heads, layers, kernel_size, dropout,
                                        lang_dim=self.lang_dim)
        text_width = self.text_encoder.channels
        self.posterior_encoder = PosteriorEncoder(spec_channels, hidden, hidden, posterior_kernel_size, 1,
                                                  posterior_layers, gin_channels=speaker_dim)
        self.flow = ResidualCouplingBlocks(hidden, hidden, flow_kernel_size, 1, flow_layers, flow_couplings,
                                           gin_channels=speaker_dim)
        if use_sdp:
            self.duration_predictor = StochasticDurationPredictor(
                text_width, dp_channels or 192, 3, dp_dropout, 4, gin_channels=speaker_dim,
                lang_channels=self.lang_dim)
        else:
            self.duration_predictor = DurationPredictor(
                text_width, dp_channels or 256, 3, dp_dropout, gin_channels=speaker_dim, lang_channels=self.lang_dim)
        self.waveform_decoder = HifiganGenerator(
            hidden, upsample_rates, upsample_kernel_sizes, upsample_initial_channel, resblock_kernel_sizes,
            resblock_dilation_sizes, gin_channels=speaker_dim, hop_length=self.hop_length)

    # ------------------------------------------------------------------------------------------ conditions
    def speaker_condition(self, spk: torch.Tensor | None) -> torch.Tensor | None:
        """spk [B, speaker_dim] -> g [B, speaker_dim, 1] (L2-normalised if ``normalize_speaker``), or None."""
        if not self.speaker_dim:
            return None
        if spk is None:
            raise ValueError(f"this model is conditioned on a {self.speaker_dim}-d speaker embedding; got None")
        if spk.shape[-1] != self.speaker_dim:
            raise ValueError(f"speaker embedding must be [B, {self.speaker_dim}], got {tuple(spk.shape)}")
        g = F.normalize(spk, dim=-1) if self.normalize_speaker else spk
        return g[..., None]

    def language_embedding(self, lang: torch.Tensor | None) -> torch.Tensor | None:
        """lang [B] long -> [B, lang_dim], or None without a language table."""
        if self.emb_l is None:
            return None
        if lang is None:
            raise ValueError("this model has a language embedding; pass lang [B] (language ids)")
        return self.emb_l(lang)

    # ------------------------------------------------------------------------------------------ alignment
    @torch.no_grad()
    def align(self, z_p: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor, spec_mask: torch.Tensor,
              text_mask: torch.Tensor) -> torch.Tensor:
        """MAS over log N(z_p[:, t]; m_p[:, j], exp(logs_p[:, j])²) summed over channels.

        z_p [B, C, T], m_p, logs_p [B, C, L], spec_mask [B, 1, T], text_mask [B, 1, L] -> path [B, T, L].
        Items with fewer frames than tokens get the aligner's diagonal path (``strict=False``).
        """
        if self.maximum_path is None:
            raise RuntimeError("YourTTS needs maximum_path=ns2.data.aligner.mas.maximum_path to align "
                               "(ns2.models may not import ns2.data; the caller passes it in)")
        z_p, m_p, logs_p = z_p.float(), m_p.float(), logs_p.float()
        inv_var = torch.exp(-2 * logs_p)  # [B, C, L]
        log_p = (torch.einsum("bct,bcl->btl", -0.5 * z_p**2, inv_var)
                 + torch.einsum("bct,bcl->btl", z_p, m_p * inv_var)
                 + torch.sum(-0.5 * _LOG_2PI - logs_p - 0.5 * m_p**2 * inv_var, dim=1)[:, None, :])
        frames = spec_mask[:, 0].sum(-1).round().long()
        tokens = text_mask[:, 0].sum(-1).round().long()
        return self.maximum_path(log_p, frames, tokens, strict=False).to(z_p.dtype)

    # ------------------------------------------------------------------------------------------ training
    def forward(self, tokens: torch.Tensor, token_lengths: torch.Tensor, spec: torch.Tensor,
                spec_lengths: torch.Tensor, spk: torch.Tensor | None, lang: torch.Tensor | None = None,
                segment_frames: int = 32, segment_start: torch.Tensor | None = None,
                noise_scale: float = 1.0, noise_scale_dp: float = 1.0,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One training pass.

        tokens [B, L], token_lengths [B], spec [B, F, T] (linear magnitude), spec_lengths [B], spk [B, speaker_dim],
        lang [B] (long) or None. ``segment_frames``: the decoder's window; ``segment_start`` [B] (frames) fixes its
        start, else it is drawn uniformly in [0, max(length - segment_frames, 0)] (``generator`` seeds it, the
        posterior sample and the SDP noise). ``noise_scale`` / ``noise_scale_dp`` scale the posterior's ε and the
        SDP posterior's noise (1.0 in training; 0.0 makes the pass deterministic).

        Returns a dict:
            y_hat [B, 1, segment_frames · hop] (zero past each utterance's end), wav_slice_start [B] (frames; × hop
            for samples), segment_mask [B, 1, segment_frames];
            z_q, m_q, logs_q [B, C, T] (posterior), z_p [B, C, T] (= flow(z_q)), m_p, logs_p [B, C, T] (prior
            expanded by the alignment), spec_mask [B, 1, T], text_mask [B, 1, L];
            attn [B, 1, T, L] (MAS path), durations [B, L] (long, frames per token);
            duration_nll [B] (use_sdp) or log_durations, log_durations_target [B, 1, L] (deterministic DP).
        """
        g = self.speaker_condition(spk)
        lang_emb = self.language_embedding(lang)
        h, m_p, logs_p, text_mask = self.text_encoder(tokens, token_lengths, lang_emb)
        z, m_q, logs_q, spec_mask = self.posterior_encoder(spec, spec_lengths, g, noise_scale, generator)
        z_p = self.flow(z, spec_mask, g=g)

        path = self.align(z_p, m_p, logs_p, spec_mask, text_mask)  # [B, T, L]
        w = path.sum(1)[:, None, :]  # [B, 1, L]
        out: dict[str, torch.Tensor] = {"attn": path[:, None], "durations": w[:, 0].round().long()}

        detach = self.detach_dp_input
        dp_args = dict(g=None if g is None else (g.detach() if detach else g),
                       lang_emb=None if lang_emb is None else (lang_emb.detach() if detach else lang_emb))
        h_dp = h.detach() if detach else h
        if self.use_sdp:
            out["duration_nll"] = self.duration_predictor(h_dp, text_mask, w, noise_scale=noise_scale_dp,
                                                          generator=generator, **dp_args)
        else:
            out["log_durations"] = self.duration_predictor(h_dp, text_mask, **dp_args)
            out["log_durations_target"] = torch.log(w + 1e-6) * text_mask

        path_t = path.transpose(1, 2)  # [B, L, T]
        out.update(z_q=z, m_q=m_q, logs_q=logs_q, z_p=z_p, m_p=torch.bmm(m_p, path_t),
                   logs_p=torch.bmm(logs_p, path_t), spec_mask=spec_mask, text_mask=text_mask)

        if segment_start is None:
            room = (spec_lengths - segment_frames).clamp_min(0) + 1
            u = torch.rand(room.shape, generator=generator, device=room.device)
            segment_start = torch.minimum((u * room).long(), room - 1)
        segment_start = segment_start.long().to(z.device)
        seg_mask = slice_segments(spec_mask, segment_start, segment_frames)
        y_hat = self.waveform_decoder(slice_segments(z, segment_start, segment_frames), g=g, mask=seg_mask)
        out.update(y_hat=y_hat * seg_mask.repeat_interleave(self.hop_length, dim=2),
                   wav_slice_start=segment_start, segment_mask=seg_mask)
        return out

    # ------------------------------------------------------------------------------------------ inference
    def infer(self, tokens: torch.Tensor, token_lengths: torch.Tensor, spk: torch.Tensor | None,
              lang: torch.Tensor | None = None, noise_scale: float = 0.667, length_scale: float = 1.0,
              noise_scale_dp: float = 0.8, max_frames: int | None = None,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Text to waveform. tokens [B, L], token_lengths [B], spk [B, speaker_dim], lang [B] or None ->

        dict(wav [B, 1, S] (zero past each item's end), wav_lengths [B] (samples = frames · hop), durations [B, L]
        (long, ``ceil(exp(log d) · length_scale)``), mask [B, 1, T] (frames), attn [B, 1, T, L]). Each item has
        ``max(Σ durations, 1)`` frames, capped at ``max_frames``. ``generator`` seeds the SDP and prior noise.
        """
        g = self.speaker_condition(spk)
        lang_emb = self.language_embedding(lang)
        h, m_p, logs_p, text_mask = self.text_encoder(tokens, token_lengths, lang_emb)
        logw = self.duration_predictor(h, text_mask, g=g, lang_emb=lang_emb, reverse=True,
                                       noise_scale=noise_scale_dp, generator=generator)
        durations = torch.ceil(torch.exp(logw) * text_mask * length_scale)[:, 0].long()  # [B, L]
        frames = durations.sum(1).clamp_min(1)
        if max_frames is not None:
            frames = frames.clamp_max(max_frames)
        spec_mask = sequence_mask(frames)[:, None, :].to(m_p.dtype)  # [B, 1, T]
        path = durations_to_path(durations, spec_mask.shape[2]).to(m_p.dtype) * spec_mask[:, 0, :, None]
        path_t = path.transpose(1, 2)
        m, logs = torch.bmm(m_p, path_t), torch.bmm(logs_p, path_t)
        eps = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
        z_p = (m + eps * torch.exp(logs) * noise_scale) * spec_mask
        z = self.flow(z_p, spec_mask, g=g, reverse=True)
        wav = self.waveform_decoder(z, g=g, mask=spec_mask)
        wav = wav * spec_mask.repeat_interleave(self.hop_length, dim=2)
        return {"wav": wav, "wav_lengths": frames * self.hop_length, "durations": durations, "mask": spec_mask,
                "attn": path[:, None]}
