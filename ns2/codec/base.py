"""The codec interface the rest of ns2 programs against.

Shapes: ``B`` batch, ``S`` samples, ``T`` codec frames (``T = ceil(S / hop_length)``), ``D`` the latent
dimension, ``n_q`` the number of residual quantisers, ``K`` the codebook size.

NaturalSpeech 2 diffuses in the codec's *quantised latent space*: ``z = Σ_j e_j`` where ``e_j`` is the
latent-space embedding of layer j's code. Its CE-RVQ loss compares a predicted ``ẑ0`` with the codes of
the ground truth, layer by layer: for layer j the residual ``r_j = ẑ0 − Σ_{i<j} e_i`` (with the
ground-truth ``e_i``) is scored against layer j's codebook by negative squared distances
(:meth:`Codec.codebook_logits`): in the latent space, to the codes' embeddings (``metric="latent"``,
the paper's, whose codebooks live in the latent space), or the way the quantiser searches
(``"quantizer"``), softmaxed, and trained with cross-entropy to the true code.
:meth:`Codec.rvq_logits` returns all layers at once.
"""
from __future__ import annotations

import abc
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Codec"]


class Codec(nn.Module, metaclass=abc.ABCMeta):
    """An audio codec with residual vector quantisation and a continuous latent space.

    Subclasses implement the abstract members; everything else is derived from them.
    """

    _frozen: bool = False

    # --- description ------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def sample_rate(self) -> int:
        """Audio sample rate in Hz."""

    @property
    @abc.abstractmethod
    def hop_length(self) -> int:
        """Samples per codec frame."""

    @property
    @abc.abstractmethod
    def n_q(self) -> int:
        """Number of residual quantisers."""

    @property
    @abc.abstractmethod
    def codebook_size(self) -> int:
        """Codes per quantiser (K)."""

    @property
    @abc.abstractmethod
    def latent_dim(self) -> int:
        """Dimension D of the latent space."""

    @property
    def frame_rate(self) -> float:
        """Codec frames per second."""
        return self.sample_rate / self.hop_length

    # --- the codec --------------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, wav: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """wav: [B, 1, S] -> codes: [B, n_q, T] (long), T = frames(S); the input is padded as by
        :meth:`preprocess` first."""

    @abc.abstractmethod
    def quantize(self, z: torch.Tensor, n_q: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantise a continuous latent. z: [B, D, T] -> (codes [B, n_q, T], z_q [B, D, T])."""

    @abc.abstractmethod
    def codes_to_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: [B, n, T] (first n ≤ n_q layers) -> z: [B, D, T] = Σ_j e_j (latent-space embeddings)."""

    @abc.abstractmethod
    def decode(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """z: [B, D, T] -> wav: [B, 1, S]. With ``length`` the output is cropped / zero-padded to it."""

    @abc.abstractmethod
    def layer_latent(self, codes_j: torch.Tensor, layer: int) -> torch.Tensor:
        """The latent-space embedding e_j of layer ``layer``'s codes. codes_j: [B, T] -> [B, D, T]."""

    @abc.abstractmethod
    def codebook_logits(self, residual: torch.Tensor, layer: int, metric: str = "latent") -> torch.Tensor:
        """Negative squared distances of a latent-space residual to layer ``layer``'s codes: to their
        latent-space embeddings (``metric="latent"``) or as the quantiser measures them
        (``"quantizer"``). residual: [B, D, T] -> logits: [B, K, T]."""

    # --- derived ----------------------------------------------------------------------------
    def frames(self, num_samples: int) -> int:
        """Codec frames for ``num_samples`` samples (the input is right-padded to a whole frame)."""
        return math.ceil(int(num_samples) / self.hop_length)

    def preprocess(self, wav: torch.Tensor) -> torch.Tensor:
        """Right-pad wav [..., S] with zeros to a multiple of hop_length: [..., frames(S) * hop_length]."""
        pad = self.frames(wav.shape[-1]) * self.hop_length - wav.shape[-1]
        return F.pad(wav, (0, pad)) if pad else wav

    def encode_latent(self, wav: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """The quantised latent of audio, NaturalSpeech 2's diffusion target. [B, 1, S] -> [B, D, T]."""
        return self.codes_to_latent(self.encode(wav, n_q))

    def decode_codes(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """codes: [B, n, T] -> wav: [B, 1, S]."""
        return self.decode(self.codes_to_latent(codes), length)

    def rvq_logits(self, z_hat: torch.Tensor, codes: torch.Tensor, metric: str = "latent") -> torch.Tensor:
        """Logits of NaturalSpeech 2's CE-RVQ loss, all layers at once.

        z_hat: [B, D, T] predicted latent; codes: [B, n, T] ground-truth codes (n ≤ n_q).
        Returns [B, n, K, T]: layer j scores ``z_hat − Σ_{i<j} e_i(codes_i)`` against codebook j, so
        ``F.cross_entropy(logits.transpose(1, 2), codes)`` is the loss (averaged over layers and frames).
        Gradients flow into ``z_hat`` (and into the codec only if its parameters require them).
        """
        out = []
        residual = z_hat
        for j in range(codes.shape[1]):
            out.append(self.codebook_logits(residual, j, metric))
            if j + 1 < codes.shape[1]:
                residual = residual - self.layer_latent(codes[:, j], j)
        return torch.stack(out, dim=1)

    def freeze(self) -> Codec:
        """Eval mode and no gradients, for good: a later ``.train()`` (e.g. from a parent module) keeps
        the codec in eval mode."""
        self.requires_grad_(False)
        self._frozen = True
        return self.eval()

    @property
    def frozen(self) -> bool:
        return self._frozen

    def train(self, mode: bool = True) -> Codec:
        return super().train(False if self._frozen else mode)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
