"""The learned phoneme aligner (RAD-TTS / "One TTS Alignment To Rule Them All", Badlani et al. 2022).

Text encoder (embedding + convs) -> keys ``k: [B, A, L]``; mel encoder (convs) -> queries
``q: [B, A, T]``. The soft attention of frame ``t`` over tokens is the posterior

    attn_logprob[t, :] = log_softmax_j( log_softmax_j(-temperature * ||q_t - k_j||^2) + log prior[t, j] )
    attn_soft[t, :]    = exp(attn_logprob[t, :])

The static **beta-binomial prior** (Badlani et al. 2022, eq. 4) favours the diagonal: for an item
with ``T`` frames and ``L`` tokens, frame ``t`` (1-based) has
``prior[t, :] = BetaBinomial(n = L - 1, a = omega * t, b = omega * (T - t + 1))`` over token
indices ``0..L-1``, computed from each item's own lengths. It is added in log space (a product of
probabilities) and the result is **renormalised** over tokens, so each frame's attention is a
distribution. (RAD-TTS/NeMo feed the unnormalised sum to the forward-sum loss; there the blank can win
any frame by attending where the prior is ~0, and on synthetic data that shortcut gives lower loss
than the true alignment. Renormalised, the blank's share is the same on every frame and the shortcut
is gone; on the tone sequences of the unit tests alignments were clearly more accurate.) On speech
the opposite holds: on the synthetic speech corpus the renormalised posterior drifted away from the
true alignment as training went on (``<sil>`` tokens absorbing speech frames; median boundary error
150 ms after 250 steps, 225 ms after 750), while the unnormalised sum (``renormalize=False``) was
at 25 ms after 250 steps and kept improving (``experiments/aligner/README.md``), so the training
configs (``configs/model/aligner.yaml``) use ``renormalize: false``. ``prior_omega=None`` turns the
prior off.

``temperature`` scales the squared distances; the default 0.1 gives initial logits spread ~1 with
this module's initialisation (RAD-TTS's 0.0005 is for raw 80-bin mel queries, far larger than ours;
here it leaves the attention flat for hundreds of steps).

Masks: padded tokens get no attention (excluded before the softmax), padded frames get none either;
``attn_logprob`` holds ``-1e4`` on padded entries and ``attn_soft``/``attn_hard`` hold 0. Every conv
sees zeros on padding (inputs are masked before each conv), normalisation is per frame or per item
over its valid frames, so an item's outputs do not depend on the batch it is padded into (in eval
mode; dropout is random in training).

Tokens without acoustics of their own (word boundaries, punctuation, stress marks: ``align_mask``
False, see :mod:`ns2.data.aligner.tokens`) are read by the text encoder as context but get no
attention column: keys, prior, attention and MAS run over the ``L'`` aligned tokens, and their
durations are scattered back to one entry per input token (0 for the others).

``attn_hard`` is the MAS path (:mod:`ns2.data.aligner.mas`) over ``attn_logprob`` restricted to each
item's valid lengths. ``durations = attn_hard.sum(frames)``: with ``T >= L'`` every aligned token
gets at least one frame and an item's durations sum exactly to its frame count.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ns2.data.aligner.mas import maximum_path, path_to_durations
from ns2.data.aligner.tokens import compact_index, expand_durations
from ns2.modules.dropout import Dropout

__all__ = ["AlignerModel", "AlignerOutput", "beta_binomial_log_prior"]

MASKED = -1e4  # log-probability written on padded entries (finite: safe under softmax and CTC)


@dataclass
class AlignerOutput:
    """Attention maps are over the ``L'`` aligned tokens (all valid tokens when no ``align_mask``)."""

    attn_logprob: torch.Tensor  # [B, 1, T, L'] log soft attention (-1e4 on padding)
    attn_soft: torch.Tensor  # [B, 1, T, L']
    attn_hard: torch.Tensor | None  # [B, 1, T, L'] one-hot per valid frame, or None when not computed
    durations: torch.Tensor | None  # [B, L] long, frames per token of the input (0 on padding/unaligned)
    token_mask: torch.Tensor  # [B, L'] bool, valid aligned tokens
    align_mask: torch.Tensor  # [B, L] bool, which input tokens are aligned (column i of the maps is
    #                           the i-th True of its row)

    @property
    def token_lengths(self) -> torch.Tensor:
        """[B] aligned tokens per item."""
        return self.token_mask.sum(-1)


