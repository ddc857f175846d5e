"""The synthetic corpus's domain language model, for ``wer_pocketsphinx_domain`` (see :mod:`ns2.metrics.lm`)."""
from __future__ import annotations

import os
from pathlib import Path

from ns2.metrics.lm import write_arpa

__all__ = ["SYNTHETIC_LM", "synthetic_domain_lm", "synthetic_domain_sentences"]

#: Sentences and lyrics drawn with this seed (the corpus draws its own with its seed, 0 by default,
#: and seed + 7919), in spoken form (numbers as words); a trigram with absolute discounting.
SYNTHETIC_LM = {"seed": 1_000_003, "sentences": 40_000, "lyrics": 10_000, "order": 3, "discount": 0.7}


def synthetic_domain_sentences(seed: int, sentences: int, lyrics: int) -> list[str]:
    """Spoken-form sentences (and singing lyrics) of the synthetic corpus's generator."""
    from ns2.data.synthetic.sentences import SentenceGenerator
    from ns2.text import normalize

    gen = SentenceGenerator(seed)
    out = [normalize(gen.sentence(), "en-us") for _ in range(sentences)]
    return out + [normalize(gen.lyric(), "en-us") for _ in range(lyrics)]


def synthetic_domain_lm(cache_dir: str | os.PathLike | None = None) -> Path:
    """The synthetic corpus's ARPA model (:data:`SYNTHETIC_LM`), built once (about 5 s) and cached as
    ``<cache_dir>/lm/synthetic-<settings>.arpa`` (default cache: ``~/.cache/ns2``)."""
    root = Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "ns2"
    c = SYNTHETIC_LM
    path = root / "lm" / f"synthetic-s{c['seed']}-n{c['sentences']}+{c['lyrics']}-o{c['order']}-d{c['discount']}.arpa"
    if not path.is_file():
        write_arpa(path, synthetic_domain_sentences(c["seed"], c["sentences"], c["lyrics"]), c["order"], c["discount"])
    return path
