"""UTMOS22 strong learner (Saeki et al. 2022), inference part, in the fairseq-free layout of its weights.

The released state dict ``utmos22_strong_step7459_v1.pt`` (a plain ``{name: tensor}``) belongs to a
module with these parts, whose attribute names are the state dict's keys:

- ``wav2vec2``: wav2vec 2.0 Base as in fairseq (7 conv layers 512 channels, group norm on the first,
  no conv bias; ``layer_norm`` + ``post_extract_proj`` 512 -> 768; convolutional position embedding
  kernel 128, 16 groups, weight norm over dim 2 (``pos_conv.0.weight_g`` / ``weight_v``), then
  ``encoder.layer_norm``; 12 post-LN transformer layers, 12 heads, FFN 3072, exact GELU);
- ``domain_emb`` ``[1, 128]`` and ``judge_emb`` ``[1, 128]``: the data-domain and listener embeddings
  chosen for inference, concatenated to every frame;
- ``blstm``: bidirectional LSTM 1024 -> 2 x 512; ``projection``: Linear 1024 -> 2048, ReLU, Linear -> 1;
- score = 2 * mean over frames of the projection + 3.

The phoneme encoder of the full strong learner is not part of these weights. Dimensions are
constructor arguments (defaults: the release) so tests can build a small model. What was checked
here: the key names and shapes match the published module definition; the real weights were not
available, so scores equal to the reference implementation are not verified.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UTMOS22Strong"]


class _WeightNormConv1d(nn.Module):
    """Conv1d whose weight is ``g * v / ||v||`` with the norm over every dim but 2 (fairseq's pos_conv)."""

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel_size) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.padding, self.groups = kernel_size // 2, groups

    def forward(self, x: Tensor) -> Tensor:
        v = self.weight_v
        w = self.weight_g * v / v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, w, self.bias, padding=self.padding, groups=self.groups)


class _ConvBlock(nn.Sequential):
    """conv (0), dropout (1), [group norm (2)], GELU: the fairseq feature-extractor block layout."""

    def __init__(self, n_in: int, n_out: int, k: int, stride: int, group_norm: bool):
        layers: list[nn.Module] = [nn.Conv1d(n_in, n_out, k, stride=stride, bias=False), nn.Dropout(0.0)]
        if group_norm:
            layers.append(nn.GroupNorm(n_out, n_out, affine=True))
        layers.append(nn.GELU())
        super().__init__(*layers)


class _FeatureExtractor(nn.Module):
    def __init__(self, conv_dim: int):
        super().__init__()
        spec = [(10, 5)] + [(3, 2)] * 4 + [(2, 2)] * 2
        self.conv_layers = nn.ModuleList(
            _ConvBlock(1 if i == 0 else conv_dim, conv_dim, k, s, group_norm=i == 0) for i, (k, s) in enumerate(spec)
        )

    def forward(self, wav: Tensor) -> Tensor:
        x = wav.unsqueeze(1)  # [B, 1, S]
        for block in self.conv_layers:
            x = block(x)
        return x  # [B, C, T]


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:  # [B, T, D]
        b, t, d = x.shape
        q, k, v = (
            p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class _EncoderLayer(nn.Module):
    """Post-LN transformer layer with fairseq's parameter names."""

    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.self_attn = _SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class _Encoder(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int, ffn: int, pos_kernel: int, pos_groups: int):
        super().__init__()
        self.pos_conv = nn.Sequential(_WeightNormConv1d(dim, pos_kernel, pos_groups))
        self.layer_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(_EncoderLayer(dim, heads, ffn) for _ in range(layers))
        self.pos_kernel = pos_kernel

    def forward(self, x: Tensor) -> Tensor:  # [B, T, D]
        pos = self.pos_conv(x.transpose(1, 2))
        if self.pos_kernel % 2 == 0:
            pos = pos[:, :, :-1]  # fairseq SamePad for an even kernel
        x = self.layer_norm(x + F.gelu(pos).transpose(1, 2))
        for layer in self.layers:
            x = layer(x)
        return x


class _Wav2Vec2(nn.Module):
    def __init__(self, conv_dim: int, dim: int, layers: int, heads: int, ffn: int, pos_kernel: int, pos_groups: int):
        super().__init__()
        self.feature_extractor = _FeatureExtractor(conv_dim)
        self.layer_norm = nn.LayerNorm(conv_dim)
        self.post_extract_proj = nn.Linear(conv_dim, dim)
        self.encoder = _Encoder(dim, layers, heads, ffn, pos_kernel, pos_groups)
        self.mask_emb = nn.Parameter(torch.zeros(dim))  # unused at inference; part of the state dict

    def forward(self, wav: Tensor) -> Tensor:
        x = self.feature_extractor(wav).transpose(1, 2)
        return self.encoder(self.post_extract_proj(self.layer_norm(x)))


class UTMOS22Strong(nn.Module):
    """``wav: [B, S]`` at 16 kHz -> predicted MOS ``[B]``."""

    sample_rate = 16000

    def __init__(
        self,
        *,
        conv_dim: int = 512,
        ssl_dim: int = 768,
        ssl_layers: int = 12,
        ssl_heads: int = 12,
        ssl_ffn: int = 3072,
        pos_kernel: int = 128,
        pos_groups: int = 16,
        domain_dim: int = 128,
        judge_dim: int = 128,
        rnn_hidden: int = 512,
        proj_hidden: int = 2048,
    ):
        super().__init__()
        self.wav2vec2 = _Wav2Vec2(conv_dim, ssl_dim, ssl_layers, ssl_heads, ssl_ffn, pos_kernel, pos_groups)
        self.domain_emb = nn.Parameter(torch.zeros(1, domain_dim), requires_grad=False)
        self.judge_emb = nn.Parameter(torch.zeros(1, judge_dim), requires_grad=False)
        self.blstm = nn.LSTM(ssl_dim + domain_dim + judge_dim, rnn_hidden, batch_first=True, bidirectional=True)
        self.projection = nn.Sequential(nn.Linear(2 * rnn_hidden, proj_hidden), nn.ReLU(), nn.Linear(proj_hidden, 1))

    def forward(self, wav: Tensor) -> Tensor:
        if wav.ndim != 2:
            raise ValueError(f"UTMOS22Strong: expected wav [B, S], got shape {tuple(wav.shape)}")
        units = self.wav2vec2(wav)  # [B, T, D]
        b, t, _ = units.shape
        cat = torch.cat(
            [units, self.domain_emb.unsqueeze(1).expand(b, t, -1), self.judge_emb.unsqueeze(1).expand(b, t, -1)], dim=2
        )
        frame_scores = self.projection(self.blstm(cat)[0])  # [B, T, 1]
        return frame_scores.mean(dim=1).squeeze(1) * 2 + 3
