"""VALL-E (Wang et al. 2023): a neural codec language model, the AR and NAR decoders over one codec's codes.

``VALLE`` holds the two boxes and their shared settings; it computes, it does not train
(:class:`~ns2.lit.valle.VALLELit`) or sample (:class:`~ns2.inference.valle.VALLESynthesizer`).

* :class:`~ns2.models.valle.ar.ARDecoder`: phonemes + codebook 1 so far -> the next codebook-1 token or EOS;
* :class:`~ns2.models.valle.nar.NARDecoder`: phonemes + prompt codes + codebooks ``< j`` -> codebook ``j``.

Sizes (configs/model/scale/valle_*.yaml): the paper's 12 layers, 16 heads, width 1024, FFN 4096,
dropout 0.1 for each decoder. Either decoder may be left out (``ar: false`` / ``nar: false``) to train
the other alone.
"""
from __future__ import annotations

from torch import nn

from ns2.models.valle.ar import ARDecoder
from ns2.models.valle.nar import NARDecoder

__all__ = ["VALLE"]


class VALLE(nn.Module):
    """The AR and NAR decoders of VALL-E.

    Args:
        vocab_size: phoneme ids (0 = padding; at least the symbol table's size).
        n_q: codebooks of the codec (VALL-E: EnCodec's 8).  codebook_size: K (VALL-E: 1024).
        dim, heads, layers, ffn, dropout: each decoder's Transformer.
        nar_layers: the NAR's depth when it differs (default ``layers``).
        ar, nar: build that decoder (default both).
    """

    def __init__(self, vocab_size: int, n_q: int, codebook_size: int, dim: int = 1024, heads: int = 16,
                 layers: int = 12, ffn: int = 4096, dropout: float = 0.1, nar_layers: int | None = None,
                 ar: bool = True, nar: bool = True) -> None:
        super().__init__()
        if not (ar or nar):
            raise ValueError("VALLE: at least one of ar / nar must be built")
        self.vocab_size, self.n_q, self.codebook_size = int(vocab_size), int(n_q), int(codebook_size)
        self.ar = ARDecoder(vocab_size, codebook_size, dim, heads, layers, ffn, dropout) if ar else None
        self.nar = (NARDecoder(vocab_size, n_q, codebook_size, dim, heads,
                               layers if nar_layers is None else nar_layers, ffn, dropout)
                    if nar and int(n_q) > 1 else None)
