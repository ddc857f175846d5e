"""YourTTS's training losses (VITS §2 and YourTTS §3), as pure functions.

The generator's objective (VITS eq. 8 plus YourTTS's speaker consistency term)::

    L_G = λ_mel·L_mel + λ_kl·L_kl + λ_dur·L_dur + λ_adv·L_adv + λ_fm·L_fm + λ_scl·L_scl

* ``L_mel``: L1 between log-mels of the generated and the real segment (VITS: λ = 45);
* ``L_kl``: the KL between the posterior pushed through the flow and the text prior expanded by the
  alignment (VITS eq. 10, a single-sample estimate), summed over channels and frames, averaged per
  valid frame (:func:`kl_loss`, λ = 1);
* ``L_dur``: the stochastic duration predictor's negative variational lower bound (or the
  deterministic predictor's squared log-duration error), per token (:func:`duration_loss`, λ = 1);
* ``L_adv``, ``L_fm``: least-squares GAN and feature matching, the project's codec losses
  (:mod:`ns2.losses.codec`; VITS: λ_fm = 2);
* ``L_scl``: YourTTS's speaker consistency loss, ``−mean cos(φ(y), φ(ŷ))`` over a frozen speaker
  encoder φ (:func:`speaker_consistency_loss`, YourTTS: α = 9).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ns2.losses.codec import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss

__all__ = ["DEFAULT_LOSS_WEIGHTS", "duration_loss", "feature_matching_loss", "kl_loss", "lsgan_discriminator_loss",
           "lsgan_generator_loss", "speaker_consistency_loss"]

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"mel": 45.0, "kl": 1.0, "duration": 1.0, "adv_gen": 1.0, "feat": 2.0,
                                          "speaker": 9.0}
"""VITS's c_mel = 45, c_kl = 1, feature matching 2, adversarial 1, duration 1; YourTTS's α = 9 for the
speaker consistency loss (used only when ``speaker_consistency`` is on)."""


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor,
            mask: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) ‖ p(z|c)) estimated at the sample ``z_p = f(z)`` (VITS eq. 10).

    z_p, logs_q: [B, C, T] (the flow's output and the posterior's log-std); m_p, logs_p: [B, C, T] (the
    prior expanded to frames by the alignment); mask: [B, 1, T]. Returns a scalar: the sum over channels
    and valid frames divided by the number of valid frames.
    """
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return (kl * mask).sum() / mask.sum().clamp(min=1.0)


def duration_loss(nll: torch.Tensor, token_lengths: torch.Tensor) -> torch.Tensor:
    """The duration term per token: nll: [B] (summed over each item's tokens) -> scalar, ``Σ nll / Σ L``."""
    return nll.float().sum() / token_lengths.float().sum().clamp(min=1.0)


def speaker_consistency_loss(emb_real: torch.Tensor, emb_fake: torch.Tensor) -> torch.Tensor:
    """``−mean_b cos(e_b, ê_b)`` (YourTTS eq. 1 without α). emb_real, emb_fake: [B, D]."""
    return -F.cosine_similarity(emb_real.float(), emb_fake.float(), dim=-1).mean()
