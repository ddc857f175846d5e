"""VALL-E's autoregressive decoder: codebook 1 of the codec, token by token, after the phonemes.

A decoder-only Transformer over one sequence per item, ``[phonemes | BOS, c_1, ..., c_T]``, each segment
with its own sinusoidal positions. Text positions attend to the text only (bidirectional); audio
positions attend to the whole text and causally to the audio before them. Every audio position
predicts the next token: ``c_{t+1}`` or EOS after the last frame. The prompt is simply the start of the
audio segment (and its transcript the start of the text), so training is plain language modelling
over whole utterances (VALL-E §4.2.1) and synthesis continues a prefix.

Vocabularies: ``vocab_size`` phoneme ids (0 = padding); audio tokens ``0..K-1`` codes, ``K`` = EOS,
``K + 1`` = BOS; the output layer covers ``K + 1`` (codes and EOS).

Padding may sit anywhere: positions come from the masks (:func:`~ns2.models.valle.layers.positions_of`)
and padded keys are never attended to, so an item's outputs do not depend on its neighbours in a
batch. Batched synthesis pads the audio prefix on the *left*, so every item appends at the same column.
"""
from __future__ import annotations

import torch
from torch import nn

from ns2.models.valle.layers import DecoderLayer, KVCache, SinePositions, positions_of

__all__ = ["ARDecoder", "prefix_lm_mask"]


def prefix_lm_mask(text_mask: torch.Tensor, audio_mask: torch.Tensor) -> torch.Tensor:
    """The attention mask of ``[text | audio]``: text [B, L] and audio [B, T] validity -> [B, 1, S, S]
    bool (S = L + T; true: query may attend to key). Every position may attend to itself, so a padded
    query never has an empty row."""
    b, n_text = text_mask.shape
    n = n_text + audio_mask.shape[1]
    key_ok = torch.cat([text_mask, audio_mask], dim=1).bool()  # [B, S]
    idx = torch.arange(n, device=key_ok.device)
    is_text = idx < n_text
    causal = idx[None, :] <= idx[:, None]  # [S, S] key <= query
    allowed = torch.where(is_text[:, None], is_text[None, :].expand(n, n), is_text[None, :] | causal)
    mask = allowed[None] & key_ok[:, None, :]
    return (mask | torch.eye(n, dtype=torch.bool, device=key_ok.device)[None])[:, None]


class ARDecoder(nn.Module):
    """Phonemes + codebook-1 tokens -> next-token logits (module docstring).

    Args:
        vocab_size: phoneme ids (0 = padding).  codebook_size: K, codes per codebook.
        dim, heads, layers, ffn, dropout: the Transformer (VALL-E: 1024, 16, 12, 4096, 0.1).
    """

    def __init__(self, vocab_size: int, codebook_size: int, dim: int = 1024, heads: int = 16, layers: int = 12,
                 ffn: int = 4096, dropout: float = 0.1) -> None:
        super().__init__()
        self.vocab_size, self.codebook_size = int(vocab_size), int(codebook_size)
        self.eos, self.bos = self.codebook_size, self.codebook_size + 1
        self.text_emb = nn.Embedding(self.vocab_size, dim, padding_idx=0)
        self.audio_emb = nn.Embedding(self.codebook_size + 2, dim)
        self.text_pos, self.audio_pos = SinePositions(dim), SinePositions(dim)
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, self.codebook_size + 1, bias=False)

    def embed_text(self, phonemes: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """phonemes [B, L] -> [B, L, H] with text positions."""
        return self.text_pos(self.text_emb(phonemes * text_mask), positions_of(text_mask))

    def _inputs(self, phonemes, text_mask, tokens, audio_mask):
        text_mask, audio_mask = text_mask.bool(), audio_mask.bool()
        a = self.audio_pos(self.audio_emb(tokens * audio_mask), positions_of(audio_mask))
        x = torch.cat([self.embed_text(phonemes, text_mask), a], dim=1)
        return x, prefix_lm_mask(text_mask, audio_mask), text_mask, audio_mask

    def forward(self, phonemes: torch.Tensor, text_mask: torch.Tensor, tokens: torch.Tensor, audio_mask: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        """The full pass: phonemes [B, L] (mask [B, L]), audio tokens [B, T] (BOS first; mask [B, T]) ->
        logits [B, T, K + 1] at the audio positions. With an empty ``cache`` it is filled for
        :meth:`step` (prefill)."""
        x, mask, text_mask, audio_mask = self._inputs(phonemes, text_mask, tokens, audio_mask)
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, cache=cache, index=i)
        if cache is not None:
            cache.key_mask = torch.cat([text_mask, audio_mask], dim=1)
            cache.audio_len = audio_mask.long().sum(-1)
        return self.head(self.norm(x[:, phonemes.shape[1]:]))

    @torch.no_grad()
    def attention(self, phonemes: torch.Tensor, text_mask: torch.Tensor, tokens: torch.Tensor,
                  audio_mask: torch.Tensor, layer: int = -1) -> torch.Tensor:
        """Layer ``layer``'s attention weights over ``[text | audio]``, averaged over heads -> [B, S, S]."""
        x, mask, _, _ = self._inputs(phonemes, text_mask, tokens, audio_mask)
        index = range(len(self.layers))[layer]
        for block in self.layers[:index]:
            x = block(x, mask)
        return self.layers[index].attention_weights(x, mask)

    def step(self, token: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One more audio token per item with the cache of everything before: token [B] -> logits
        [B, K + 1] for the token after it. The cache grows by one position."""
        if cache.key_mask is None or cache.audio_len is None:
            raise ValueError("ARDecoder.step: the cache is empty; run the full pass with cache=KVCache() first")
        x = self.audio_pos(self.audio_emb(token[:, None]), cache.audio_len[:, None])
        key_mask = torch.cat([cache.key_mask, torch.ones_like(cache.key_mask[:, :1])], dim=1)
        mask = key_mask[:, None, None, :]
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, cache=cache, index=i)
        cache.key_mask, cache.audio_len = key_mask, cache.audio_len + 1
        return self.head(self.norm(x[:, 0]))
