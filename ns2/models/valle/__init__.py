"""VALL-E: the AR decoder (codebook 1 with EOS), the NAR decoder (codebooks 2..n_q, AdaLN per stage)."""
from ns2.models.valle.ar import ARDecoder, prefix_lm_mask
from ns2.models.valle.layers import AdaLayerNorm, DecoderLayer, KVCache, SinePositions, positions_of
from ns2.models.valle.model import VALLE
from ns2.models.valle.nar import NARDecoder

__all__ = ["VALLE", "ARDecoder", "NARDecoder", "AdaLayerNorm", "DecoderLayer", "KVCache", "SinePositions",
           "positions_of", "prefix_lm_mask"]
