"""The embedded synthetic corpus: multi-speaker English speech with ground-truth phoneme timings
and a singing set with a known score, generated in-process with Flite or espeak-ng (and Praat).

``generate_corpus(root, size="mini", seed=0, num_workers=1) -> <root>/raw.jsonl``;
``SyntheticCorpus(size, seed).build(root, num_workers)`` for the Hydra ``data.corpus`` node.
Sizes live in :data:`SIZES` (``mini`` for tests, espeak-ng; ``small`` about an hour for the demo,
Flite voices an offline recogniser can read; ``small_espeak`` the espeak-ng version of ``small``).
The ``engine`` parameter picks the synthesizer for any size (``engine=flite``).
"""
from ns2.data.synthetic.generate import (
    SIZES,
    SyntheticCorpus,
    SyntheticError,
    generate_corpus,
    plan,
    resolve_params,
    run_job,
)

__all__ = ["SIZES", "SyntheticCorpus", "SyntheticError", "generate_corpus", "plan", "resolve_params", "run_job"]
