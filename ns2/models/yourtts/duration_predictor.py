"""The duration predictors of VITS / YourTTS: the stochastic one (a flow over log-durations) and a plain one.

**Stochastic duration predictor** (VITS, Kim et al. 2021, §2.3 and App. B). The durations ``d`` [B, 1, L]
(frames per token, from the monotonic alignment) are modelled by a normalizing flow conditioned on the
(detached) text hidden states. Integer durations are made continuous by *variational dequantization*
(``d - u``, ``u ∈ [0, 1)``) and the flow is made two-channel by *variational data augmentation* (an extra
channel ``ν``); both ``u`` and ``ν`` come from a posterior flow ``q(u, ν | d, c)``. Training minimises a
variational upper bound on ``-log p(d | c)`` (VITS eq. 8-9)::

    e_q ~ N(0, I) [B, 2, L];   (z_u, ν) = g_post(e_q | c + h_d);   u = sigmoid(z_u)
    -log p(d | c) <= -log p_θ(log(d - u), ν | c) - log|∂ log(d - u) / ∂ d| + log q(u, ν | d, c)

``g_post`` (``post_flows``) and the main flow (``flows``) are each an :class:`ElementwiseAffine` followed by 4
:class:`ConvFlow` (neural-spline couplings, :mod:`ns2.models.yourtts.transforms`) with a channel flip after
each; :class:`Log` maps ``d - u`` to the log domain. The condition ``c`` is ``Proj(DDSConv(Pre(x) + Cond(g) +
CondLang(lang)))``: YourTTS (Casanova et al. 2022, §2) adds the speaker embedding (``cond``) and the
language embedding (``cond_lang``) there. Inference draws ``z ~ N(0, noise_scale² I)`` and runs the main flow
backwards; its first channel is ``log d``. The first ``ConvFlow`` of the main flow only moves the ``ν`` channel,
which inference discards, so the reverse pass skips it (as the VITS reference does).

**Duration predictor** (VITS's ``use_sdp=False``, Glow-TTS's predictor): two conv + ReLU + LayerNorm layers
and a projection regressing ``log d`` (trained with an MSE on ``log(d + 1e-6)``, outside this module).

Shapes: ``x: [B, C, L]`` text hidden states, ``mask: [B, 1, L]``, ``g: [B, gin, 1]``, ``lang_emb: [B, lang_dim]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ns2.models.yourtts.transforms import piecewise_rational_quadratic
from ns2.modules.conv import ChannelLayerNorm
from ns2.modules.dropout import Dropout

__all__ = ["DilatedDepthSeparableConv", "ElementwiseAffine", "Log", "ConvFlow", "StochasticDurationPredictor",
           "DurationPredictor"]

_LOG_2PI = math.log(2 * math.pi)


class DilatedDepthSeparableConv(nn.Module):
    """VITS's DDSConv: residual layers of depthwise conv (dilation ``k^i``) -> LN -> GELU -> 1x1 -> LN -> GELU.

    x: [B, C, L], mask: [B, 1, L], g: [B, C, L or 1] added to the input, or None -> [B, C, L].
    """

    def __init__(self, channels: int, kernel_size: int, num_layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = Dropout(dropout)
        self.convs_sep = nn.ModuleList()
        self.convs_1x1 = nn.ModuleList()
        self.norms_1 = nn.ModuleList()
        self.norms_2 = nn.ModuleList()
        for i in range(num_layers):
            dilation = kernel_size**i
            self.convs_sep.append(nn.Conv1d(channels, channels, kernel_size, groups=channels, dilation=dilation,
                                            padding=dilation * (kernel_size - 1) // 2))
            self.convs_1x1.append(nn.Conv1d(channels, channels, 1))
            self.norms_1.append(ChannelLayerNorm(channels))
            self.norms_2.append(ChannelLayerNorm(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        if g is not None:
            x = x + g
        for sep, norm_1, one, norm_2 in zip(self.convs_sep, self.norms_1, self.convs_1x1, self.norms_2):
            y = F.gelu(norm_1(sep(x * mask)))
            y = F.gelu(norm_2(one(y)))
            x = x + self.drop(y)
        return x * mask


class ElementwiseAffine(nn.Module):
    """y = x · exp(log_scale) + translation per channel. x: [B, C, L] -> (y [B, C, L], log-det [B])."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.translation = nn.Parameter(torch.zeros(channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(channels, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.sum(self.log_scale * mask, [1, 2])
        if reverse:
            return (x - self.translation) * torch.exp(-self.log_scale) * mask, -logdet
        return (x * torch.exp(self.log_scale) + self.translation) * mask, logdet


