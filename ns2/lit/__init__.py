"""LightningModules: the losses, optimisers, schedules and logging around the pure nn.Modules.

* :class:`CodecLit`: the codec's GAN training (DAC's recipe); :class:`CodecEncoder`: code extraction
  through Lightning's predict loop.
"""
from ns2.lit.codec import DEFAULT_LOSS_WEIGHTS, CodecEncoder, CodecLit, codec_from_checkpoint, crop_segments

__all__ = ["DEFAULT_LOSS_WEIGHTS", "CodecEncoder", "CodecLit", "codec_from_checkpoint", "crop_segments"]
