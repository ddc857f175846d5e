"""Score conditioning (beyond the paper): the written notes embedded for the duration and pitch predictors.

NaturalSpeech 2 sings zero-shot from a speech or singing prompt with its pitch and durations either
predicted from text (no idea of the melody) or copied from a score (a flat note contour, no natural
F0). With ``NaturalSpeech2(score_conditioning=True)`` the predictors also read the score's notes, so
they can place natural F0 (onsets, glides, vibrato, drift) *around* the written notes.

Inputs, per position (phonemes for the duration predictor; frames for the pitch predictor, from
:meth:`NaturalSpeech2.regulate_notes <ns2.models.ns2.model.NaturalSpeech2.regulate_notes>`, where a
note's onset marks its first frame only):

* ``note_pitch [B, N]`` float: the written pitch as a MIDI number (fractional after transposition),
  0 where there is no note (a rest, or an item without a score);
* ``note_start [B, N]`` bool: the position starts a note (the first phoneme of the note's range).

An item *has a score* when any of its valid positions has a note. Each position takes one of three
learned vectors — ``no score`` (speech items: the whole item without notes), ``rest`` (a position
without a note in an item with a score), ``note`` — plus, on notes, a linear embedding of the pitch
``(midi − 60) / 12`` (octaves from middle C, so the predictors' log-F0 is close to a linear function of
it) and a learned onset vector on note starts::

    e = E_state[state] + [note] · (w · (midi − 60) / 12 + E_start[note_start])      -> [B, H, N]

Speech items therefore see one constant learned vector (the paper's predictors plus a bias), and a
mixed batch of speech and singing works; masked positions are zero.
"""
from __future__ import annotations

import torch
from torch import nn

from ns2.modules.masks import apply_mask, check_mask

__all__ = ["NoteEmbedding", "NO_SCORE", "REST", "NOTE"]

NO_SCORE, REST, NOTE = 0, 1, 2


class NoteEmbedding(nn.Module):
    """forward(note_pitch [B, N] MIDI (0 = no note), note_start [B, N] bool | None, mask [B, N] | None)
    -> [B, H, N] (zero at padding). ``note_pitch=None`` is an item without a score everywhere (give
    ``like`` [B, ..., N] for the shape); ``note_start=None`` marks no onsets.

    Args:
        hidden: H. center, scale: the pitch feature is ``(midi − center) / scale``.
    """

    def __init__(self, hidden: int, center: float = 60.0, scale: float = 12.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.center, self.scale = float(center), float(scale)
        self.state = nn.Embedding(3, hidden)  # no score / rest / note
        self.pitch = nn.Linear(1, hidden, bias=False)
        self.start = nn.Embedding(2, hidden)

    @staticmethod
    def states(note_pitch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, N] long: NO_SCORE, REST or NOTE per position (module docstring)."""
        has = (note_pitch > 0) & mask
        scored = has.any(-1, keepdim=True)
        return torch.where(has, NOTE, torch.where(scored, REST, NO_SCORE)).long()

    def forward(
        self,
        note_pitch: torch.Tensor | None,
        note_start: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        like: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if note_pitch is None:
            if like is None:
                raise ValueError("NoteEmbedding: pass note_pitch [B, N] or like [B, ..., N] for the shape")
            note_pitch = like.new_zeros(like.shape[0], like.shape[-1], dtype=torch.float32)
        if note_pitch.dim() != 2:
            raise ValueError(f"note_pitch must be [B, N], got {tuple(note_pitch.shape)}")
        if note_start is not None and note_start.shape != note_pitch.shape:
            raise ValueError(f"note_start {tuple(note_start.shape)} must have note_pitch's shape {tuple(note_pitch.shape)}")
        mask = check_mask(mask, note_pitch, "mask")
        pitch = torch.nan_to_num(note_pitch.float(), nan=0.0, posinf=0.0, neginf=0.0)
        state = self.states(pitch, mask)
        on = (state == NOTE).to(self.pitch.weight.dtype)[..., None]  # [B, N, 1]
        x = ((pitch - self.center) / self.scale)[..., None].to(on.dtype) * on
        start = torch.zeros_like(mask) if note_start is None else note_start.to(mask.device).bool()
        e = self.state(state) + (self.pitch(x) + self.start((start & (state == NOTE)).long())) * on
        return apply_mask(e.transpose(1, 2), mask)  # [B, H, N]
