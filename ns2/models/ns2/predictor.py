"""The prompt-conditioned convolution + attention predictor of NaturalSpeech 2 (duration and pitch).

Paper: 30 Conv1D layers + 10 Q-K-V attention layers, one after every 3 convolutions; the query is the
convolution stack's hidden, key and value are the speech prompt encoder's output; hidden 512,
dropout 0.5. Duration: kernel 3, 34M; pitch: kernel 5, 50M.

Layout (x: [B, C_in, N], N phonemes or frames)::

    for i in 0..layers-1:
        x = ConvBlock_k(x)                          conv -> ReLU -> LayerNorm -> dropout (+ residual)
        if (i + 1) % attention_every == 0:          (with the prompt)
            x = x + Dropout(Attention(LN(x), prompt))
    y = Linear(x) -> [B, N]

Counts at H = 512: a conv block is k·H² + H + 2H (bias, LayerNorm), an attention layer 4·H² + 4H + 2H.
Kernel 3: 30·0.788M + 10·1.052M = 34.15M (paper 34M). Kernel 5: 30·1.312M + 10·1.052M = 49.88M (50M).

``use_prompt=False`` is the paper's "w/o duration/pitch prompt" ablation: no attention layers at all
(and the prompt arguments are ignored).
"""
from __future__ import annotations

import torch
from torch import nn

from ns2.modules.attention import MultiHeadAttention
from ns2.modules.conv import ConvBlock
from ns2.modules.dropout import Dropout
from ns2.modules.masks import apply_mask, check_mask
from ns2.modules.wavenet import attention_layer_indices

__all__ = ["ProsodyPredictor"]


class ProsodyPredictor(nn.Module):
    """A scalar per position from hidden states and the speech prompt.

    forward(x [B, C_in, N], mask [B, N] | None, prompt [B, C_p, Tp] | None, prompt_mask [B, Tp] | None)
    -> y [B, N] (zero at padding).

    Args:
        in_channels: C_in of the input hidden states. hidden: the stack's width.
        layers: convolution layers. kernel_size: their kernel. attention_every: one attention
            layer after every this many convolutions. heads: attention heads.
        dropout: after every convolution and attention layer.
        prompt_dim: C_p of the prompt hidden states (default ``hidden``).
        use_prompt: attend to the prompt (False: the "w/o prompt" ablation).
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int = 512,
        layers: int = 30,
        kernel_size: int = 3,
        attention_every: int = 3,
        heads: int = 8,
        dropout: float = 0.5,
        prompt_dim: int | None = None,
        use_prompt: bool = True,
    ) -> None:
        super().__init__()
        self.use_prompt = use_prompt
        self.convs = nn.ModuleList(
            ConvBlock(in_channels if i == 0 else hidden, hidden, kernel_size, dropout) for i in range(layers)
        )
        where = attention_layer_indices(layers, attention_every) if use_prompt else []
        self.attention_after = {i: n for n, i in enumerate(where)}
        self.attn_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in where)
        self.attns = nn.ModuleList(MultiHeadAttention(hidden, heads, dropout, context_dim=prompt_dim or hidden) for _ in where)
        self.dropout = Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        mask = check_mask(mask, x, "mask")
        context = None
        if self.use_prompt:
            if prompt is None:
                raise ValueError("this predictor attends to the speech prompt: pass prompt [B, C_p, Tp]")
            prompt_mask = check_mask(prompt_mask, prompt, "prompt_mask")
            context = prompt.transpose(1, 2)  # [B, Tp, C_p]
        x = apply_mask(x, mask)  # the blocks read x as zero at padding
        for i, conv in enumerate(self.convs):
            x = conv(x, mask)
            n = self.attention_after.get(i)
            if n is not None:
                a = self.attns[n](self.attn_norms[n](x.transpose(1, 2)), context, prompt_mask)
                x = apply_mask(x + self.dropout(a).transpose(1, 2), mask)
        return self.out(x.transpose(1, 2)).squeeze(-1) * mask.to(x.dtype)
