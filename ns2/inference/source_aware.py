"""NaturalSpeech 2's source-aware diffusion: zero-shot voice conversion and speech enhancement.

Source-aware diffusion (NaturalSpeech 2's zero-shot voice conversion and speech enhancement,
:meth:`SourceAware.convert`, :meth:`SourceAware.enhance`): the source audio's latent z_src
[1, D, T] is integrated *forwards* along the probability-flow ODE to z_1 under a **source condition**
(its content, with the source itself as the speech prompt), then integrated back to t = 0 under a
**target condition** (the same content, with the target prompt). Both conditions share one frame-level
content: the phonemes of the source's transcript, expanded with durations that are the duration
predictor's (source-prompted) durations rescaled to sum to exactly T (or durations given by the
caller, e.g. from an aligner), so the output keeps the source's length and timing. Each pass adds the
pitch the pitch predictor gives for that content under its own prompt, so the target pass takes the
target speaker's pitch range. For enhancement the target prompt is a clean recording of the speaker
(default: the noisy input itself, which relies on the model's prior over clean training speech to
drop what it cannot explain).

:class:`SourceAware` holds these methods; :class:`~ns2.inference.ns2.NS2Synthesizer` inherits them. It
relies on the synthesizer's network, codec, SDE and sampler and on its input helpers (``encode_audio``,
``phonemize``, ``_ids``, ``_prompt``, ``fitted_durations``, ``_decode``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ns2.inference.samplers import source_aware
from ns2.inference.synthesizer import SynthesisError

__all__ = ["SourceAware"]


class SourceAware:
    """Voice conversion (:meth:`convert`) and enhancement (:meth:`enhance`) for an NS2 synthesizer."""

    def _source_aware(self, z_src: torch.Tensor, ids: torch.Tensor, z_tgt: torch.Tensor,
                      durations: Any, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        """ODE-encode z_src [1, D, T] under the source condition, decode under the target's (module doc)."""
        net, total = self.net, int(z_src.shape[-1])
        with torch.inference_mode():
            if durations is None:
                d = self.fitted_durations(ids, z_src, total)
            else:
                d = np.asarray(durations, dtype=np.float64)
                if d.shape != (ids.shape[-1],) or np.any(d < 0) or int(round(d.sum())) != total:
                    raise SynthesisError(
                        f"durations: shape {d.shape}, sum {d.sum():g}; expected [{ids.shape[-1]}] frames >= 0 summing to "
                        f"the source's {total} frames"
                    )
                d = torch.as_tensor(np.round(d), dtype=torch.long, device=self.device)[None]
            h = net.encode_text(ids)
            c, mask = net.regulate(h, d, None, total)
            conds = []
            for z_p in (z_src, z_tgt):
                p = net.encode_prompt(z_p)
                log_f0 = net.predict_pitch(c, mask, p, None)
                conds.append((net.denoiser(net.condition(c, log_f0, mask), mask, p, None), log_f0))
            (src_fn, _), (tgt_fn, tgt_f0) = conds
            method = "dpm_solver_pp" if self.sampler.name == "dpm_solver_pp" else "euler"
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # a seed fixes stochastic samplers too
                torch.manual_seed(int(seed))
                z0 = source_aware(z_src, src_fn, tgt_fn, self.sde, steps=self.sampler.steps, sampler=self.sampler,
                                  mask=mask, method=method)
            wav = self._decode(z0)
        info = {"frames": total, "durations": [int(x) for x in d[0].tolist()],
                "log_f0": [float(x) for x in tgt_f0[0].tolist()], "sampler": self.sampler.name,
                "steps": self.sampler.steps, "ode_encode": method, "seed": int(seed)}
        return wav, info

    def convert(
        self,
        source_wav: np.ndarray,
        source_sr: int,
        prompt_wav: np.ndarray,
        prompt_sr: int,
        *,
        source_text: str | None = None,
        durations: Any = None,
        seed: int = 0,
    ) -> tuple[np.ndarray, int]:
        """Zero-shot voice conversion: the source's words and timing in the prompt speaker's voice.

        Source-aware diffusion (module doc): ODE-encode the source latent under the source condition
        (content + the source as its own prompt), decode under the target condition (same content + the
        target prompt). The content comes from ``source_text`` (required: the model's content input is
        phonemes), expanded by the source-prompted predicted durations rescaled to the source's T
        frames, or by ``durations`` [L] (frames, summing to T). Returns (wav [T · hop] float32, codec
        rate); metadata in :attr:`last_info`.
        """
        if source_text is None or not str(source_text).strip():
            raise SynthesisError("convert: source_text is required (the transcript of the source audio builds the content condition)")
        ids = self._ids(self.phonemize(source_text, "source_text"), "source_text")
        z_src = self.encode_audio(source_wav, source_sr, name="source", min_seconds=0.1)
        z_tgt = self._prompt(prompt_wav, prompt_sr)
        wav, info = self._source_aware(z_src, ids, z_tgt, durations, seed)
        self.last_info = {"mode": "vc", "prompt_frames": int(z_tgt.shape[-1]), "sample_rate": self.sample_rate, **info}
        return wav, self.sample_rate

    def enhance(
        self,
        noisy_wav: np.ndarray,
        sr: int,
        *,
        text: str,
        clean_prompt_wav: np.ndarray | None = None,
        clean_prompt_sr: int | None = None,
        durations: Any = None,
        seed: int = 0,
    ) -> tuple[np.ndarray, int]:
        """Zero-shot speech enhancement by source-aware diffusion (module doc).

        The noisy recording is ODE-encoded under its own condition (content of ``text`` + the noisy
        audio as prompt) and decoded under the condition prompted by ``clean_prompt_wav`` (a clean
        recording of the same speaker; default the noisy input itself, leaving the cleaning to the
        model's prior over clean speech). ``clean_prompt_sr`` defaults to ``sr``. Returns
        (wav [T · hop] float32, codec rate) with T the noisy input's frames.
        """
        ids = self._ids(self.phonemize(text, "text"), "text")
        z_src = self.encode_audio(noisy_wav, sr, name="noisy", min_seconds=0.1)
        if clean_prompt_wav is None:
            z_tgt = z_src if self.max_prompt_seconds is None else self._prompt(noisy_wav, sr, "noisy")
        else:
            z_tgt = self._prompt(clean_prompt_wav, sr if clean_prompt_sr is None else clean_prompt_sr, "clean_prompt")
        wav, info = self._source_aware(z_src, ids, z_tgt, durations, seed)
        self.last_info = {"mode": "se", "prompt_frames": int(z_tgt.shape[-1]), "sample_rate": self.sample_rate,
                          "clean_prompt": clean_prompt_wav is not None, **info}
        return wav, self.sample_rate

