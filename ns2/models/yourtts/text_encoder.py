"""The text encoder of VITS / YourTTS: token embeddings (+ a language embedding), a relative-position
Transformer, and a projection to the prior's statistics.

VITS (Kim et al. 2021, §2.5.1) encodes phonemes with the Glow-TTS Transformer encoder, whose self-attention
adds learned *relative* position embeddings for keys and values (Shaw et al. 2018) within a window of ±4
tokens instead of absolute positions; a 1x1 convolution then gives the prior ``N(m_p, exp(logs_p)²)`` of each
token (VITS eq. 4-5: ``p(z|c) = N(f_θ(z); μ_θ(c), σ_θ(c))``, expanded to frames by the alignment). YourTTS
(Casanova et al. 2022, §2) concatenates a 4-d trainable language embedding to every token embedding, so the
Transformer is ``hidden + lang_dim`` wide, uses 10 layers (VITS: 6) and keeps ``m_p``, ``logs_p`` at ``hidden``.

Shapes are channel-first: ``tokens: [B, L]``, ``x: [B, C, L]``, ``mask: [B, 1, L]`` (1.0 on valid tokens).
One post-LayerNorm block::

    x = LN_1(x + Dropout(RelAttn(x)))            scores = (q kᵀ + q E_kᵀ[j-i]) / √d, E_k zero beyond ±window
    x = LN_2(x + Dropout(FFN(x)))                 out    = p v + Σ_j p_ij E_v[j-i]
    FFN(x) = Conv_k(Dropout(ReLU(Conv_k(x · mask))) · mask) · mask

Padded keys get a score of -1e4 (probability exactly 0), padded positions are zero before every
convolution, so a sequence's output does not depend on the padding it is batched with.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ns2.modules.conv import ChannelLayerNorm
from ns2.modules.dropout import Dropout
from ns2.modules.masks import sequence_mask

__all__ = ["RelativePositionMultiHeadAttention", "FeedForwardNetwork", "RelativePositionTransformer", "TextEncoder"]


def _relative_index(length: int, window: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(idx, valid), both [L, L]: idx[i, j] = (j - i) + window clamped to [0, 2·window]; valid: |j - i| <= window."""
    pos = torch.arange(length, device=device)
    rel = pos[None, :] - pos[:, None]
    return (rel + window).clamp(0, 2 * window), rel.abs() <= window