def beta_binomial_log_prior(frame_lengths: torch.Tensor, token_lengths: torch.Tensor, T: int, L: int,
                            omega: float = 1.0) -> torch.Tensor:
    """Log beta-binomial alignment prior. frame_lengths, token_lengths: [B] -> [B, T, L] (float32).

    Entries outside an item's ``[frames, tokens]`` are 0 (they are masked elsewhere).
    """
    dev = frame_lengths.device
    tl = frame_lengths.to(torch.float64)[:, None, None]  # [B, 1, 1]
    n = (token_lengths.to(torch.float64) - 1).clamp(min=0)[:, None, None]  # [B, 1, 1]
    t = torch.arange(1, T + 1, device=dev, dtype=torch.float64)[None, :, None]  # [1, T, 1]
    k = torch.arange(L, device=dev, dtype=torch.float64)[None, None, :]  # [1, 1, L]
    a = omega * t
    b = omega * (tl - t + 1).clamp(min=1)
    nk = (n - k).clamp(min=0)
    lg = torch.lgamma
    log_p = (lg(n + 1) - lg(k + 1) - lg(nk + 1)
             + lg(k + a) + lg(nk + b) - lg(n + a + b)
             - lg(a) - lg(b) + lg(a + b))
    valid = (t <= tl) & (k <= n)
    return torch.where(valid, log_p, torch.zeros_like(log_p)).float()


