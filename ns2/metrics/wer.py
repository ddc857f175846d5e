"""Word error rate: text normalisers, per-utterance error counts (jiwer), corpus aggregation, WER metrics.

Normalisers (applied to both reference and hypothesis before counting):

- ``seed`` (:func:`seed_normalize`, Seed-TTS-eval's English protocol): every punctuation mark (ASCII
  ``string.punctuation`` and Unicode category P*) except the apostrophe is deleted (not replaced by a
  space: ``well-known`` -> ``wellknown``, as in Seed-TTS-eval), whitespace is collapsed, text is
  lowercased. Curly apostrophes (``’`` ``‘``) are read as ``'`` first, so ``don’t`` matches ``don't``.
- ``whisper_basic`` (:func:`whisper_basic_normalize`, Whisper's ``BasicTextNormalizer`` behaviour):
  lowercase; text inside ``[...]`` / ``<...>`` and ``(...)`` removed; every Unicode mark, symbol and
  punctuation character (categories M*, S*, P*) replaced by a space after NFKC (so ``don't`` ->
  ``don t``); with ``remove_diacritics`` NFKD is used, combining marks dropped and a few letters
  transliterated (``æ`` -> ``ae`` ...); whitespace collapsed. Leading/trailing spaces are also stripped
  (this does not change word counts).

Aggregation (:func:`aggregate_wer`): the mean of per-utterance WERs (Seed-TTS-eval's headline number),
the corpus WER (sum of errors / sum of reference words; the usual ASR figure and what HuBERT-based TTS
papers report), and the share of utterances with WER > 0.5 (a failure rate).

Metrics: ``wer_hubert_large`` (HuBERT-Large CTC, NS2 / VALL-E protocol), ``wer_whisper_large_v3``
(Seed-TTS-eval protocol), ``wer_pocketsphinx`` (offline fallback; far weaker ASR, so its values are
only good for relative checks) and ``wer_pocketsphinx_domain`` (the same recogniser decoding with a
language model of the test domain, :mod:`ns2.metrics.lm`: for the synthetic corpus, whose improbable
sentences the general LM mis-hears; a domain LM lowers every system's WER, so compare its values
only with each other). Each returns ``<name>`` (this utterance's WER) plus the counts
``<name>_errors`` and ``<name>_ref_words`` that corpus aggregation needs; :meth:`WERMetric.evaluate`
also gives the transcript.
"""
from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ns2.metrics.registry import Metric, register_metric

__all__ = [
    "NORMALIZERS",
    "WERMetric",
    "WordErrors",
    "aggregate_wer",
    "seed_normalize",
    "whisper_basic_normalize",
    "word_errors",
]

_SEED_DROP = set(string.punctuation) - {"'"}


def seed_normalize(text: str) -> str:
    """Seed-TTS-eval English normaliser: drop punctuation except ``'``, collapse spaces, lowercase."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    kept = "".join(c for c in text if c == "'" or not (c in _SEED_DROP or unicodedata.category(c)[0] == "P"))
    return " ".join(kept.split()).lower()


_DIACRITICS = {
    "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ẞ": "SS",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "th", "ł": "l", "Ł": "L",
}  # fmt: skip


def _symbols_to_space(text: str, remove_diacritics: bool) -> str:
    if not remove_diacritics:
        return "".join(" " if unicodedata.category(c)[0] in "MSP" else c for c in unicodedata.normalize("NFKC", text))
    out = []
    for c in unicodedata.normalize("NFKD", text):
        cat = unicodedata.category(c)
        if c in _DIACRITICS:
            out.append(_DIACRITICS[c])
        elif cat == "Mn":
            continue
        else:
            out.append(" " if cat[0] in "MSP" else c)
    return "".join(out)


def whisper_basic_normalize(text: str, remove_diacritics: bool = False) -> str:
    """Whisper's basic (language-independent) normaliser; see the module docstring."""
    s = text.lower()
    s = re.sub(r"[<\[][^>\]]*[>\]]", "", s)
    s = re.sub(r"\(([^)]+?)\)", "", s)
    s = _symbols_to_space(s, remove_diacritics).lower()
    return re.sub(r"\s+", " ", s).strip()


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "seed": seed_normalize,
    "whisper_basic": whisper_basic_normalize,
    "none": lambda s: " ".join(s.split()),
}


@dataclass(frozen=True)
class WordErrors:
    """Edit operations between one reference and one hypothesis (after normalisation)."""

    ref: str
    hyp: str
    substitutions: int
    deletions: int
    insertions: int
    ref_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """errors / reference words; NaN for an empty reference."""
        return self.errors / self.ref_words if self.ref_words else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors, "wer": self.wer}


def word_errors(ref: str, hyp: str, normalizer: str | Callable[[str], str] = "seed") -> WordErrors:
    """Normalise both texts and count substitutions, deletions and insertions (jiwer's alignment)."""
    norm = NORMALIZERS[normalizer] if isinstance(normalizer, str) else normalizer
    r, h = norm(ref), norm(hyp)
    n_ref = len(r.split())
    if n_ref == 0:
        return WordErrors(r, h, 0, 0, len(h.split()), 0)
    if not h.split():
        return WordErrors(r, h, 0, n_ref, 0, n_ref)
    import jiwer

    o = jiwer.process_words(r, h)
    return WordErrors(r, h, o.substitutions, o.deletions, o.insertions, n_ref)


