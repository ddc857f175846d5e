"""Speaker encoders for YourTTS: waveform -> L2-normalised speaker embedding, differentiable w.r.t. the wav.

YourTTS conditions VITS on an external speaker embedding (a d-vector) and adds the *speaker consistency
loss* (SCL): the cosine similarity between the embeddings of the generated and the ground-truth segment,
computed by a frozen speaker encoder. The loss needs the encoder to be differentiable w.r.t. its input
waveform, so both encoders here compute their spectrograms in torch (``torch.stft``; no librosa or
torchaudio at run time; librosa only builds a filterbank once).

Both share one small interface::

    enc.sample_rate                  # Hz the encoder expects (16 kHz for both)
    enc.dim                          # embedding size
    emb = enc(wav, lengths=None)     # wav [B, S] -> emb [B, dim], unit L2 norm

``lengths`` ([B] samples, or None for "all of S"; values past ``S`` are clipped to ``S``) gives exactly
what each item would give alone. ``enc.kwargs`` holds the constructor arguments (plain values), so
``type(enc)(**enc.kwargs)`` plus ``load_state_dict`` rebuilds it (the checkpoint records of
:mod:`ns2.inference.yourtts` rely on it).

* :class:`ResemblyzerSpeakerEncoder`: resemblyzer's GE2E ``VoiceEncoder`` (3-layer LSTM, 256-d, weights
  shipped in the resemblyzer wheel), on a torch version of resemblyzer's 40-band power mel (16 kHz, 25 ms
  Hann window, 10 ms hop, librosa's Slaney filterbank, centred frames with zero padding as librosa 0.10+
  pads). ``mode="partials"`` (default) reproduces ``VoiceEncoder.embed_utterance`` on the same
  (unpreprocessed) audio: 1.6 s partial windows at 1.3 per second, zero-padded tail, mean of the partial
  embeddings renormalised; ``mode="utterance"`` runs the LSTM once over the whole utterance
  (``VoiceEncoder.forward`` on the whole mel). Always frozen. This is the offline fallback backbone.
* :class:`ResNetSpeakerEncoder`: the H/ASP ResNet-34 of the released YourTTS (Coqui
  ``TTS/encoder/models/resnet.py``, ``model_se.pth``): pre-emphasis 0.97, 64-band power mel (n_fft 512,
  Hamming window 400, hop 160, HTK mel scale without normalisation: torchaudio's ``MelSpectrogram``
  defaults, reflect-padded centred frames), ``log(x + 1e-6)``, instance norm, ResNet of SE basic blocks,
  attentive statistics pooling, linear to 512. Attribute names follow Coqui's so ``model_se.pth`` loads
  through :func:`ns2.models.yourtts.coqui.coqui_se_to_ns2_state`. Unlike Coqui's ``forward`` (which runs the
  spectrogram and instance norm under ``torch.no_grad()``, so Coqui's SCL gradient never reaches the
  generator through this path), the whole front end here is differentiable.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ResNetSpeakerEncoder",
    "ResemblyzerSpeakerEncoder",
    "SpeakerEncoder",
    "htk_mel_filterbank",
    "resemblyzer_weights_path",
]


def _as_batch(wav: torch.Tensor, who: str) -> torch.Tensor:
    if wav.dim() == 3 and wav.shape[1] == 1:
        wav = wav[:, 0]
    elif wav.dim() == 1:
        wav = wav[None]
    if wav.dim() != 2:
        raise ValueError(f"{who}: wav must be shaped [B, S], [B, 1, S] or [S], got {tuple(wav.shape)}")
    return wav


def _lengths_list(lengths: torch.Tensor | Sequence[int] | None, batch: int, num_samples: int, who: str) -> list[int]:
    if lengths is None:
        return [num_samples] * batch
    out = [int(n) for n in (lengths.tolist() if torch.is_tensor(lengths) else lengths)]
    if len(out) != batch:
        raise ValueError(f"{who}: got {len(out)} lengths for a batch of {batch}")
    bad = [n for n in out if n < 1]
    if bad:
        raise ValueError(f"{who}: lengths must be >= 1, got {bad[:3]}")
    return [min(n, num_samples) for n in out]  # a length past the padded batch means "all of it"


class SpeakerEncoder(nn.Module):
    """Base class: ``forward(wav [B, S], lengths [B] | None) -> [B, dim]`` (unit norm), ``sample_rate``, ``dim``.

    Subclasses implement ``_embed_same_length(wav [B, S]) -> [B, dim]``; the base class splits a batch of
    unequal ``lengths`` into groups of equal length (so each item gives what it gives alone).
    A frozen encoder (:meth:`freeze`) has no trainable parameters and stays in eval mode through
    ``.train()`` calls of a parent module.
    """

    sample_rate: int
    dim: int
    kwargs: dict
    frozen: bool = False

    def freeze(self) -> "SpeakerEncoder":
        self.frozen = True
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "SpeakerEncoder":
        return super().train(False if self.frozen else mode)

    def _embed_same_length(self, wav: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        who = type(self).__name__
        wav = _as_batch(wav, who)
        lens = _lengths_list(lengths, wav.shape[0], wav.shape[-1], who)
        if all(n == wav.shape[-1] for n in lens):
            return self._embed_same_length(wav)
        out: list[torch.Tensor | None] = [None] * len(lens)
        for n in sorted(set(lens)):
            idx = [i for i, m in enumerate(lens) if m == n]
            emb = self._embed_same_length(wav[idx, :n])
            for j, i in enumerate(idx):
                out[i] = emb[j]
        return torch.stack(out)  # type: ignore[arg-type]


# --- Resemblyzer ---------------------------------------------------------------------------------
def resemblyzer_weights_path() -> Path:
    """The ``pretrained.pt`` shipped inside the installed resemblyzer package (without importing it:
    importing resemblyzer imports webrtcvad and librosa's audio loading, which the encoder does not need)."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("ResemblyzerSpeakerEncoder needs the resemblyzer package (its weights ship in the "
                                "wheel): `pip install resemblyzer`")
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"


