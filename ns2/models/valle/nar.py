"""VALL-E's non-autoregressive decoder: codebooks 2..n_q, one stage at a time, all frames at once.

Stage ``j`` (0-based codebook index, 1 <= j < n_q) reads one sequence per item, ``[phonemes | frames]``:
a prompt frame (``t < prompt_len``) is the sum of the embeddings of all ``n_q`` of its codes; every
other frame the sum of its codes' embeddings in codebooks ``0..j-1`` (the ones already known). All
positions attend to all valid positions (no causal mask). The norms are AdaLN driven by the stage's
embedding, and codebook ``j``'s logits are the frames' outputs against codebook ``j``'s input embedding
table: the prediction layer of stage ``j`` shares its weights with the embedding that stage ``j + 1``
reads (VALL-E §4.2.2).

The prompt is a prefix of the frame sequence: in training the first ``prompt_len`` frames of the item
itself, in synthesis the enrolled recording's codes followed by the new frames.
"""
from __future__ import annotations

import torch
from torch import nn

from ns2.models.valle.layers import AdaLayerNorm, DecoderLayer, SinePositions, positions_of

__all__ = ["NARDecoder"]


class NARDecoder(nn.Module):
    """Phonemes + prompt codes + known codebooks -> logits of codebook ``stage`` (module docstring).

    Args:
        vocab_size: phoneme ids (0 = padding).  n_q: codebooks.  codebook_size: K.
        dim, heads, layers, ffn, dropout: the Transformer (VALL-E: 1024, 16, 12, 4096, 0.1).
    """

    def __init__(self, vocab_size: int, n_q: int, codebook_size: int, dim: int = 1024, heads: int = 16,
                 layers: int = 12, ffn: int = 4096, dropout: float = 0.1) -> None:
        super().__init__()
        if int(n_q) < 2:
            raise ValueError(f"the NAR decoder needs at least 2 codebooks, got n_q={n_q}")
        self.vocab_size, self.n_q, self.codebook_size = int(vocab_size), int(n_q), int(codebook_size)
        self.text_emb = nn.Embedding(self.vocab_size, dim, padding_idx=0)
        self.audio_embs = nn.ModuleList(nn.Embedding(self.codebook_size, dim) for _ in range(self.n_q))
        for emb in self.audio_embs:  # tied to the output: std H^-1/2 keeps the initial logits at unit scale
            nn.init.normal_(emb.weight, std=dim ** -0.5)
        self.stage_emb = nn.Embedding(self.n_q - 1, dim)
        self.text_pos, self.audio_pos = SinePositions(dim), SinePositions(dim)
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn, dropout, adaptive=True) for _ in range(layers))
        self.norm = AdaLayerNorm(dim)

    def embed_frames(self, codes: torch.Tensor, stage: int, prompt_len: torch.Tensor) -> torch.Tensor:
        """codes [B, n_q, T] (entries of codebooks >= stage outside the prompt are ignored), prompt_len
        [B] -> frame embeddings [B, T, H]."""
        t = codes.shape[-1]
        in_prompt = torch.arange(t, device=codes.device)[None, :] < prompt_len.to(codes.device)[:, None]  # [B, T]
        x = sum(self.audio_embs[k](codes[:, k]) for k in range(stage))
        for k in range(stage, self.n_q):
            x = x + self.audio_embs[k](codes[:, k]) * in_prompt[..., None]
        return x

    def forward(self, phonemes: torch.Tensor, text_mask: torch.Tensor, codes: torch.Tensor, frame_mask: torch.Tensor,
                prompt_len: torch.Tensor, stage: int) -> torch.Tensor:
        """phonemes [B, L] (mask [B, L]); codes [B, n_q, T] (mask [B, T]); prompt_len [B] frames; stage:
        the codebook to predict (1 <= stage < n_q) -> logits [B, T, K] at every frame."""
        if not 1 <= int(stage) < self.n_q:
            raise ValueError(f"NAR stage {stage}: expected 1 <= stage < n_q = {self.n_q}")
        stage = int(stage)
        text_mask, frame_mask = text_mask.bool(), frame_mask.bool()
        codes = codes.long().clamp(0, self.codebook_size - 1)
        s = self.stage_emb(torch.full((phonemes.shape[0],), stage - 1, dtype=torch.long, device=phonemes.device))
        text = self.text_pos(self.text_emb(phonemes * text_mask), positions_of(text_mask))
        frames = self.audio_pos(self.embed_frames(codes, stage, prompt_len), positions_of(frame_mask))
        x = torch.cat([text, frames], dim=1)
        key_ok = torch.cat([text_mask, frame_mask], dim=1)
        n = key_ok.shape[1]
        mask = (key_ok[:, None, :] | torch.eye(n, dtype=torch.bool, device=x.device)[None])[:, None]
        for layer in self.layers:
            x = layer(x, mask, stage=s)
        h = self.norm(x[:, phonemes.shape[1]:], s)
        return h @ self.audio_embs[stage].weight.t()
