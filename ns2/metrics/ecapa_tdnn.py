"""WavLM-Large + ECAPA-TDNN speaker verification, loadable from the UniSpeech checkpoint.

The checkpoint ``wavlm_large_finetune.pth`` (UniSpeech ``downstreams/speaker_verification``, used by
VALL-E, NaturalSpeech 2/3 and Seed-TTS-eval for SIM) is ``{"model": state_dict, ...}`` with 711 tensors:

- ``feature_extract.model.*`` (488): the s3prl/UniSpeech WavLM-Large, fairseq parameter names;
- ``feature_weight`` ``[25]``: softmax weights of the 25 hidden states (CNN+position input, 24 layers);
- the ECAPA-TDNN head (``layer1`` .. ``layer4``, ``conv``, ``pooling``, ``bn``, ``linear``), 221 tensors;
- ``loss_calculator.projection.weight``: the AAM-softmax classifier of training, not used here.

The head below keeps the upstream module names (``Conv1dReluBn``, ``SE_Res2Block``, ``SE_Connect`` ...)
so its keys load unchanged; its arithmetic follows the upstream code (conv -> ReLU -> BN, Res2Net split
with 8 scales, SE bottleneck 128, attentive statistics pooling with tanh, 1536 aggregation channels,
256-d embedding). The WavLM encoder is transformers' ``WavLMModel``; :func:`convert_unispeech_state_dict`
renames the fairseq keys to it (the same renaming as transformers' own WavLM conversion script).

Hidden states are those the s3prl upstream exposed when the checkpoint was trained: the input of each
of the 24 transformer layers, then the encoder output after its final LayerNorm. They are captured with
hooks, not ``output_hidden_states``, whose meaning changed across transformers releases.

What was checked offline: the key names and tensor shapes, against a state dict written in the
upstream layout for a small config (``tests/metrics/test_sim.py``). The real checkpoint was not
available here, so equality of embeddings with the upstream code is not verified. Input waveform
normalisation (s3prl applies ``layer_norm`` over the waveform when the WavLM config says
``normalize``) is off by default and can be switched on with ``normalize_waveform`` in ``arch.json``.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["WAVLM_LARGE_CONFIG", "WavLMECAPA", "convert_unispeech_state_dict", "map_unispeech_key"]

#: transformers WavLMConfig arguments of WavLM Large as pre-trained by UniSpeech.
WAVLM_LARGE_CONFIG: dict[str, Any] = dict(
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    hidden_act="gelu",
    conv_dim=(512,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_bias=False,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    num_buckets=320,
    max_bucket_distance=800,
    layer_norm_eps=1e-5,
    apply_spec_augment=False,
    mask_time_prob=0.05,
    layerdrop=0.0,
)


# --- ECAPA-TDNN head (upstream module names kept: they are the checkpoint's keys) -----------------
class Conv1dReluBn(nn.Module):
    """``x: [B, C_in, T] -> [B, C_out, T]``: conv, ReLU, batch norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, 1, padding, dilation, bias=True)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(F.relu(self.conv(x)))


class Res2Conv1dReluBn(nn.Module):
    """Res2Net block: split channels in ``scale`` groups, each group after the first adds the previous output."""

    def __init__(self, channels: int, kernel_size: int, padding: int, dilation: int, scale: int):
        super().__init__()
        if channels % scale:
            raise ValueError(f"Res2Conv1dReluBn: expected channels divisible by scale, got {channels} and {scale}")
        self.scale = scale
        self.width = channels // scale
        self.nums = scale if scale == 1 else scale - 1
        self.convs = nn.ModuleList(
            nn.Conv1d(self.width, self.width, kernel_size, 1, padding, dilation, bias=True) for _ in range(self.nums)
        )
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(self.nums))

    def forward(self, x: Tensor) -> Tensor:
        pieces = torch.split(x, self.width, dim=1)
        out: list[Tensor] = []
        sp = pieces[0]
        for i in range(self.nums):
            sp = pieces[i] if i == 0 else sp + pieces[i]
            sp = self.bns[i](F.relu(self.convs[i](sp)))
            out.append(sp)
        if self.scale != 1:
            out.append(pieces[self.nums])
        return torch.cat(out, dim=1)