class Log(nn.Module):
    """y = log(max(x, 1e-5)) (no parameters). x: [B, C, L] -> (y, log-det [B] = Σ -y)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if reverse:
            return torch.exp(x) * mask, torch.sum(x * mask, [1, 2])
        y = torch.log(torch.clamp_min(x, 1e-5)) * mask
        return y, torch.sum(-y, [1, 2])


class ConvFlow(nn.Module):
    """A neural-spline coupling: the second half of the channels goes through a rational-quadratic spline
    whose bins come from the first half (via DDSConv, conditioned on ``g``).

    x: [B, C, L], mask: [B, 1, L], g: [B, filter, L] or None -> (y [B, C, L], log-det [B]).
    ``proj`` is zero-initialised: equal bins, interior knot derivatives ``softplus(0) + 1e-3`` (close to, not
    exactly, the identity).
    """

    def __init__(self, in_channels: int, filter_channels: int, kernel_size: int, num_layers: int,
                 num_bins: int = 10, tail_bound: float = 5.0) -> None:
        super().__init__()
        self.num_bins = num_bins
        self.tail_bound = tail_bound
        self.filter_channels = filter_channels
        self.half_channels = in_channels // 2
        self.pre = nn.Conv1d(self.half_channels, filter_channels, 1)
        self.convs = DilatedDepthSeparableConv(filter_channels, kernel_size, num_layers, dropout=0.0)
        self.proj = nn.Conv1d(filter_channels, self.half_channels * (3 * num_bins - 1), 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        x0, x1 = x.split(self.half_channels, dim=1)
        h = self.proj(self.convs(self.pre(x0), mask, g=g)) * mask
        b, c, t = x0.shape
        h = h.reshape(b, c, -1, t).permute(0, 1, 3, 2)  # [B, C/2, L, 3K - 1]
        k, scale = self.num_bins, math.sqrt(self.filter_channels)
        x1, logabsdet = piecewise_rational_quadratic(
            x1, h[..., :k] / scale, h[..., k:2 * k] / scale, h[..., 2 * k:], inverse=reverse,
            tail_bound=self.tail_bound)
        return torch.cat([x0, x1], dim=1) * mask, torch.sum(logabsdet * mask, [1, 2])


def _flow_stack(filter_channels: int, kernel_size: int, num_flows: int) -> nn.ModuleList:
    return nn.ModuleList([ElementwiseAffine(2)] + [ConvFlow(2, filter_channels, kernel_size, num_layers=3)
                                                   for _ in range(num_flows)])


class StochasticDurationPredictor(nn.Module):
    """x [B, in, L] (detached text hidden), mask [B, 1, L], durations [B, 1, L] (training) ->
    nll [B] (the bound on -log p(d | c), summed over tokens); with ``reverse=True`` -> log-durations [B, 1, L].

    ``noise_scale`` scales the flow's noise: in reverse the prior sample (VITS infers with 0.8), in training
    the posterior's ``e_q`` (1.0 is VITS's estimator; 0.0 evaluates the bound at ``e_q = 0``, deterministically).
    """

    def __init__(self, in_channels: int, filter_channels: int = 192, kernel_size: int = 3, dropout: float = 0.5,
                 num_flows: int = 4, gin_channels: int = 0, lang_channels: int = 0) -> None:
        super().__init__()
        self.log_flow = Log()
        self.pre = nn.Conv1d(in_channels, filter_channels, 1)
        self.convs = DilatedDepthSeparableConv(filter_channels, kernel_size, num_layers=3, dropout=dropout)
        self.proj = nn.Conv1d(filter_channels, filter_channels, 1)
        self.flows = _flow_stack(filter_channels, kernel_size, num_flows)
        self.post_pre = nn.Conv1d(1, filter_channels, 1)
        self.post_convs = DilatedDepthSeparableConv(filter_channels, kernel_size, num_layers=3, dropout=dropout)
        self.post_proj = nn.Conv1d(filter_channels, filter_channels, 1)
        self.post_flows = _flow_stack(filter_channels, kernel_size, num_flows)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, filter_channels, 1)
        if lang_channels:
            self.cond_lang = nn.Conv1d(lang_channels, filter_channels, 1)

    def _condition(self, x, mask, g, lang_emb):
        x = self.pre(x)
        if g is not None and hasattr(self, "cond"):
            x = x + self.cond(g)
        if lang_emb is not None and hasattr(self, "cond_lang"):
            x = x + self.cond_lang(lang_emb[..., None])
        return self.proj(self.convs(x, mask)) * mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor, durations: torch.Tensor | None = None,
                g: torch.Tensor | None = None, lang_emb: torch.Tensor | None = None, reverse: bool = False,
                noise_scale: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        c = self._condition(x, mask, g, lang_emb)
        shape = (x.shape[0], 2, x.shape[2])
        noise = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype) * noise_scale
        if reverse:
            z = noise
            for flow in reversed(self.flows[2:]):
                z, _ = flow(torch.flip(z, [1]), mask, g=c, reverse=True)
            z, _ = self.flows[0](torch.flip(z, [1]), mask, reverse=True)  # flows[1] only moves ν
            return z[:, :1]

        if durations is None:
            raise ValueError("the stochastic duration predictor's training pass needs durations [B, 1, L]")
        # posterior q(u, ν | d, c)
        h = self.post_proj(self.post_convs(self.post_pre(durations), mask)) * mask
        e_q = noise * mask
        z_q, logdet_q = e_q, 0.0
        for i, flow in enumerate(self.post_flows):
            z_q, ld = flow(z_q, mask, g=c + h)
            logdet_q = logdet_q + ld
            if i > 0:
                z_q = torch.flip(z_q, [1])
        z_u, nu = z_q.split(1, dim=1)
        u = torch.sigmoid(z_u) * mask
        logdet_q = logdet_q + torch.sum((F.logsigmoid(z_u) + F.logsigmoid(-z_u)) * mask, [1, 2])
        log_q = torch.sum(-0.5 * (_LOG_2PI + e_q**2) * mask, [1, 2]) - logdet_q

        # prior flow p(log(d - u), ν | c)
        z0, logdet = self.log_flow((durations - u) * mask, mask)
        z = torch.cat([z0, nu], dim=1)
        for i, flow in enumerate(self.flows):
            z, ld = flow(z, mask, g=c)
            logdet = logdet + ld
            if i > 0:
                z = torch.flip(z, [1])
        nll = torch.sum(0.5 * (_LOG_2PI + z**2) * mask, [1, 2]) - logdet
        return nll + log_q


class DurationPredictor(nn.Module):
    """x [B, in, L], mask [B, 1, L] -> predicted log-durations [B, 1, L]; the call signature of
    :class:`StochasticDurationPredictor` (``durations``, ``reverse``, ``noise_scale``, ``generator`` are ignored)."""

    def __init__(self, in_channels: int, filter_channels: int = 256, kernel_size: int = 3, dropout: float = 0.5,
                 gin_channels: int = 0, lang_channels: int = 0) -> None:
        super().__init__()
        self.drop = Dropout(dropout)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_1 = ChannelLayerNorm(filter_channels, eps=1e-4)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_2 = ChannelLayerNorm(filter_channels, eps=1e-4)
        self.proj = nn.Conv1d(filter_channels, 1, 1)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, in_channels, 1)
        if lang_channels:
            self.cond_lang = nn.Conv1d(lang_channels, in_channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, durations: torch.Tensor | None = None,
                g: torch.Tensor | None = None, lang_emb: torch.Tensor | None = None, reverse: bool = False,
                noise_scale: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        if g is not None and hasattr(self, "cond"):
            x = x + self.cond(g)
        if lang_emb is not None and hasattr(self, "cond_lang"):
            x = x + self.cond_lang(lang_emb[..., None])
        x = self.drop(self.norm_1(torch.relu(self.conv_1(x * mask))))
        x = self.drop(self.norm_2(torch.relu(self.conv_2(x * mask))))
        return self.proj(x * mask) * mask
