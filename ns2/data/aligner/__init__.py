"""The learned phoneme aligner: phoneme-to-frame durations for corpora without forced alignments.

* :mod:`.model`   ``AlignerModel``: text/mel encoders, soft attention with a beta-binomial prior, MAS.
* :mod:`.mas`     monotonic alignment search (numba).
* :mod:`.loss`    forward-sum (CTC) loss and binarization loss.
* :mod:`.tokens`  word boundaries ``|`` are not aligned: dropped before, re-inserted with 0 frames.
* :mod:`.lit`     ``AlignerLit``, the LightningModule (imported lazily: it pulls in Lightning).
* :mod:`.infer`   ``Aligner`` (inference bundle), ``load_aligner``/``save_aligner``, ``hard_durations``.
* :mod:`.stage`   ``align_manifest``: durations for a list of utterances (the ``aligner`` durations source).
* :mod:`.plot`    alignment figures (``plot_utterance`` aligns and draws one manifest utterance).

Command line: ``python -m ns2.data.aligner plot CKPT MANIFEST UTT_ID --out fig.png``; its accuracy (phoneme-
boundary errors against reference durations, with a uniform baseline) is a study:
``python -m ns2.eval.studies.aligner CKPT MANIFEST --split test --out results.json``. Training:
``ns2 train experiment=aligner/small``; durations for a corpus:
``ns2 prep data=... data.prep.durations_source=aligner +data.prep.options.aligner=CKPT``.
"""
from __future__ import annotations

from typing import Any

from ns2.data.aligner.infer import Aligner, hard_durations, load_aligner, save_aligner
from ns2.data.aligner.loss import binarization_loss, forward_sum_loss
from ns2.data.aligner.mas import mas, maximum_path
from ns2.data.aligner.model import AlignerModel, AlignerOutput
from ns2.data.aligner.stage import align_manifest, align_utterance

__all__ = ["AlignerModel", "AlignerOutput", "AlignerLit", "Aligner", "load_aligner", "save_aligner", "hard_durations",
           "align_manifest", "align_utterance", "forward_sum_loss", "binarization_loss", "mas", "maximum_path"]


def __getattr__(name: str) -> Any:
    if name == "AlignerLit":
        from ns2.data.aligner.lit import AlignerLit

        return AlignerLit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