def aggregate_wer(records: Iterable[WordErrors | Mapping[str, Any]], fail_threshold: float = 0.5) -> dict[str, float]:
    """Corpus summary of per-utterance results.

    ``records`` are :class:`WordErrors` or mappings with ``errors`` and ``ref_words`` (and optionally
    ``wer``). Returns ``mean_wer`` (mean of per-utterance WERs over utterances with a non-empty
    reference), ``corpus_wer`` (sum errors / sum reference words), ``frac_wer_gt_50`` (share of those
    utterances with WER > ``fail_threshold``), ``mean_wer_le_50`` (mean WER of the others), ``n`` and
    ``n_nan`` (utterances with an empty reference, left out of every number).
    """
    errors, words, wers = [], [], []
    n_nan = 0
    for rec in records:
        if isinstance(rec, WordErrors):
            e, w = rec.errors, rec.ref_words
        else:
            e, w = rec["errors"], rec["ref_words"]
        if not w or e != e:
            n_nan += 1
            continue
        errors.append(float(e))
        words.append(float(w))
        wers.append(float(e) / float(w))
    n = len(wers)
    if n == 0:
        nan = float("nan")
        return {**dict.fromkeys(("mean_wer", "corpus_wer", "frac_wer_gt_50", "mean_wer_le_50"), nan), "n": 0, "n_nan": n_nan}
    w_arr = np.asarray(wers)
    ok = w_arr <= fail_threshold
    return {
        "mean_wer": float(w_arr.mean()),
        "corpus_wer": float(np.sum(errors) / np.sum(words)),
        "frac_wer_gt_50": float(np.mean(~ok)),
        "mean_wer_le_50": float(w_arr[ok].mean()) if ok.any() else float("nan"),
        "n": n,
        "n_nan": n_nan,
    }


class WERMetric(Metric):
    """Base class of the WER metrics: subclasses set ``recognizer`` in ``__init__`` (an object with
    ``transcribe(wav16: [S]) -> str``, see :mod:`ns2.metrics.asr`)."""

    requires = frozenset({"text"})
    needs_text = True
    higher_is_better = False
    default_normalizer = "seed"

    def __init__(self, *args: Any, normalizer: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.normalizer = normalizer or self.default_normalizer
        if self.normalizer not in NORMALIZERS:
            raise ValueError(
                f"metric {self.name!r}: normalizer expected one of {sorted(NORMALIZERS)}, got {self.normalizer!r}"
            )
        self.recognizer: Any = None

    @classmethod
    def _keys(cls, name: str) -> tuple[str, ...]:
        return (name, f"{name}_errors", f"{name}_ref_words")

    def transcribe(self, wav: Any, sr: int) -> str:
        from ns2.metrics.audio import prepare

        return self.recognizer.transcribe(prepare(wav, sr, 16000, "hyp_wav"))

    def evaluate(self, hyp_wav: Any, sr: int, text: str) -> WordErrors:
        """Transcribe ``hyp_wav`` and count its errors against ``text``."""
        return word_errors(text, self.transcribe(hyp_wav, sr), self.normalizer)

    def _score(self, hyp_wav: Any, sr: int, *, text: str, **_: Any) -> dict[str, float]:
        we = self.evaluate(hyp_wav, sr, text)
        n = self.name
        return {n: we.wer, f"{n}_errors": float(we.errors), f"{n}_ref_words": float(we.ref_words)}


@register_metric("wer_hubert_large")
class HubertWER(WERMetric):
    """HuBERT-Large CTC (``facebook/hubert-large-ls960-ft``), greedy CTC decoding."""

    backbone = "hubert_large_ls960_ft"
    keys = WERMetric._keys("wer_hubert_large")
    fallback = "wer_pocketsphinx"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from ns2.metrics.asr import CTCRecognizer

        self.recognizer = CTCRecognizer(self._require_backbone(), device=self.device)


@register_metric("wer_whisper_large_v3")
class WhisperWER(WERMetric):
    """Whisper large-v3 (transformers), English transcription, greedy decoding."""

    backbone = "whisper_large_v3"
    keys = WERMetric._keys("wer_whisper_large_v3")
    fallback = "wer_pocketsphinx"

    def __init__(self, *args: Any, language: str = "en", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from ns2.metrics.asr import WhisperRecognizer

        self.recognizer = WhisperRecognizer(self._require_backbone(), device=self.device, language=language)


@register_metric("wer_pocketsphinx")
class PocketsphinxWER(WERMetric):
    """PocketSphinx 5 with its bundled US-English models (offline)."""

    backbone = "pocketsphinx_en_us"
    keys = WERMetric._keys("wer_pocketsphinx")

    def __init__(self, *args: Any, lm: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._require_backbone()
        from ns2.metrics.asr import PocketsphinxRecognizer

        self.lm = str(lm) if lm else None
        self.recognizer = PocketsphinxRecognizer(lm=self.lm)


@register_metric("wer_pocketsphinx_domain")
class PocketsphinxDomainWER(PocketsphinxWER):
    """PocketSphinx 5 (bundled acoustic model and dictionary) with a domain language model.

    ``lm``: the path of an ARPA file. ``ns2 eval`` passes the synthetic corpus's
    (:func:`ns2.data.synthetic.lm.synthetic_domain_lm`, a trigram of its sentence generator drawn with
    a seed of its own) unless ``metric_options.wer_pocketsphinx_domain.lm`` names another file.
    """

    name = "wer_pocketsphinx_domain"
    keys = WERMetric._keys("wer_pocketsphinx_domain")

    def __init__(self, *args: Any, lm: str | None = None, **kwargs: Any) -> None:
        if not lm or lm == "synthetic":
            raise ValueError("metric 'wer_pocketsphinx_domain': expected lm=<ARPA file> (`ns2 eval` builds the "
                             "synthetic corpus's: ns2.data.synthetic.lm.synthetic_domain_lm)")
        super().__init__(*args, lm=lm, **kwargs)