class RelativePositionMultiHeadAttention(nn.Module):
    """Self-attention with relative key/value embeddings shared by the heads.

    x: [B, C, L], attn_mask: [B, 1, L, L] (1.0 where query i may see key j) -> [B, C, L].
    ``emb_rel_k``, ``emb_rel_v``: [1, 2·window + 1, C / heads], row ``r`` for the offset ``j - i = r - window``.
    """

    def __init__(self, channels: int, num_heads: int, window_size: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels {channels} must be divisible by heads {num_heads}")
        self.num_heads = num_heads
        self.k_channels = channels // num_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.drop = Dropout(dropout)
        std = self.k_channels**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        return x.view(b, self.num_heads, self.k_channels, t).transpose(2, 3)  # [B, h, L, d]

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        b, c, length = x.shape
        w = self.window_size
        q, k, v = self._heads(self.conv_q(x)), self._heads(self.conv_k(x)), self._heads(self.conv_v(x))
        q = q / math.sqrt(self.k_channels)
        idx, valid = _relative_index(length, w, x.device)

        # key offsets: q_i · E_k[j - i]  (zero beyond the window)
        rel_k = q @ self.emb_rel_k.unsqueeze(0).transpose(-2, -1)  # [B, h, L, 2w+1]
        rel_k = rel_k.gather(-1, idx.expand(b, self.num_heads, length, length)) * valid
        scores = (q @ k.transpose(-2, -1) + rel_k).masked_fill(attn_mask == 0, -1e4)
        p = self.drop(torch.softmax(scores, dim=-1))  # [B, h, L, L]

        # value offsets: Σ_j p_ij E_v[j - i] = Σ_r p[i, i + r - w] E_v[r]
        pos = torch.arange(length, device=x.device)[:, None] + torch.arange(2 * w + 1, device=x.device) - w
        in_range = (pos >= 0) & (pos < length)
        p_rel = p.gather(-1, pos.clamp(0, length - 1).expand(b, self.num_heads, length, 2 * w + 1)) * in_range
        out = p @ v + p_rel @ self.emb_rel_v.unsqueeze(0)  # [B, h, L, d]
        return self.conv_o(out.transpose(2, 3).reshape(b, c, length))


class FeedForwardNetwork(nn.Module):
    """Two 'same' convolutions with a ReLU. x: [B, C, L], mask: [B, 1, L] -> [B, C, L]."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"FFN kernel_size must be odd, got {kernel_size}")
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.conv_1(x * mask)))
        return self.conv_2(x * mask) * mask


class RelativePositionTransformer(nn.Module):
    """``num_layers`` post-LN blocks of relative self-attention + conv FFN.

    x: [B, C, L], mask: [B, 1, L] -> [B, C, L].
    """

    def __init__(self, channels: int, filter_channels: int, num_heads: int, num_layers: int, kernel_size: int = 3,
                 dropout: float = 0.0, window_size: int = 4) -> None:
        super().__init__()
        self.drop = Dropout(dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(num_layers):
            self.attn_layers.append(RelativePositionMultiHeadAttention(channels, num_heads, window_size, dropout))
            self.norm_layers_1.append(ChannelLayerNorm(channels))
            self.ffn_layers.append(FeedForwardNetwork(channels, filter_channels, kernel_size, dropout))
            self.norm_layers_2.append(ChannelLayerNorm(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, L, L]
        for attn, norm_1, ffn, norm_2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = x * mask
            x = norm_1(x + self.drop(attn(x, attn_mask)))
            x = norm_2(x + self.drop(ffn(x, mask)))
        return x * mask


class TextEncoder(nn.Module):
    """tokens [B, L], lengths [B], lang_emb [B, lang_dim] or None ->
    (x [B, hidden + lang_dim, L], m_p [B, out, L], logs_p [B, out, L], mask [B, 1, L]).

    The embedding is scaled by ``√hidden`` (the width *before* the language channels, as Coqui's YourTTS does);
    the language embedding is concatenated unscaled.
    """

    def __init__(self, vocab_size: int, out_channels: int, hidden_channels: int, filter_channels: int,
                 num_heads: int, num_layers: int, kernel_size: int = 3, dropout: float = 0.1, lang_dim: int = 0,
                 window_size: int = 4) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.lang_dim = lang_dim
        self.channels = hidden_channels + lang_dim
        self.emb = nn.Embedding(vocab_size, hidden_channels)
        nn.init.normal_(self.emb.weight, 0.0, hidden_channels**-0.5)
        self.encoder = RelativePositionTransformer(self.channels, filter_channels, num_heads, num_layers,
                                                   kernel_size, dropout, window_size)
        self.proj = nn.Conv1d(self.channels, 2 * out_channels, 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, lang_emb: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.emb(tokens) * math.sqrt(self.hidden_channels)  # [B, L, hidden]
        if self.lang_dim:
            if lang_emb is None:
                raise ValueError(f"this text encoder takes a {self.lang_dim}-d language embedding; got None")
            x = torch.cat([x, lang_emb[:, None, :].to(x.dtype).expand(-1, x.shape[1], -1)], dim=-1)
        x = x.transpose(1, 2)  # [B, C, L]
        mask = sequence_mask(lengths, x.shape[2])[:, None, :].to(x.dtype)
        x = self.encoder(x * mask, mask)
        m, logs = (self.proj(x) * mask).split(self.out_channels, dim=1)
        return x, m, logs, mask
