"""Residual vector quantisation: DAC's factorised, L2-normalised codebooks, or the plain Euclidean
codebooks of SoundStream / NaturalSpeech 2.

``factorized=True`` (DAC / Improved RVQGAN, the default, so official DAC weights load): each stage projects the latent-space residual ``r`` ([B, D, T]) to a small ``codebook_dim`` space
(``in_proj``, a weight-normalised 1x1 conv), L2-normalises it and its codebook, picks the nearest code
by Euclidean distance there (i.e. by cosine similarity), and maps the *un-normalised* code vector back
to latent space with ``out_proj``. The stage's latent-space embedding ``e_j = out_proj(codebook[c_j])``
is subtracted from the residual before the next stage; the quantised latent is ``Σ_j e_j``.
Distances between unit vectors lie in [0, 4], so the CE-RVQ logits ``−d`` span at most 4 nats.

``factorized=False`` (NaturalSpeech 2's codec: "16 quantizers × 1024 codes, code dim 256"): the
codebook lives in the latent space itself (``codebook_dim == input_dim``), no projections and no
normalisation; the code is the Euclidean nearest neighbour of the residual and ``e_j = codebook[c_j]``.

No training loop lives here: the modules return the commitment and codebook losses (per item) and
quantiser dropout follows ``self.training``, as in DAC; weighting and optimisation belong to the trainer.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ns2.codec.layers import WNConv1d

__all__ = ["VectorQuantize", "ResidualVectorQuantize", "VQOutput", "RVQOutput"]


@dataclass
class VQOutput:
    """One quantiser stage. z_q: [B, D, T] (straight-through, latent space); codes: [B, T];
    z_e: [B, d, T] (projected input, low-dim); commitment_loss / codebook_loss: [B]."""

    z_q: torch.Tensor
    codes: torch.Tensor
    z_e: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor


@dataclass
class RVQOutput:
    """The whole stack. z_q: [B, D, T]; codes: [B, n_q, T]; latents: [B, n_q*d, T] (the projected inputs
    of every stage); commitment_loss / codebook_loss: scalars (sum over stages of the batch mean)."""

    z_q: torch.Tensor
    codes: torch.Tensor
    latents: torch.Tensor
    commitment_loss: torch.Tensor
    codebook_loss: torch.Tensor


class VectorQuantize(nn.Module):
    """One VQ stage: factorised and L2-normalised (DAC) or plain Euclidean (NaturalSpeech 2).

    Args:
        input_dim: D, the latent dimension.
        codebook_size: K, the number of codes.
        codebook_dim: d, the dimension the nearest-neighbour search runs in (``factorized=False``: must
            equal D, or None).
        factorized: DAC's low-dimensional projected, L2-normalised codebook (True), or a codebook in
            the latent space compared by plain Euclidean distance (False; module docstring).
    """

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int | None, factorized: bool = True):
        super().__init__()
        self.input_dim = int(input_dim)
        self.codebook_size = int(codebook_size)
        self.factorized = bool(factorized)
        if not self.factorized and codebook_dim not in (None, self.input_dim):
            raise ValueError(
                f"codebook_dim={codebook_dim}: a codebook without factorisation lives in the latent space; "
                f"expected codebook_dim = input_dim = {self.input_dim}"
            )
        self.codebook_dim = int(self.input_dim if codebook_dim is None else codebook_dim)
        if self.factorized:
            self.in_proj = WNConv1d(self.input_dim, self.codebook_dim, kernel_size=1)
            self.out_proj = WNConv1d(self.codebook_dim, self.input_dim, kernel_size=1)
        else:
            self.in_proj = nn.Identity()
            self.out_proj = nn.Identity()
        self.codebook = nn.Embedding(self.codebook_size, self.codebook_dim)

    # --- the search -------------------------------------------------------------------------
    def distances(self, z_e: torch.Tensor) -> torch.Tensor:
        """Squared distances between projected inputs and the codebook, both L2-normalised when
        ``factorized`` (so in [0, 4]), as they are otherwise.

        z_e: [B, d, T] (already in the codebook space) -> [B, K, T].
        """
        b, d, t = z_e.shape
        flat = z_e.transpose(1, 2).reshape(b * t, d)  # [(B T), d]
        book = self.codebook.weight  # [K, d]
        if self.factorized:
            flat, book = F.normalize(flat, dim=1), F.normalize(book, dim=1)
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.t() + book.pow(2).sum(1, keepdim=True).t()
        return dist.reshape(b, t, -1).transpose(1, 2)

    def latent_codebook(self) -> torch.Tensor:
        """Every code's latent-space embedding ``out_proj(codebook)``: [K, D] (the codebook itself when
        not factorised)."""
        return self.out_proj(self.codebook.weight.t()[None])[0].t()

    def logits(self, residual: torch.Tensor, metric: str = "latent") -> torch.Tensor:
        """Negative squared distances of a latent-space residual to this stage's codes. [B, D, T] -> [B, K, T].

        ``metric="latent"``: −‖r − e_k‖² to the codes' latent-space embeddings e_k (where NaturalSpeech
        2's ẑ0 lives: at ẑ0 = Σ_j e_j the true code is the nearest one when later stages are small);
        ``"quantizer"``: the quantiser's own search distance (for DAC, between L2-normalised
        projections, in [0, 4]: ``in_proj`` does not invert ``out_proj``, so at ẑ0 = Σ_j e_j the true
        code is rarely the nearest). Both agree when not factorised.
        """
        if metric == "quantizer" or not self.factorized:
            return -self.distances(self.in_proj(residual))
        if metric != "latent":
            raise ValueError(f"metric must be 'latent' or 'quantizer', got {metric!r}")
        book = self.latent_codebook()  # [K, D]
        cross = torch.einsum("bdt,kd->bkt", residual, book)
        return -(residual.pow(2).sum(1, keepdim=True) - 2 * cross + book.pow(2).sum(1)[None, :, None])

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code. z_e: [B, d, T] -> codes [B, T] (long)."""
        return self.distances(z_e).argmin(dim=1)

    # --- code -> vectors ----------------------------------------------------------------------
    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Raw (un-normalised) code vectors. codes: [B, T] -> [B, d, T]."""
        return F.embedding(codes, self.codebook.weight).transpose(1, 2)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """The stage's latent-space embedding ``out_proj(codebook[codes])``. [B, T] -> [B, D, T]."""
        return self.out_proj(self.lookup(codes))

    def forward(self, residual: torch.Tensor) -> VQOutput:
        """Quantise a latent-space residual [B, D, T]."""
        z_e = self.in_proj(residual)
        codes = self.nearest(z_e)
        z_c = self.lookup(codes)
        commitment_loss = F.mse_loss(z_e, z_c.detach(), reduction="none").mean(dim=(1, 2))
        codebook_loss = F.mse_loss(z_c, z_e.detach(), reduction="none").mean(dim=(1, 2))
        z_c = z_e + (z_c - z_e).detach()  # straight-through: value of the code, gradient of z_e
        return VQOutput(self.out_proj(z_c), codes, z_e, commitment_loss, codebook_loss)


