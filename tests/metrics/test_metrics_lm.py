"""The ARPA n-gram model behind ``wer_pocketsphinx_domain``: normalised, as estimated, read by PocketSphinx."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ns2.metrics.lm import BOS, EOS, build_arpa, tokenize, write_arpa


def read_arpa(text: str) -> dict[int, dict[tuple, tuple[float, float]]]:
    """{order: {ngram: (log10 p, log10 backoff)}}"""
    tables: dict[int, dict] = {}
    order = 0
    for line in text.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:].split("-")[0])
            tables[order] = {}
        elif order and line.strip() and not line.startswith("\\"):
            parts = line.split("\t")
            tables[order][tuple(parts[1].split())] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    return tables


def prob(tables, history: tuple, w: str) -> float:
    """p(w | history) by the ARPA back-off rule."""
    g = history + (w,)
    n = len(g)
    if g in tables.get(n, {}):
        return 10 ** tables[n][g][0]
    if n == 1:
        return 0.0
    bow = tables[n - 1].get(history, (0.0, 0.0))[1]
    return 10 ** bow * prob(tables, history[1:], w)


SENTS = ["the cat sat on the mat", "the dog sat on the log", "a cat saw the dog", "the mat was red."]


def test_every_history_is_normalised():
    tables = read_arpa(build_arpa(SENTS, order=3, discount=0.6))
    vocab = [g[0] for g in tables[1] if g[0] != BOS]
    histories = [(BOS,), ("the",), ("sat",), (BOS, "the"), ("the", "cat"), ("on", "the"), ("zebra",), ("the", "zebra")]
    for h in histories:
        total = sum(prob(tables, h, w) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-5), h


def test_known_estimates():
    """Bigram "the cat": count 1 of 6 "the"-histories, 4 distinct followers (cat mat dog log), D = 0.5."""
    tables = read_arpa(build_arpa(SENTS, order=2, discount=0.5))
    n_tokens = sum(len(tokenize(s)) + 1 for s in SENTS)  # words + </s>
    p_cat = 2 / n_tokens
    expected = (1 - 0.5) / 6 + (0.5 * 4 / 6) * p_cat
    assert 10 ** tables[2][("the", "cat")][0] == pytest.approx(expected, rel=1e-5)
    assert 10 ** tables[1][(BOS,)][0] < 1e-90 and (EOS,) in tables[1]
    assert tokenize("Don't STOP, now!") == ["don't", "stop", "now"]


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="discount"):
        build_arpa(SENTS, discount=1.0)
    with pytest.raises(ValueError, match="no words"):
        build_arpa(["", "!!"])
    path = write_arpa(tmp_path / "lm" / "x.arpa", SENTS)
    assert path.read_text().startswith("\n\\data\\")


def test_pocketsphinx_reads_the_model_and_the_domain_helps(tmp_path):
    """A sentence the general LM mis-hears is recognised with the domain model (real speech of the
    Flite voice the corpus uses)."""
    pytest.importorskip("pocketsphinx")
    from ns2.data.audio import resample
    from ns2.data.synthetic.flite_synth import flite_available, get_flite
    from ns2.metrics.asr import PocketsphinxRecognizer
    from ns2.data.synthetic.lm import synthetic_domain_lm
    from ns2.metrics.wer import word_errors

    if not flite_available():
        pytest.skip("Flite libraries not installed")
    text = "on friday evening this doctor danced again through my wire the baker counted that blanket"
    out = get_flite().synthesize(text, "rms")
    wav = resample(out.audio.astype(np.float32) / 32768.0, out.sample_rate, 16000)
    generic = word_errors(text, PocketsphinxRecognizer().transcribe(wav)).wer
    domain = word_errors(text, PocketsphinxRecognizer(lm=synthetic_domain_lm(tmp_path)).transcribe(wav)).wer
    assert domain <= 0.1 and domain < generic
    with pytest.raises(FileNotFoundError, match="language model"):
        PocketsphinxRecognizer(lm=tmp_path / "missing.arpa")


def test_domain_metric_is_registered_under_its_own_name(tmp_path):
    pytest.importorskip("pocketsphinx")
    from ns2.eval.runner import build_eval_metrics
    from ns2.metrics.registry import get_metric_class

    with pytest.raises(ValueError, match="expected lm=<ARPA file>"):
        get_metric_class("wer_pocketsphinx_domain")()
    metrics = build_eval_metrics({"metrics": ["wer_pocketsphinx_domain"], "cache_dir": str(tmp_path)})[0]
    m = metrics[0]
    assert m.name == "wer_pocketsphinx_domain" and m.lm.startswith(str(tmp_path)) and m.lm.endswith(".arpa")
    assert not math.isnan(m.score(np.zeros(16000, np.float32), 16000, text="hello")["wer_pocketsphinx_domain"])
