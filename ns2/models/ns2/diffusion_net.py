"""NaturalSpeech 2's diffusion denoiser: a WaveNet that predicts ẑ0 from z_t, with speech prompting.

Paper: 40 WaveNet layers, hidden 512, kernel 3, dilation 2, 13 attention layers, 8 heads, dropout 0.2;
183M. Speech prompting: m = 32 learnable query tokens attend to the prompt hidden states (the prompt
encoder's output) giving m vectors; in every third WaveNet layer (13 of 40) the layer's hidden attends
to those m vectors and the result drives a FiLM (scale, bias) of the layer's gated convolution; the
skip outputs are averaged. The network predicts the data ẑ0, not the noise.

Inputs: z_t [B, D, T] (D the codec's latent dimension), t [B] in [0, 1], the frame-level condition
c [B, H, T] (length-regulated phoneme hiddens + pitch embedding), the prompt hidden states
p [B, H, Tp]. Output ẑ0 [B, D, T], zero at padded frames.

Layout: z_t -> Conv1x1 + ReLU -> :class:`~ns2.modules.wavenet.WaveNet` (time embedding: sinusoidal of
1000·t -> Linear(H, 4H) -> SiLU -> Linear(4H, H), projected per layer) -> averaged skips -> Conv1x1 ->
ReLU -> Conv1x1 -> ẑ0. Dilations 2^(i mod 2) = 1, 2, 1, 2, ... ("dilation 2" read as a cycle of two;
``dilation_cycle=1`` keeps every layer at dilation 1). Attention layers: i with (i + 1) % 3 == 0,
i.e. layers 3, 6, ..., 39 (1-based), 13 of 40.

Parameter reconciliation (H = 512, per-layer terms in H²): the gated dilated convolution H -> 2H with
kernel 3 is 6H², the residual/skip output 2H², the time projection H²; an attention layer adds
4H² (Q-K-V + output) and the FiLM 4H² (scale and bias for the 2H gate inputs). With DiffWave's pointwise
conditioner (2H²) that is 40·11H² + 13·8H² + shared parts ≈ 146M, 20% under the paper's 183M. The paper
describes the WaveNet layer as "1D dilated convolution layers with kernel 3": reading that every
convolution reading the frame sequence in a layer, the condition's included, uses kernel 3 (same
dilation), the conditioner is 6H² and the total 40·15H² + 13·8H² + shared ≈ 188M (+2.8% of 183M).
``cond_kernel_size`` exposes the choice (1 restores DiffWave's pointwise conditioner).

Ablation switches:
* ``use_query_attention=False`` ("w/o query attention"): no query tokens; the WaveNet layers attend
  to the prompt hidden states directly (with the prompt mask).
* ``use_diffusion_prompt=False`` ("w/o diffusion prompt"): no query tokens, no attention / FiLM
  layers; the prompt is not used by the denoiser.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ns2.modules.attention import MultiHeadAttention
from ns2.modules.masks import apply_mask, check_mask
from ns2.modules.transformer import sinusoidal_embedding
from ns2.modules.wavenet import WaveNet

__all__ = ["DiffusionNet"]


class DiffusionNet(nn.Module):
    """The denoiser ẑ0 = f(z_t, t, c, p).

    forward(z_t [B, D, T], t [B], cond [B, C_c, T], frame_mask [B, T] | None, prompt [B, C_p, Tp] | None,
    prompt_mask [B, Tp] | None) -> z0_hat [B, D, T].

    Args:
        latent_dim: D. hidden: H, the WaveNet's residual width. layers: WaveNet layers.
        kernel_size: of the dilated convolutions. dilation_base, dilation_cycle: layer i has dilation
            dilation_base ** (i % dilation_cycle). cond_kernel_size: of the condition's convolutions.
        attention_every: one attention/FiLM layer after every this many layers. heads: attention heads.
        dropout: in the WaveNet layers and attention. num_query_tokens: m.
        cond_dim: C_c (default H). prompt_dim: C_p (default H). time_scale: t is embedded as
            sinusoid(time_scale · t).
        use_query_attention, use_diffusion_prompt: the paper's ablation switches (module docstring).
    """

    def __init__(
        self,
        latent_dim: int,
        hidden: int = 512,
        layers: int = 40,
        kernel_size: int = 3,
        dilation_base: int = 2,
        dilation_cycle: int = 2,
        cond_kernel_size: int = 3,
        attention_every: int = 3,
        heads: int = 8,
        dropout: float = 0.2,
        num_query_tokens: int = 32,
        cond_dim: int | None = None,
        prompt_dim: int | None = None,
        time_scale: float = 1000.0,
        use_query_attention: bool = True,
        use_diffusion_prompt: bool = True,
    ) -> None:
        super().__init__()
        prompt_dim = hidden if prompt_dim is None else prompt_dim
        self.latent_dim, self.hidden, self.time_scale = latent_dim, hidden, time_scale
        self.use_diffusion_prompt = use_diffusion_prompt
        self.use_query_attention = use_diffusion_prompt and use_query_attention
        if self.use_query_attention and num_query_tokens < 1:
            raise ValueError(f"num_query_tokens must be >= 1 with query attention, got {num_query_tokens}")

        self.in_proj = nn.Conv1d(latent_dim, hidden, 1)
        self.time_mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.SiLU(), nn.Linear(4 * hidden, hidden))
        if self.use_query_attention:
            self.query_tokens = nn.Parameter(torch.randn(num_query_tokens, hidden) * hidden**-0.5)
            self.query_attn = MultiHeadAttention(hidden, heads, dropout, context_dim=prompt_dim)
            self.query_norm = nn.LayerNorm(hidden)
        context_dim = hidden if self.use_query_attention else prompt_dim
        self.wavenet = WaveNet(
            hidden,
            layers,
            kernel_size,
            dilation_base,
            dilation_cycle,
            cond_channels=cond_dim or hidden,
            cond_kernel_size=cond_kernel_size,
            dropout=dropout,
            heads=heads if use_diffusion_prompt else 0,
            attention_every=attention_every,
            context_dim=context_dim,
        )
        self.skip_proj = nn.Conv1d(hidden, hidden, 1)
        self.out_proj = nn.Conv1d(hidden, latent_dim, 1)

    def prompt_context(
        self, prompt: torch.Tensor | None, prompt_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """What the WaveNet's attention layers read: the m query tokens' outputs [B, m, H] (no mask), the
        prompt itself [B, Tp, C_p] with its mask (w/o query attention), or (None, None) without prompt.
        Independent of z_t and t: a sampler may compute it once (:meth:`forward`'s ``context``)."""
        if not self.use_diffusion_prompt:
            return None, None
        if prompt is None:
            raise ValueError("the denoiser attends to the speech prompt: pass prompt [B, C_p, Tp]")
        prompt_mask = check_mask(prompt_mask, prompt, "prompt_mask")
        p = prompt.transpose(1, 2)
        if not self.use_query_attention:
            return p, prompt_mask
        q = self.query_tokens[None].expand(prompt.shape[0], -1, -1)
        return self.query_norm(q + self.query_attn(q, p, prompt_mask)), None

    def forward(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        context: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
        cond_proj: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``context``: :meth:`prompt_context`'s output and ``cond_proj``: :meth:`condition`'s output,
        computed once per synthesis (both independent of z_t and t); computed here when None."""
        if z_t.dim() != 3 or z_t.shape[1] != self.latent_dim:
            raise ValueError(f"z_t must be [B, {self.latent_dim}, T], got {tuple(z_t.shape)}")
        if cond.shape[0] != z_t.shape[0] or cond.shape[-1] != z_t.shape[-1]:
            raise ValueError(f"cond must be [B, C, T] with B, T of z_t {tuple(z_t.shape)}, got {tuple(cond.shape)}")
        t = torch.as_tensor(t, dtype=z_t.dtype, device=z_t.device)
        if t.dim() == 0:
            t = t.expand(z_t.shape[0])
        if t.shape != (z_t.shape[0],):
            raise ValueError(f"t must be a scalar or [B] = [{z_t.shape[0]}], got {tuple(t.shape)}")
        mask = None if frame_mask is None else check_mask(frame_mask, z_t, "frame_mask")
        ctx, ctx_mask = self.prompt_context(prompt, prompt_mask) if context is None else context
        if cond_proj is None:
            cond_proj = self.condition(cond, mask)
        step = self.time_mlp(sinusoidal_embedding(self.time_scale * t, self.hidden).to(z_t.dtype))  # [B, H]
        x = F.relu(self.in_proj(z_t))  # padded frames are masked before the first dilated convolution
        skips = self.wavenet(x, mask, None, step, ctx, ctx_mask, cond_proj=cond_proj)
        return apply_mask(self.out_proj(F.relu(self.skip_proj(skips))), mask)

    def condition(self, cond: torch.Tensor, frame_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The WaveNet layers' condition convolutions of cond [B, C_c, T] (zeroed at padding): a list of
        [B, 2H, T], one per layer. Independent of z_t and t: a sampler computes it once per synthesis."""
        mask = None if frame_mask is None else check_mask(frame_mask, cond, "frame_mask")
        return self.wavenet.condition(cond, mask)