class SE_Connect(nn.Module):  # noqa: N801 (upstream name = checkpoint key)
    """Squeeze-excitation over channels: ``x * sigmoid(W2 relu(W1 mean_t(x)))``."""

    def __init__(self, channels: int, bottleneck: int = 128):
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def forward(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * s.unsqueeze(2)


class SE_Res2Block(nn.Module):  # noqa: N801
    """1x1 conv, Res2 dilated conv, 1x1 conv, SE, plus the residual."""

    def __init__(self, channels: int, kernel_size: int, padding: int, dilation: int, scale: int, bottleneck: int):
        super().__init__()
        self.Conv1dReluBn1 = Conv1dReluBn(channels, channels)
        self.Res2Conv1dReluBn = Res2Conv1dReluBn(channels, kernel_size, padding, dilation, scale)
        self.Conv1dReluBn2 = Conv1dReluBn(channels, channels)
        self.SE_Connect = SE_Connect(channels, bottleneck)

    def forward(self, x: Tensor) -> Tensor:
        return self.SE_Connect(self.Conv1dReluBn2(self.Res2Conv1dReluBn(self.Conv1dReluBn1(x)))) + x


class AttentiveStatsPool(nn.Module):
    """``x: [B, C, T] -> [B, 2C]``: attention-weighted mean and standard deviation over time."""

    def __init__(self, in_dim: int, attention_channels: int = 128):
        super().__init__()
        self.linear1 = nn.Conv1d(in_dim, attention_channels, kernel_size=1)
        self.linear2 = nn.Conv1d(attention_channels, in_dim, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
        mean = torch.sum(alpha * x, dim=2)
        var = torch.sum(alpha * x * x, dim=2) - mean * mean
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-9))], dim=1)


class WavLMECAPA(nn.Module):
    """``wav: [B, S]`` at 16 kHz -> speaker embedding ``[B, emb_dim]`` (not L2-normalised).

    ``wavlm_config`` holds transformers ``WavLMConfig`` arguments (default: :data:`WAVLM_LARGE_CONFIG`);
    ``channels`` / ``aggregation_channels`` / ``emb_dim`` default to the checkpoint's 512 / 1536 / 256.
    """

    def __init__(
        self,
        wavlm_config: Mapping[str, Any] | None = None,
        *,
        channels: int = 512,
        aggregation_channels: int = 1536,
        emb_dim: int = 256,
        scale: int = 8,
        se_bottleneck: int = 128,
        attention_channels: int = 128,
        normalize_waveform: bool = False,
    ):
        super().__init__()
        from transformers import WavLMConfig, WavLMModel

        cfg = WavLMConfig(**{**WAVLM_LARGE_CONFIG, **dict(wavlm_config or {})})
        self.wavlm = WavLMModel(cfg)
        self.normalize_waveform = normalize_waveform
        feat_dim = cfg.hidden_size
        self.feature_weight = nn.Parameter(torch.zeros(cfg.num_hidden_layers + 1))
        self.instance_norm = nn.InstanceNorm1d(feat_dim)
        self.layer1 = Conv1dReluBn(feat_dim, channels, kernel_size=5, padding=2)
        self.layer2 = SE_Res2Block(channels, 3, padding=2, dilation=2, scale=scale, bottleneck=se_bottleneck)
        self.layer3 = SE_Res2Block(channels, 3, padding=3, dilation=3, scale=scale, bottleneck=se_bottleneck)
        self.layer4 = SE_Res2Block(channels, 3, padding=4, dilation=4, scale=scale, bottleneck=se_bottleneck)
        self.conv = nn.Conv1d(channels * 3, aggregation_channels, kernel_size=1)
        self.pooling = AttentiveStatsPool(aggregation_channels, attention_channels)
        self.bn = nn.BatchNorm1d(aggregation_channels * 2)
        self.linear = nn.Linear(aggregation_channels * 2, emb_dim)

    def hidden_states(self, wav: Tensor) -> Tensor:
        """``wav: [B, S]`` -> ``[L + 1, B, T, D]``: each layer's input, then the encoder output."""
        captured: list[Tensor] = []
        hooks = []

        def pre(_m, args, kwargs):
            captured.append(args[0] if args else kwargs["hidden_states"])

        def post(_m, _args, output):
            captured.append(output[0] if isinstance(output, (tuple, list)) else output.last_hidden_state)

        enc = self.wavlm.encoder
        for layer in enc.layers:
            hooks.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        hooks.append(enc.register_forward_hook(post))
        try:
            self.wavlm(wav)
        finally:
            for h in hooks:
                h.remove()
        expected = len(enc.layers) + 1
        if len(captured) != expected:
            raise RuntimeError(f"WavLMECAPA: expected {expected} hidden states, captured {len(captured)}")
        return torch.stack(captured, dim=0)

    def forward(self, wav: Tensor) -> Tensor:
        if wav.ndim != 2:
            raise ValueError(f"WavLMECAPA: expected wav [B, S], got shape {tuple(wav.shape)}")
        if self.normalize_waveform:
            wav = F.layer_norm(wav, wav.shape[-1:])
        hs = self.hidden_states(wav)  # [L+1, B, T, D]
        w = torch.softmax(self.feature_weight, dim=-1).to(hs.dtype)
        x = (w[:, None, None, None] * hs).sum(dim=0)  # [B, T, D]
        x = self.instance_norm(x.transpose(1, 2) + 1e-6)  # [B, D, T]
        out1 = self.layer1(x)
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        out = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
        return self.linear(self.bn(self.pooling(out)))


