"""Training losses. NaturalSpeech 2's live in :mod:`ns2.losses.ns2`, the codec's GAN losses in
:mod:`ns2.losses.codec`."""
from ns2.losses.codec import (
    ADVERSARIAL_LOSSES,
    MultiScaleMelLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    si_sdr,
)
from ns2.losses.ns2 import (
    DEFAULT_WEIGHTS,
    NS2Loss,
    ce_rvq_loss,
    data_loss,
    duration_loss,
    pitch_loss,
    score_loss,
)

__all__ = [
    "ADVERSARIAL_LOSSES",
    "MultiScaleMelLoss",
    "feature_matching_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "si_sdr",
    "DEFAULT_WEIGHTS",
    "NS2Loss",
    "ce_rvq_loss",
    "data_loss",
    "duration_loss",
    "pitch_loss",
    "score_loss",
]
