"""YourTTS (VITS with d-vector speakers and language embeddings): one file per box of the figure.

``text_encoder`` (relative-position Transformer, prior statistics), ``posterior_encoder`` (linear spectrogram
-> z), ``wn`` (the WaveNet stack both the posterior encoder and the flow use), ``flow`` (mean-only couplings),
``duration_predictor`` (stochastic, with the spline of ``transforms``, or deterministic), ``generator``
(HiFi-GAN), and ``model`` (:class:`YourTTS`, composing them with the monotonic alignment search).
"""
from ns2.models.yourtts.duration_predictor import (
    ConvFlow,
    DilatedDepthSeparableConv,
    DurationPredictor,
    ElementwiseAffine,
    Log,
    StochasticDurationPredictor,
)
from ns2.models.yourtts.flow import ResidualCouplingBlock, ResidualCouplingBlocks
from ns2.models.yourtts.generator import HifiganGenerator, ResBlock1
from ns2.models.yourtts.model import YourTTS, durations_to_path, slice_segments
from ns2.models.yourtts.posterior_encoder import PosteriorEncoder
from ns2.models.yourtts.text_encoder import (
    FeedForwardNetwork,
    RelativePositionMultiHeadAttention,
    RelativePositionTransformer,
    TextEncoder,
)
from ns2.models.yourtts.transforms import piecewise_rational_quadratic
from ns2.models.yourtts.wn import WN

__all__ = [
    "YourTTS", "TextEncoder", "RelativePositionTransformer", "RelativePositionMultiHeadAttention",
    "FeedForwardNetwork", "PosteriorEncoder", "WN", "ResidualCouplingBlock", "ResidualCouplingBlocks",
    "StochasticDurationPredictor", "DurationPredictor", "DilatedDepthSeparableConv", "ConvFlow",
    "ElementwiseAffine", "Log", "HifiganGenerator", "ResBlock1", "piecewise_rational_quadratic",
    "durations_to_path", "slice_segments",
]
