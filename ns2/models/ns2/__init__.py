"""NaturalSpeech 2 (Shen et al. 2023), one file per box of the paper's Figure 1.

* :mod:`.phoneme_encoder` — :class:`PhonemeEncoder`
* :mod:`.prompt_encoder` — :class:`PromptEncoder`
* :mod:`.predictor` — :class:`ProsodyPredictor`, the conv + attention predictor shared by
  :mod:`.duration_predictor` (:class:`DurationPredictor`) and :mod:`.pitch_predictor` (:class:`PitchPredictor`)
* :mod:`.length_regulator` — :class:`LengthRegulator`, :class:`PitchEmbedding`, :func:`durations_from_log`
* :mod:`.note_embedding` — :class:`NoteEmbedding`, a score's notes for the predictors (``score_conditioning``,
  beyond the paper)
* :mod:`.diffusion_net` — :class:`DiffusionNet`, the WaveNet denoiser with speech prompting
* :mod:`.model` — :class:`NaturalSpeech2`, the composition
* :mod:`.sde` — the VP-SDE of the latent diffusion
"""
from ns2.models.ns2.diffusion_net import DiffusionNet
from ns2.models.ns2.duration_predictor import DurationPredictor
from ns2.models.ns2.length_regulator import LengthRegulator, PitchEmbedding, durations_from_log, log_duration_target
from ns2.models.ns2.model import NaturalSpeech2, NS2Condition, NS2Output
from ns2.models.ns2.note_embedding import NoteEmbedding
from ns2.models.ns2.phoneme_encoder import PhonemeEncoder
from ns2.models.ns2.pitch_predictor import PitchPredictor
from ns2.models.ns2.predictor import ProsodyPredictor
from ns2.models.ns2.prompt_encoder import PromptEncoder

__all__ = [
    "DiffusionNet",
    "DurationPredictor",
    "LengthRegulator",
    "NS2Condition",
    "NS2Output",
    "NaturalSpeech2",
    "NoteEmbedding",
    "PhonemeEncoder",
    "PitchEmbedding",
    "PitchPredictor",
    "PromptEncoder",
    "ProsodyPredictor",
    "durations_from_log",
    "log_duration_target",
]
