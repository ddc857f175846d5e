"""Neural audio codecs: the :class:`Codec` interface, DAC's architecture (:class:`RVQCodec`) and loaders.

>>> codec = load_codec("dac_24khz", freeze=True)        # official weights, cached and verified
>>> codes = codec.encode(wav)                           # [B, 1, S] -> [B, n_q, T]
>>> z = codec.codes_to_latent(codes)                    # [B, D, T], NaturalSpeech 2's latent
>>> wav_hat = codec.decode(z, length=wav.shape[-1])     # [B, 1, S]
"""
from ns2.codec.base import Codec
from ns2.codec.load import CodecLoadError, cached_path, download, load_codec, save_codec
from ns2.codec.quantize import ResidualVectorQuantize, VectorQuantize
from ns2.codec.rvq import CodecOutput, RVQCodec

__all__ = [
    "Codec",
    "CodecLoadError",
    "CodecOutput",
    "RVQCodec",
    "ResidualVectorQuantize",
    "VectorQuantize",
    "cached_path",
    "download",
    "load_codec",
    "save_codec",
]