class _ConvBlock(nn.Module):
    """Masked conv -> ReLU -> LayerNorm over channels -> dropout, with a residual. x: [B, C, N]."""

    def __init__(self, channels: int, kernel_size: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(channels)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: [B, C, N], mask: [B, 1, N] float -> [B, C, N] (zero on padding)."""
        y = F.relu(self.conv(x * mask))
        y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        return (x + self.dropout(y)) * mask


class _Projection(nn.Module):
    """Masked conv(k) -> ReLU -> conv(1) [-> ReLU -> conv(1)]: the key/query projections of RAD-TTS."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int, depth: int):
        super().__init__()
        self.first = nn.Conv1d(in_channels, hidden, kernel_size, padding=kernel_size // 2)
        self.rest = nn.ModuleList(nn.Conv1d(hidden, hidden, 1) for _ in range(depth - 2))
        self.last = nn.Conv1d(hidden, out_channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.first(x * mask))
        for conv in self.rest:
            y = F.relu(conv(y))
        return self.last(y) * mask


class AlignerModel(nn.Module):
    """Phoneme-to-frame aligner.

    Args:
        vocab_size: number of phoneme ids (``len(DEFAULT_SYMBOLS)`` for the default symbol table).
        n_mels: mel channels of the input spectrogram.
        hidden_dim: width of the text and mel encoders.
        attn_dim: dimension of keys and queries.
        text_layers / mel_layers: residual conv blocks in the text / mel encoders.
        kernel_size: kernel of the encoder convs.
        dropout: dropout inside the encoder blocks.
        temperature: scale of the negative squared distance (see the module docstring).
        prior_omega: scaling of the beta-binomial prior (``None`` disables the prior).
        renormalize: renormalise attention x prior over tokens (the posterior; see the module
            docstring). ``False`` reproduces RAD-TTS/NeMo, whose ``attn_logprob`` is the unnormalised
            sum; it aligns speech far better (the training configs use it).
        strict_mas: raise when an item has fewer frames than tokens (else it gets a diagonal path).
    """

    def __init__(self, vocab_size: int, n_mels: int = 80, hidden_dim: int = 256, attn_dim: int = 80,
                 text_layers: int = 3, mel_layers: int = 0, kernel_size: int = 5, dropout: float = 0.1,
                 temperature: float = 0.1, prior_omega: float | None = 1.0, renormalize: bool = True,
                 strict_mas: bool = False):
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"AlignerModel: vocab_size must be >= 1, got {vocab_size}")
        self.config = dict(vocab_size=vocab_size, n_mels=n_mels, hidden_dim=hidden_dim, attn_dim=attn_dim,
                           text_layers=text_layers, mel_layers=mel_layers, kernel_size=kernel_size,
                           dropout=dropout, temperature=temperature, prior_omega=prior_omega,
                           renormalize=renormalize, strict_mas=strict_mas)
        self.vocab_size = vocab_size
        self.n_mels = n_mels
        self.temperature = temperature
        self.prior_omega = prior_omega
        self.renormalize = renormalize
        self.strict_mas = strict_mas
        self.embedding = nn.Embedding(vocab_size, hidden_dim)
        self.text_blocks = nn.ModuleList(_ConvBlock(hidden_dim, kernel_size, dropout) for _ in range(text_layers))
        self.key_proj = _Projection(hidden_dim, hidden_dim, attn_dim, kernel_size=3, depth=2)
        self.mel_in = nn.Conv1d(n_mels, hidden_dim, 1)
        self.mel_blocks = nn.ModuleList(_ConvBlock(hidden_dim, kernel_size, dropout) for _ in range(mel_layers))
        self.query_proj = _Projection(hidden_dim, hidden_dim, attn_dim, kernel_size=3, depth=3)

    # ------------------------------------------------------------------ encoders
    def encode_text(self, phonemes: torch.Tensor, phoneme_mask: torch.Tensor) -> torch.Tensor:
        """phonemes: [B, L] long, phoneme_mask: [B, L] bool -> keys [B, A, L]."""
        m = phoneme_mask[:, None, :].float()
        x = self.embedding(phonemes.clamp(0, self.vocab_size - 1)).transpose(1, 2) * m  # [B, H, L]
        for block in self.text_blocks:
            x = block(x, m)
        return self.key_proj(x, m)

    def encode_mel(self, mel: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """mel: [B, n_mels, T], frame_mask: [B, T] bool -> queries [B, A, T].

        The log-mel is standardised per item over its valid frames (one mean and scale per item), so
        the aligner is insensitive to recording gain.
        """
        m = frame_mask[:, None, :].float()
        count = (m.sum(dim=(1, 2), keepdim=True) * mel.shape[1]).clamp(min=1.0)
        mean = (mel * m).sum(dim=(1, 2), keepdim=True) / count
        var = (((mel - mean) * m) ** 2).sum(dim=(1, 2), keepdim=True) / count
        x = (mel - mean) / (var + 1e-5).sqrt() * m
        x = self.mel_in(x) * m
        for block in self.mel_blocks:
            x = block(x, m)
        return self.query_proj(x, m)

    # ------------------------------------------------------------------ attention
    def forward(self, phonemes: torch.Tensor, phoneme_mask: torch.Tensor, mel: torch.Tensor,
                frame_mask: torch.Tensor, align_mask: torch.Tensor | None = None, hard: bool = True) -> AlignerOutput:
        """Align a batch.

        phonemes: [B, L] long, phoneme_mask: [B, L] bool, mel: [B, n_mels, T], frame_mask: [B, T] bool,
        align_mask: [B, L] bool, the tokens that receive frames (default: every valid token; see
        :mod:`ns2.data.aligner.tokens`). The text encoder reads all valid tokens; attention, prior and
        MAS run over the ``L'`` aligned ones. Returns :class:`AlignerOutput` (``attn_hard`` and
        ``durations`` are None when ``hard=False``).
        """
        B, L = phonemes.shape
        if phoneme_mask.shape != (B, L):
            raise ValueError(f"AlignerModel: phoneme_mask must be shaped {(B, L)}, got {tuple(phoneme_mask.shape)}")
        if align_mask is not None and align_mask.shape != (B, L):
            raise ValueError(f"AlignerModel: align_mask must be shaped {(B, L)}, got {tuple(align_mask.shape)}")
        if mel.dim() != 3 or mel.shape[0] != B or mel.shape[1] != self.n_mels:
            raise ValueError(f"AlignerModel: mel must be shaped [{B}, {self.n_mels}, T], got {tuple(mel.shape)}")
        T = mel.shape[2]
        if frame_mask.shape != (B, T):
            raise ValueError(f"AlignerModel: frame_mask must be shaped {(B, T)}, got {tuple(frame_mask.shape)}")
        phoneme_mask = phoneme_mask.bool()
        frame_mask = frame_mask.bool()
        keep = phoneme_mask if align_mask is None else phoneme_mask & align_mask.bool()  # [B, L]
        keys = self.encode_text(phonemes, phoneme_mask).float()  # [B, A, L]
        if align_mask is not None:
            index, token_mask = compact_index(keep)  # [B, L'], [B, L']
            keys = keys.gather(2, index[:, None, :].expand(-1, keys.shape[1], -1)) * token_mask[:, None, :].float()
        else:
            token_mask = keep
        L2 = keys.shape[2]
        queries = self.encode_mel(mel.float(), frame_mask).float()  # [B, A, T]
        with torch.autocast(device_type=mel.device.type, enabled=False):
            q = queries.transpose(1, 2)  # [B, T, A]
            dist = (q.pow(2).sum(-1, keepdim=True) + keys.pow(2).sum(1, keepdim=True)
                    - 2.0 * torch.bmm(q, keys)).clamp(min=0.0)  # [B, T, L']
            scores = (-self.temperature * dist).masked_fill(~token_mask[:, None, :], MASKED)
            logprob = torch.log_softmax(scores, dim=-1)
            token_lengths = token_mask.sum(-1)
            frame_lengths = frame_mask.sum(-1)
            if self.prior_omega is not None:
                logprob = logprob + beta_binomial_log_prior(frame_lengths, token_lengths, T, L2, self.prior_omega)
                if self.renormalize:
                    logprob = torch.log_softmax(logprob.masked_fill(~token_mask[:, None, :], MASKED), dim=-1)
            valid = frame_mask[:, :, None] & token_mask[:, None, :]  # [B, T, L']
            logprob = logprob.masked_fill(~valid, MASKED)
            soft = torch.softmax(logprob, dim=-1) * frame_mask[:, :, None].float()
        attn_hard = durations = None
        if hard:
            path = maximum_path(logprob, frame_lengths, token_lengths, strict=self.strict_mas)  # [B, T, L']
            attn_hard = path[:, None]
            durations = path_to_durations(path)
            if align_mask is not None:
                durations = expand_durations(durations, keep)  # [B, L]
        return AlignerOutput(attn_logprob=logprob[:, None], attn_soft=soft[:, None], attn_hard=attn_hard,
                             durations=durations, token_mask=token_mask, align_mask=keep)
