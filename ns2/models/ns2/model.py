"""NaturalSpeech 2: the boxes of the paper's Figure 1 composed into one nn.Module.

Shapes: ``B`` batch, ``L`` phonemes, ``Tp`` prompt frames, ``T`` target frames, ``H`` hidden width,
``D`` the codec's latent dimension. Masks are bool, true on valid positions.

Data flow (each step a method, so a LightningModule or a synthesizer can drive them one by one)::

    phonemes [B, L]      --encode_text-->       h [B, H, L]
    z_prompt [B, D, Tp]  --encode_prompt-->     p [B, H, Tp]
    (h, p[, notes])      --predict_durations--> log(1 + d) [B, L]
    (h, d)               --regulate-->          c [B, H, T], frame_mask [B, T]
    (c, p[, notes])      --predict_pitch-->     log_f0 [B, T]
    (c, log_f0)          --condition-->         c' = c + PitchEmbedding(log_f0) [B, H, T]
    (z_t, t, c', p)      --denoise-->           ẑ0 [B, D, T]

The model receives its codec (or just the codec's latent dimension): it never builds one and does
not hold it as a submodule (so neither its parameters nor its state are part of this model's).
The diffusion process itself (VP-SDE, losses, samplers) lives outside: ``denoise`` is the ẑ0
network a sampler calls as ``lambda z_t, t: model.denoise(z_t, t, cond, frame_mask, p, prompt_mask)``.

Ablation switches (the paper's Table of ablations): ``use_prompt_in_predictors`` (w/o duration/pitch
prompt), ``use_query_attention`` (w/o query attention), ``use_diffusion_prompt`` (w/o diffusion
prompt), ``num_query_tokens`` (m).

Beyond the paper, ``score_conditioning`` (default False = the paper): the duration and pitch
predictors also read the written notes of a singing score, ``note_pitch [B, L]`` (MIDI, 0 = no note)
and ``note_start [B, L]`` (bool) per phoneme, through a :class:`~ns2.models.ns2.note_embedding.NoteEmbedding`
added to their input (the phoneme hiddens for durations, the length-regulated ones for pitch; the
diffusion condition is unchanged). Items without notes (speech; ``note_pitch=None`` for a whole
batch) take a learned "no score" vector. Frame-level note inputs come from :meth:`NaturalSpeech2.regulate_notes`.
With the switch off no note module exists and passing notes is an error.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ns2.models.ns2.diffusion_net import DiffusionNet
from ns2.models.ns2.duration_predictor import DurationPredictor
from ns2.models.ns2.length_regulator import LengthRegulator, PitchEmbedding, durations_from_log
from ns2.models.ns2.note_embedding import NoteEmbedding
from ns2.models.ns2.phoneme_encoder import PhonemeEncoder
from ns2.models.ns2.pitch_predictor import PitchPredictor
from ns2.models.ns2.prompt_encoder import PromptEncoder
from ns2.modules.masks import apply_mask, check_mask

__all__ = ["NaturalSpeech2", "NS2Output", "NS2Condition"]


@dataclass
class NS2Output:
    """The teacher-forced training pass (:meth:`NaturalSpeech2.forward`)."""

    z0_hat: torch.Tensor  # [B, D, T]
    log_duration: torch.Tensor  # [B, L], predicted log(1 + d)
    log_f0: torch.Tensor  # [B, T], predicted log-F0
    frame_mask: torch.Tensor  # [B, T]
    cond: torch.Tensor  # [B, H, T], the diffusion condition (ground-truth durations and pitch)
    prompt_hidden: torch.Tensor | None  # [B, H, Tp]


@dataclass
class NS2Condition:
    """Everything the denoiser needs, from text and prompt alone (:meth:`NaturalSpeech2.infer_condition`)."""

    cond: torch.Tensor  # [B, H, T]
    frame_mask: torch.Tensor  # [B, T]
    durations: torch.Tensor  # [B, L] frames
    log_f0: torch.Tensor  # [B, T]
    prompt_hidden: torch.Tensor | None  # [B, H, Tp]
    prompt_mask: torch.Tensor | None  # [B, Tp]


def _notes(note_pitch: torch.Tensor | None, note_start: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The note keyword arguments of a predictor call, none without notes (the paper's call)."""
    if note_pitch is None and note_start is None:
        return {}
    return {"note_pitch": note_pitch, "note_start": note_start}