class ResidualVectorQuantize(nn.Module):
    """A stack of :class:`VectorQuantize` stages applied to successive residuals.

    Args:
        input_dim: D.
        n_codebooks: number of stages.
        codebook_size: K (every stage).
        codebook_dim: d, an int or one per stage (None with ``factorized=False``: D).
        factorized: DAC's factorised, L2-normalised codebooks (True) or Euclidean latent-space ones.
        quantizer_dropout: in training mode, this fraction of each batch (its first items, as DAC does)
            keeps only a random number (1..n_codebooks) of stages; ``True`` means 1.0.
    """

    def __init__(
        self,
        input_dim: int = 512,
        n_codebooks: int = 9,
        codebook_size: int = 1024,
        codebook_dim: int | list[int] | None = 8,
        quantizer_dropout: float | bool = 0.0,
        factorized: bool = True,
    ):
        super().__init__()
        if codebook_dim is None:
            codebook_dim = int(input_dim)
        dims = [int(codebook_dim)] * n_codebooks if isinstance(codebook_dim, int) else [int(d) for d in codebook_dim]
        if len(dims) != n_codebooks:
            raise ValueError(f"codebook_dim has {len(dims)} entries for {n_codebooks} codebooks")
        self.n_codebooks = int(n_codebooks)
        self.codebook_size = int(codebook_size)
        self.codebook_dim = dims
        self.quantizer_dropout = float(quantizer_dropout)
        self.factorized = bool(factorized)
        self.quantizers = nn.ModuleList(VectorQuantize(input_dim, codebook_size, d, self.factorized) for d in dims)

    def _check_n_q(self, n_q: int | None) -> int:
        n_q = self.n_codebooks if n_q is None else int(n_q)
        if not 1 <= n_q <= self.n_codebooks:
            raise ValueError(f"n_q must be in [1, {self.n_codebooks}], got {n_q}")
        return n_q

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> RVQOutput:
        """Quantise z [B, D, T] with the first ``n_q`` stages (all by default).

        In training mode with ``n_q=None`` every stage runs and quantiser dropout masks stages per item
        (codes of masked stages are still returned, as in DAC); with ``n_q`` given, exactly n_q stages run.
        """
        batch = z.shape[0]
        if self.training and n_q is None:
            kept = torch.full((batch,), self.n_codebooks + 1, device=z.device)
            n_drop = int(batch * self.quantizer_dropout)
            if n_drop > 0:
                draw = torch.randint(1, self.n_codebooks + 1, (batch,))
                kept[:n_drop] = draw[:n_drop].to(z.device)
            stages = self.n_codebooks
        else:
            stages = self._check_n_q(n_q)
            kept = None

        z_q = torch.zeros_like(z)
        residual = z
        commitment = z.new_zeros(())
        codebook = z.new_zeros(())
        codes, latents = [], []
        for i, vq in enumerate(self.quantizers[:stages]):
            out = vq(residual)
            if kept is None:
                z_q = z_q + out.z_q
                commitment = commitment + out.commitment_loss.mean()
                codebook = codebook + out.codebook_loss.mean()
            else:
                mask = (i < kept).to(z.dtype)
                z_q = z_q + out.z_q * mask[:, None, None]
                commitment = commitment + (out.commitment_loss * mask).mean()
                codebook = codebook + (out.codebook_loss * mask).mean()
            residual = residual - out.z_q
            codes.append(out.codes)
            latents.append(out.z_e)
        return RVQOutput(z_q, torch.stack(codes, dim=1), torch.cat(latents, dim=1), commitment, codebook)

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Σ_j out_proj_j(codebook_j[codes_j]). codes: [B, n, T] (n ≤ n_codebooks) -> z [B, D, T]."""
        self._check_n_q(codes.shape[1])
        z = self.quantizers[0].embed(codes[:, 0])
        for j in range(1, codes.shape[1]):
            z = z + self.quantizers[j].embed(codes[:, j])
        return z