# --- checkpoint conversion ------------------------------------------------------------------------
_PREFIX = "feature_extract.model."
_HEAD = ("feature_weight", "layer1.", "layer2.", "layer3.", "layer4.", "conv.", "pooling.", "bn.", "linear.")
_LAYER_RENAMES = (
    ("self_attn.relative_attention_bias.", "attention.rel_attn_embed."),
    ("self_attn.grep_linear.", "attention.gru_rel_pos_linear."),
    ("self_attn.grep_a", "attention.gru_rel_pos_const"),
    ("self_attn.q_proj.", "attention.q_proj."),
    ("self_attn.k_proj.", "attention.k_proj."),
    ("self_attn.v_proj.", "attention.v_proj."),
    ("self_attn.out_proj.", "attention.out_proj."),
    ("self_attn_layer_norm.", "layer_norm."),
    ("fc1.", "feed_forward.intermediate_dense."),
    ("fc2.", "feed_forward.output_dense."),
    ("final_layer_norm.", "final_layer_norm."),
)


def map_unispeech_key(key: str, target_keys: set[str]) -> str | None:
    """The :class:`WavLMECAPA` key for an upstream checkpoint key; None for keys not used at inference."""
    if key.startswith("loss_calculator."):
        return None
    if key == "feature_weight" or key.startswith(_HEAD):
        return key
    if not key.startswith(_PREFIX):
        raise KeyError(f"unexpected key {key!r}")
    k = key[len(_PREFIX):]
    if k == "mask_emb":
        return "wavlm.masked_spec_embed" if "wavlm.masked_spec_embed" in target_keys else None
    if m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", k):
        return f"wavlm.feature_extractor.conv_layers.{m[1]}.conv.{m[2]}"
    if m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", k):
        return f"wavlm.feature_extractor.conv_layers.{m[1]}.layer_norm.{m[2]}"
    if m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", k):  # group-norm extractor
        return f"wavlm.feature_extractor.conv_layers.{m[1]}.layer_norm.{m[2]}"
    if k.startswith("layer_norm."):
        return "wavlm.feature_projection." + k
    if k.startswith("post_extract_proj."):
        return "wavlm.feature_projection.projection." + k[len("post_extract_proj."):]
    if k == "encoder.pos_conv.0.bias":
        return "wavlm.encoder.pos_conv_embed.conv.bias"
    if k in ("encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v"):
        legacy = "wavlm.encoder.pos_conv_embed.conv." + k.rsplit(".", 1)[1]
        index = "0" if k.endswith("_g") else "1"
        modern = f"wavlm.encoder.pos_conv_embed.conv.parametrizations.weight.original{index}"
        return legacy if legacy in target_keys else modern
    if k.startswith("encoder.layer_norm."):
        return "wavlm." + k
    if m := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)", k):
        for old, new in _LAYER_RENAMES:
            if m[2].startswith(old):
                return f"wavlm.encoder.layers.{m[1]}.{new}{m[2][len(old):]}"
    raise KeyError(f"unexpected key {key!r}")


def convert_unispeech_state_dict(state: Mapping[str, Tensor], model: WavLMECAPA) -> dict[str, Tensor]:
    """Rename an upstream state dict for ``model`` and check that it covers every tensor, shape for shape."""
    target = model.state_dict()
    keys = set(target)
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        try:
            new = map_unispeech_key(key, keys)
        except KeyError:
            unknown.append(key)
            continue
        if new is not None:
            out[new] = value
    missing = sorted(keys - set(out))
    extra = sorted(set(out) - keys) + unknown
    bad = [
        f"{k} {tuple(out[k].shape)} vs {tuple(target[k].shape)}"
        for k in out
        if k in target and out[k].shape != target[k].shape
    ]
    if missing or extra or bad:
        raise ValueError(
            "wavlm_large_finetune checkpoint: expected the UniSpeech WavLM+ECAPA-TDNN layout, got "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {extra[:3]}), "
            f"{len(bad)} shape mismatches (e.g. {bad[:2]})"
        )
    return out