class NaturalSpeech2(nn.Module):
    """Phoneme encoder, prompt encoder, duration / pitch predictors, length regulator, pitch embedding
    and the diffusion denoiser.

    Args:
        vocab_size: phoneme symbols (at least the symbol table's size; id 0 is padding).
        latent_dim: D, the codec latent dimension; or pass ``codec`` (an :class:`ns2.codec.Codec`).
        hidden: H, shared by every box (the boxes' own ``hidden`` keys may not differ from it).
        phoneme_encoder, prompt_encoder, duration_predictor, pitch_predictor, pitch_embedding,
            diffusion: keyword arguments of each box (sizes; see the box's class).
        use_prompt_in_predictors, use_query_attention, use_diffusion_prompt, num_query_tokens:
            the ablation switches (module docstring).
        score_conditioning: the predictors read a score's notes (module docstring; not the paper's).
    """

    def __init__(
        self,
        vocab_size: int,
        latent_dim: int | None = None,
        codec: Any = None,
        hidden: int = 512,
        phoneme_encoder: Mapping[str, Any] | None = None,
        prompt_encoder: Mapping[str, Any] | None = None,
        duration_predictor: Mapping[str, Any] | None = None,
        pitch_predictor: Mapping[str, Any] | None = None,
        pitch_embedding: Mapping[str, Any] | None = None,
        diffusion: Mapping[str, Any] | None = None,
        use_prompt_in_predictors: bool = True,
        use_query_attention: bool = True,
        use_diffusion_prompt: bool = True,
        num_query_tokens: int = 32,
        score_conditioning: bool = False,
    ) -> None:
        super().__init__()
        if codec is not None:
            if latent_dim is not None and latent_dim != codec.latent_dim:
                raise ValueError(f"latent_dim={latent_dim} disagrees with the codec's latent_dim={codec.latent_dim}")
            latent_dim = int(codec.latent_dim)
        if latent_dim is None:
            raise ValueError("NaturalSpeech2 needs the codec's latent dimension: pass latent_dim or codec")
        boxes = {
            "phoneme_encoder": phoneme_encoder,
            "prompt_encoder": prompt_encoder,
            "duration_predictor": duration_predictor,
            "pitch_predictor": pitch_predictor,
            "diffusion": diffusion,
        }
        kw: dict[str, dict[str, Any]] = {}
        for name, box in boxes.items():
            box = dict(box or {})
            if box.pop("hidden", hidden) != hidden:
                raise ValueError(f"{name}.hidden differs from the model's hidden={hidden}: the boxes share one width")
            kw[name] = box

        self.latent_dim, self.hidden, self.vocab_size = latent_dim, hidden, vocab_size
        self.use_prompt_in_predictors = use_prompt_in_predictors
        self.use_diffusion_prompt = use_diffusion_prompt
        uses_prompt = use_prompt_in_predictors or use_diffusion_prompt

        self.phoneme_encoder = PhonemeEncoder(vocab_size, hidden, **kw["phoneme_encoder"])
        self.prompt_encoder = PromptEncoder(latent_dim, hidden, **kw["prompt_encoder"]) if uses_prompt else None
        predictor = {"use_prompt": use_prompt_in_predictors, "prompt_dim": hidden}
        self.duration_predictor = DurationPredictor(hidden, hidden, **{**kw["duration_predictor"], **predictor})
        self.pitch_predictor = PitchPredictor(hidden, hidden, **{**kw["pitch_predictor"], **predictor})
        self.length_regulator = LengthRegulator()
        self.pitch_embedding = PitchEmbedding(hidden, **dict(pitch_embedding or {}))
        self.diffusion = DiffusionNet(
            latent_dim,
            hidden,
            **{
                **kw["diffusion"],
                "cond_dim": hidden,
                "prompt_dim": hidden,
                "num_query_tokens": num_query_tokens,
                "use_query_attention": use_query_attention,
                "use_diffusion_prompt": use_diffusion_prompt,
            },
        )
        # built last, so that every other box draws the same initial weights with the switch on or off
        self.score_conditioning = bool(score_conditioning)
        self.note_embedding = NoteEmbedding(hidden) if self.score_conditioning else None

    # --- the boxes, one call each -------------------------------------------------------------
    def encode_text(self, phonemes: torch.Tensor, phoneme_mask: torch.Tensor | None = None) -> torch.Tensor:
        """phonemes [B, L] (long), phoneme_mask [B, L] -> h [B, H, L]."""
        return self.phoneme_encoder(phonemes, phoneme_mask)

    def encode_prompt(self, z_prompt: torch.Tensor | None, prompt_mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """z_prompt [B, D, Tp], prompt_mask [B, Tp] -> p [B, H, Tp] (None when no box uses the prompt)."""
        if self.prompt_encoder is None:
            return None
        if z_prompt is None:
            raise ValueError("this model uses a speech prompt: pass z_prompt [B, D, Tp]")
        return self.prompt_encoder(z_prompt, prompt_mask)

    def check_notes(self, note_pitch: torch.Tensor | None, note_start: torch.Tensor | None) -> None:
        """ValueError for notes given to a model without score conditioning, or note_start without note_pitch."""
        if self.note_embedding is None and (note_pitch is not None or note_start is not None):
            raise ValueError("this model was built without score_conditioning: it takes no note_pitch / note_start")
        if note_pitch is None and note_start is not None:
            raise ValueError("note_start without note_pitch: pass both (note_pitch 0 = no note)")

    def with_notes(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        note_pitch: torch.Tensor | None = None,
        note_start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """A predictor's input: x [B, H, N] + NoteEmbedding(note_pitch [B, N], note_start [B, N]) under
        score conditioning (no notes: the "no score" vector), x itself otherwise (where notes are an error)."""
        self.check_notes(note_pitch, note_start)
        if self.note_embedding is None:
            return x
        return x + self.note_embedding(note_pitch, note_start, mask, like=x).to(x.dtype)

    def regulate_notes(
        self,
        note_pitch: torch.Tensor | None,
        note_start: torch.Tensor | None,
        durations: torch.Tensor,
        phoneme_mask: torch.Tensor | None = None,
        max_frames: int | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Phoneme-level notes -> frame level, for :meth:`predict_pitch`: note_pitch [B, L] repeated
        over each phoneme's frames -> [B, T]; note_start [B, L] -> [B, T] true on the first frame of a
        note-starting phoneme only (a zero-length one marks the frame it sits at). (None, None) without
        notes. T = max_frames or the longest item's total, as :meth:`regulate`."""
        if note_pitch is None:
            return None, None
        pitch, frame_mask = self.length_regulator(note_pitch.float()[:, None, :], durations, phoneme_mask, max_frames)
        pitch = pitch[:, 0]
        t = frame_mask.shape[-1]
        if note_start is None:
            return pitch, torch.zeros_like(frame_mask)
        mask = check_mask(phoneme_mask, note_pitch, "phoneme_mask")
        d = durations.long() * mask.long()
        first = (d.cumsum(-1) - d).clamp(max=t)  # [B, L] the frame each phoneme starts at (t: past the end)
        on = (note_start.bool() & mask).long()
        hits = torch.zeros(d.shape[0], t + 1, dtype=torch.long, device=d.device).scatter_add_(1, first, on)
        return pitch, (hits[:, :t] > 0) & frame_mask

    def predict_durations(
        self,
        h: torch.Tensor,
        phoneme_mask: torch.Tensor | None,
        p: torch.Tensor | None,
        prompt_mask: torch.Tensor | None,
        note_pitch: torch.Tensor | None = None,
        note_start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """h [B, H, L], p [B, H, Tp] [, note_pitch, note_start [B, L] under score conditioning]
        -> log(1 + d) [B, L], d in frames (zero at padding)."""
        h = self.with_notes(h, phoneme_mask, note_pitch, note_start)
        return self.duration_predictor(h, phoneme_mask, p, prompt_mask)

    def regulate(
        self, h: torch.Tensor, durations: torch.Tensor, phoneme_mask: torch.Tensor | None = None, max_frames: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """h [B, H, L], durations [B, L] (int frames) -> (c [B, H, T], frame_mask [B, T])."""
        return self.length_regulator(h, durations, phoneme_mask, max_frames)

    def predict_pitch(
        self,
        c: torch.Tensor,
        frame_mask: torch.Tensor | None,
        p: torch.Tensor | None,
        prompt_mask: torch.Tensor | None,
        note_pitch: torch.Tensor | None = None,
        note_start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """c [B, H, T] (frame-level phoneme hiddens), p [B, H, Tp] [, frame-level note_pitch,
        note_start [B, T] from :meth:`regulate_notes`] -> log-F0 [B, T] (zero at padding)."""
        c = self.with_notes(c, frame_mask, note_pitch, note_start)
        return self.pitch_predictor(c, frame_mask, p, prompt_mask)

    def condition(self, c: torch.Tensor, log_f0: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """c [B, H, T] + PitchEmbedding(log_f0 [B, T]) -> the diffusion condition [B, H, T]."""
        return apply_mask(c + self.pitch_embedding(log_f0, frame_mask), frame_mask)

    def denoise(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        p: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The data-prediction network: z_t [B, D, T], t [B] in [0, 1], cond [B, H, T], p [B, H, Tp]
        -> ẑ0 [B, D, T] (zero at padded frames)."""
        return self.diffusion(z_t, t, cond, frame_mask, p, prompt_mask)

    def denoiser(
        self, cond: torch.Tensor, frame_mask: torch.Tensor | None, p: torch.Tensor | None, prompt_mask: torch.Tensor | None
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A sampler's ``denoise_fn(z_t [B, D, T], t [B]) -> ẑ0``, with the prompt context and the
        WaveNet's condition convolutions computed once (neither depends on z_t or t)."""
        context = self.diffusion.prompt_context(p, prompt_mask)
        cond_proj = self.diffusion.condition(cond, frame_mask)

        def denoise_fn(z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.diffusion(z_t, t, cond, frame_mask, context=context, cond_proj=cond_proj)

        return denoise_fn

    # --- compositions ---------------------------------------------------------------------------
    def forward(
        self,
        phonemes: torch.Tensor,
        phoneme_mask: torch.Tensor | None,
        durations: torch.Tensor,
        log_f0: torch.Tensor,
        z_t: torch.Tensor,
        t: torch.Tensor,
        z_prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        *,
        note_pitch: torch.Tensor | None = None,
        note_start: torch.Tensor | None = None,
    ) -> NS2Output:
        """The teacher-forced training pass: ground-truth durations [B, L] and log-F0 [B, T] build the
        condition; T is z_t's length (durations must sum to it per item, padding excluded). Under score
        conditioning the predictors also read ``note_pitch`` [B, L] (MIDI, 0 = no note) and
        ``note_start`` [B, L] (None: no item has a score).
        -> predictions of durations, pitch and ẑ0 (:class:`NS2Output`)."""
        h = self.encode_text(phonemes, phoneme_mask)
        p = self.encode_prompt(z_prompt, prompt_mask)
        log_dur = self.predict_durations(h, phoneme_mask, p, prompt_mask, **_notes(note_pitch, note_start))
        c, frame_mask = self.regulate(h, durations, phoneme_mask, max_frames=z_t.shape[-1])
        f_pitch, f_start = self.regulate_notes(note_pitch, note_start, durations, phoneme_mask, z_t.shape[-1])
        log_f0_hat = self.predict_pitch(c, frame_mask, p, prompt_mask, **_notes(f_pitch, f_start))
        cond = self.condition(c, log_f0, frame_mask)
        z0_hat = self.denoise(z_t, t, cond, frame_mask, p, prompt_mask)
        return NS2Output(z0_hat, log_dur, log_f0_hat, frame_mask, cond, p)

    @torch.no_grad()
    def infer_condition(
        self,
        phonemes: torch.Tensor,
        phoneme_mask: torch.Tensor | None = None,
        z_prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        duration_scale: float = 1.0,
        durations: torch.Tensor | None = None,
        log_f0: torch.Tensor | None = None,
        *,
        note_pitch: torch.Tensor | None = None,
        note_start: torch.Tensor | None = None,
    ) -> NS2Condition:
        """Text + prompt -> the denoiser's condition, with predicted durations and pitch (or the given
        ones: ``durations`` [B, L] frames, ``log_f0`` [B, T], e.g. from a reference or a score). Under
        score conditioning the predictions read ``note_pitch`` / ``note_start`` [B, L] (a score's notes)."""
        h = self.encode_text(phonemes, phoneme_mask)
        p = self.encode_prompt(z_prompt, prompt_mask)
        if durations is None:
            log_dur = self.predict_durations(h, phoneme_mask, p, prompt_mask, **_notes(note_pitch, note_start))
            durations = durations_from_log(log_dur, phoneme_mask, duration_scale)
        max_frames = None if log_f0 is None else log_f0.shape[-1]
        c, frame_mask = self.regulate(h, durations, phoneme_mask, max_frames)
        if log_f0 is None:
            f_pitch, f_start = self.regulate_notes(note_pitch, note_start, durations, phoneme_mask, c.shape[-1])
            log_f0 = self.predict_pitch(c, frame_mask, p, prompt_mask, **_notes(f_pitch, f_start))
        else:
            self.check_notes(note_pitch, note_start)
        return NS2Condition(self.condition(c, log_f0, frame_mask), frame_mask, durations, log_f0, p, prompt_mask)