class ResemblyzerSpeakerEncoder(SpeakerEncoder):
    """Resemblyzer's GE2E LSTM speaker encoder on a differentiable torch mel front end. Frozen.

    Args:
        weights_path: a resemblyzer checkpoint (``{"model_state": {...}}``); default the wheel's
            ``pretrained.pt``. Read with ``torch.load(weights_only=True)``.
        mode: ``"partials"`` (``embed_utterance``'s 1.6 s windows, averaged) or ``"utterance"`` (one LSTM
            pass over the whole utterance, as ``VoiceEncoder.forward`` on its whole mel).
        rate, min_coverage: ``embed_utterance``'s partial-window settings (partials per second; the
            fraction of a last, zero-padded window that must be covered by audio for it to be kept).
        pad_mode: padding of the centred STFT frames: ``"constant"`` (zeros; librosa >= 0.10, which
            ``embed_utterance`` uses here) or ``"reflect"`` (librosa < 0.10, with which resemblyzer was trained).
    """

    sample_rate = 16000
    dim = 256
    n_fft = 400  # 25 ms at 16 kHz (resemblyzer: mel_window_length)
    hop_length = 160  # 10 ms (mel_window_step)
    n_mels = 40
    partial_frames = 160  # 1.6 s (partials_n_frames)
    hidden_size = 256
    num_layers = 3

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        mode: str = "partials",
        rate: float = 1.3,
        min_coverage: float = 0.75,
        pad_mode: str = "constant",
    ):
        super().__init__()
        if mode not in ("partials", "utterance"):
            raise ValueError(f"ResemblyzerSpeakerEncoder: mode must be 'partials' or 'utterance', got {mode!r}")
        if pad_mode not in ("constant", "reflect"):
            raise ValueError(f"ResemblyzerSpeakerEncoder: pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")
        if not 0 < min_coverage <= 1:
            raise ValueError(f"ResemblyzerSpeakerEncoder: min_coverage must lie in (0, 1], got {min_coverage}")
        self.mode, self.rate, self.min_coverage, self.pad_mode = mode, float(rate), float(min_coverage), pad_mode
        self.kwargs = dict(weights_path=None if weights_path is None else str(weights_path), mode=mode,
                           rate=self.rate, min_coverage=self.min_coverage, pad_mode=pad_mode)
        self.frame_step = int(round((self.sample_rate / self.rate) / self.hop_length))
        if not 0 < self.frame_step <= self.partial_frames:
            raise ValueError(f"ResemblyzerSpeakerEncoder: rate {rate} gives a frame step of {self.frame_step} frames; "
                             f"it must lie in [1, {self.partial_frames}]")
        import librosa

        basis = librosa.filters.mel(sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels)  # Slaney, [40, 201]
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.lstm = nn.LSTM(self.n_mels, self.hidden_size, self.num_layers, batch_first=True)
        self.linear = nn.Linear(self.hidden_size, self.dim)

        path = Path(weights_path) if weights_path is not None else resemblyzer_weights_path()
        try:  # the weights only: resemblyzer's own loader unpickles the file without weights_only
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file becomes one line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"{path}: not a resemblyzer checkpoint readable with torch.load(weights_only=True): "
                             f"{first}") from None
        state = ckpt.get("model_state", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a resemblyzer checkpoint (a dict with 'model_state')")
        state = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}  # drop GE2E's similarity_*
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{path}: not resemblyzer's VoiceEncoder layout ({' '.join(str(e).split())[:200]})") from None
        self.freeze()

    # -- front end
    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, S] -> power mel [B, 1 + S // 160, 40] (resemblyzer's ``wav_to_mel_spectrogram``)."""
        wav = _as_batch(wav, "ResemblyzerSpeakerEncoder.mel").float()
        with torch.autocast(device_type=wav.device.type, enabled=False):
            spec = torch.stft(
                wav, n_fft=self.n_fft, hop_length=self.hop_length, window=self.window.to(wav.device),
                center=True, pad_mode=self.pad_mode, return_complex=True,
            )  # [B, 201, T]
            power = spec.real.square() + spec.imag.square()
            return torch.matmul(self.mel_basis, power).transpose(1, 2)

    def embed_mels(self, mels: torch.Tensor) -> torch.Tensor:
        """``VoiceEncoder.forward``: mels [B, T, 40] -> [B, 256] (the last hidden state, ReLU, unit norm)."""
        x = mels.float()
        # cuDNN's LSTM refuses a backward pass in eval mode; the native kernel computes the same function
        with torch.backends.cudnn.flags(enabled=not (mels.is_cuda and torch.is_grad_enabled())):
            _, (hidden, _) = self.lstm(x)
        return F.normalize(F.relu(self.linear(hidden[-1])), dim=-1)

    def partial_slices(self, num_samples: int) -> tuple[list[tuple[int, int]], int]:
        """``VoiceEncoder.compute_partial_slices``: mel frame ranges of the partial windows, and the number
        of samples the waveform is zero-padded to (at least ``num_samples``)."""
        n_frames = int(math.ceil((num_samples + 1) / self.hop_length))
        steps = max(1, n_frames - self.partial_frames + self.frame_step + 1)
        slices = [(i, i + self.partial_frames) for i in range(0, steps, self.frame_step)]
        start, stop = slices[-1][0] * self.hop_length, slices[-1][1] * self.hop_length
        coverage = (num_samples - start) / (stop - start)
        if coverage < self.min_coverage and len(slices) > 1:
            slices = slices[:-1]
        return slices, max(num_samples, slices[-1][1] * self.hop_length)

    def _embed_same_length(self, wav: torch.Tensor) -> torch.Tensor:
        b, s = wav.shape
        if self.mode == "utterance":
            return self.embed_mels(self.mel(wav))
        slices, padded = self.partial_slices(s)
        mel = self.mel(F.pad(wav, (0, padded - s)))  # [B, T, 40]
        parts = torch.stack([mel[:, a:z] for a, z in slices], dim=1)  # [B, P, 160, 40]
        emb = self.embed_mels(parts.flatten(0, 1)).view(b, len(slices), self.dim)
        return F.normalize(emb.mean(dim=1), dim=-1)


# --- Coqui H/ASP ResNet ----------------------------------------------------------------------------
def htk_mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular HTK-scale mel filters without area normalisation, ``[n_freqs, n_mels]`` (torchaudio's
    ``melscale_fbanks(..., norm=None, mel_scale="htk")``, the default of ``torchaudio.transforms.MelSpectrogram``)."""
    f_max = float(sample_rate // 2) if f_max is None else float(f_max)
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)

    def hz_to_mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    f_pts = 700.0 * (10.0 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]  # [n_mels + 1]
    slopes = f_pts[None, :] - all_freqs[:, None]  # [n_freqs, n_mels + 2]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).float()


class SELayer(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(fc(avgpool(x)))``; Coqui's ``fc`` = Linear, ReLU, Linear, Sigmoid."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(f"SELayer: {channels} channels leave no hidden units at reduction {reduction}")
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction), nn.ReLU(), nn.Linear(channels // reduction, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class SEBasicBlock(nn.Module):
    """Coqui's residual block: conv3x3 -> ReLU -> BN -> conv3x3 -> BN -> SE, + (downsampled) input, ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, reduction: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SELayer(planes, reduction)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(F.relu(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class ResNetSpeakerEncoder(SpeakerEncoder):
    """The released YourTTS speaker encoder (Coqui's H/ASP ``ResNetSpeakerEncoder``), wav in, unit-norm embedding out.

    Args:
        input_dim: mel bands (Coqui: 64; must be divisible by 8).
        proj_dim: embedding size (512).
        layers: SE basic blocks per stage (ResNet-34: 3, 4, 6, 3).
        num_filters: channels per stage (32, 64, 128, 256); stages 2-4 stride by 2.
        encoder_type: ``"ASP"`` (attentive mean and std) or ``"SAP"`` (attentive mean).
        log_input: take ``log(mel + 1e-6)`` (the released ``config_se.json`` sets it).
        sample_rate, n_fft, win_length, hop_length, preemphasis, f_min, f_max: the front end
            (Coqui's ``audio_config``: 16000, 512, 400, 160, 0.97; torchaudio's f_min 0, f_max sr/2).
        se_reduction: the squeeze-excitation bottleneck ratio (8).
        attention_channels: hidden channels of the attention pooling (128).

    Use :meth:`freeze` after loading pretrained weights (:func:`ns2.models.yourtts.coqui.load_released_yourtts`
    returns it frozen).
    """

    def __init__(
        self,
        input_dim: int = 64,
        proj_dim: int = 512,
        layers: Sequence[int] = (3, 4, 6, 3),
        num_filters: Sequence[int] = (32, 64, 128, 256),
        encoder_type: str = "ASP",
        log_input: bool = True,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        preemphasis: float = 0.97,
        f_min: float = 0.0,
        f_max: float | None = None,
        se_reduction: int = 8,
        attention_channels: int = 128,
    ):
        super().__init__()
        if len(layers) != 4 or len(num_filters) != 4:
            raise ValueError("ResNetSpeakerEncoder: layers and num_filters must have 4 entries (one per stage)")
        if input_dim % 8:
            raise ValueError(f"ResNetSpeakerEncoder: input_dim must be divisible by 8 (three stride-2 stages), got {input_dim}")
        if encoder_type not in ("ASP", "SAP"):
            raise ValueError(f"ResNetSpeakerEncoder: encoder_type must be 'ASP' or 'SAP', got {encoder_type!r}")
        if win_length > n_fft:
            raise ValueError(f"ResNetSpeakerEncoder: win_length ({win_length}) must be <= n_fft ({n_fft})")
        self.sample_rate = int(sample_rate)
        self.dim = int(proj_dim)
        self.input_dim = int(input_dim)
        self.encoder_type = encoder_type
        self.log_input = bool(log_input)
        self.n_fft, self.win_length, self.hop_length = int(n_fft), int(win_length), int(hop_length)
        self.preemphasis = float(preemphasis)
        self.kwargs = dict(
            input_dim=self.input_dim, proj_dim=self.dim, layers=list(layers), num_filters=list(num_filters),
            encoder_type=encoder_type, log_input=self.log_input, sample_rate=self.sample_rate, n_fft=self.n_fft,
            win_length=self.win_length, hop_length=self.hop_length, preemphasis=self.preemphasis, f_min=float(f_min),
            f_max=None if f_max is None else float(f_max), se_reduction=int(se_reduction),
            attention_channels=int(attention_channels),
        )
        fb = htk_mel_filterbank(self.n_fft // 2 + 1, self.input_dim, self.sample_rate, f_min, f_max)
        self.register_buffer("mel_fb", fb, persistent=False)  # [n_freqs, n_mels], torchaudio's layout
        self.register_buffer("window", torch.hamming_window(self.win_length), persistent=False)

        nf = [int(c) for c in num_filters]
        self.conv1 = nn.Conv2d(1, nf[0], kernel_size=3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(nf[0])
        in_planes = nf[0]
        for i, (planes, blocks) in enumerate(zip(nf, layers)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(int(blocks)):
                stage.append(SEBasicBlock(in_planes, planes, stride if j == 0 else 1, int(se_reduction)))
                in_planes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.instancenorm = nn.InstanceNorm1d(self.input_dim)
        flat = nf[3] * (self.input_dim // 8)
        self.attention = nn.Sequential(
            nn.Conv1d(flat, int(attention_channels), kernel_size=1),
            nn.ReLU(),
            nn.BatchNorm1d(int(attention_channels)),
            nn.Conv1d(int(attention_channels), flat, kernel_size=1),
            nn.Softmax(dim=2),
        )
        self.fc = nn.Linear(flat * (2 if encoder_type == "ASP" else 1), self.dim)
        for m in self.modules():  # Coqui's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    @classmethod
    def from_coqui_config(cls, config: dict) -> "ResNetSpeakerEncoder":
        """Build from Coqui's speaker-encoder ``config_se.json`` (``model_params`` and ``audio``)."""
        return cls(**cls.kwargs_from_coqui_config(config))

    @staticmethod
    def kwargs_from_coqui_config(config: dict) -> dict:
        params = dict(config.get("model_params") or {})
        audio = dict(config.get("audio") or {})
        name = params.get("model_name", "resnet")
        if str(name).lower() != "resnet":
            raise ValueError(f"config_se.json: model_params.model_name is {name!r}; only the ResNet encoder is supported")
        if params.get("use_torch_spec") is False:
            raise ValueError("config_se.json: use_torch_spec is false (mel from Coqui's AudioProcessor); only the "
                             "torch-spectrogram front end of the released YourTTS encoder is supported")
        out: dict = {}
        for ours, theirs in (("input_dim", "input_dim"), ("proj_dim", "proj_dim"), ("layers", "layers"),
                             ("num_filters", "num_filters"), ("encoder_type", "encoder_type"), ("log_input", "log_input")):
            if theirs in params:
                out[ours] = params[theirs]
        for ours, theirs in (("sample_rate", "sample_rate"), ("n_fft", "fft_size"), ("win_length", "win_length"),
                             ("hop_length", "hop_length"), ("preemphasis", "preemphasis")):
            if audio.get(theirs) is not None:
                out[ours] = audio[theirs]
        if "num_mels" in audio and "input_dim" in out and int(audio["num_mels"]) != int(out["input_dim"]):
            raise ValueError(f"config_se.json: audio.num_mels ({audio['num_mels']}) != model_params.input_dim ({out['input_dim']})")
        return out

    # -- front end
    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, S] -> the network's input [B, input_dim, 1 + S // hop] (after log and instance norm)."""
        wav = _as_batch(wav, "ResNetSpeakerEncoder.log_mel").float()
        with torch.autocast(device_type=wav.device.type, enabled=False):
            x = F.pad(wav[:, None], (1, 0), mode="reflect")[:, 0]  # Coqui's PreEmphasis: x[-1] := x[1]
            x = x[:, 1:] - self.preemphasis * x[:, :-1]
            spec = torch.stft(
                x, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                window=self.window.to(x.device), center=True, pad_mode="reflect", return_complex=True,
            )  # [B, n_freqs, T]
            power = spec.real.square() + spec.imag.square()
            mel = torch.matmul(power.transpose(1, 2), self.mel_fb).transpose(1, 2)  # [B, n_mels, T]
            if self.log_input:
                mel = torch.log(mel + 1e-6)
            return self.instancenorm(mel)

    def embed_features(self, feats: torch.Tensor, l2_norm: bool = True) -> torch.Tensor:
        """The network after the front end: [B, input_dim, T] -> [B, proj_dim]."""
        x = F.relu(self.conv1(feats[:, None]))
        x = self.bn1(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # [B, C, input_dim / 8, T / 8]
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        w = self.attention(x)
        mu = torch.sum(x * w, dim=2)
        if self.encoder_type == "ASP":
            sg = torch.sqrt((torch.sum(x.square() * w, dim=2) - mu.square()).clamp(min=1e-5))
            mu = torch.cat((mu, sg), dim=1)
        x = self.fc(mu)
        return F.normalize(x, p=2, dim=1) if l2_norm else x

    def _embed_same_length(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.shape[-1] <= self.n_fft // 2:
            raise ValueError(f"ResNetSpeakerEncoder: {wav.shape[-1]} samples are too short for the reflect-padded "
                             f"STFT (need more than {self.n_fft // 2})")
        return self.embed_features(self.log_mel(wav))

    @torch.no_grad()
    def compute_embedding(self, wav: torch.Tensor, num_frames: int = 250, num_eval: int = 10) -> torch.Tensor:
        """Coqui's ``compute_embedding`` for one utterance (how the released model's d-vectors are made):
        ``num_eval`` windows of ``num_frames * hop`` samples evenly spaced over ``wav`` [S] (or the whole
        wav when shorter), each embedded with unit norm, then averaged (not renormalised). -> [dim]."""
        wav = _as_batch(wav, "ResNetSpeakerEncoder.compute_embedding")
        if wav.shape[0] != 1:
            raise ValueError("ResNetSpeakerEncoder.compute_embedding: one utterance at a time")
        length = min(int(num_frames) * self.hop_length, wav.shape[1])
        offsets = torch.linspace(0, wav.shape[1] - length, int(num_eval), dtype=torch.float64)
        windows = torch.cat([wav[:, int(o): int(o) + length] for o in offsets.tolist()], dim=0)
        return self._embed_same_length(windows).mean(dim=0)
