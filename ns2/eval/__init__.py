"""The evaluation harness: test lists, systems scored through the Synthesizer interface, reports.

- :mod:`ns2.eval.protocol`: the test-list schema (:class:`ProtocolItem`), read/write, Seed-TTS-eval import;
- :mod:`ns2.eval.builders` / ``python -m ns2.eval.protocols``: seeded lists from corpus manifests
  (NS2, VALL-E, synthetic held-out speakers);
- :mod:`ns2.eval.runner`: :func:`run_eval` (what ``ns2 eval`` runs): synthesize, score, journal, report;
- :mod:`ns2.eval.records`, :mod:`ns2.eval.shard`: resumable per-utterance journals, sharding, de-duplication;
- :mod:`ns2.eval.report`: table with bootstrap CIs and counts, paired differences, plots, provenance;
- ``python -m ns2.eval.degrade``: degraded ground-truth copies (a known-worse folder system);
- :mod:`ns2.eval.studies`: measurements of one trained component (codec, aligner, NaturalSpeech 2).
"""
from ns2.eval.protocol import ProtocolError, ProtocolItem, read_protocol, write_protocol

__all__ = ["ProtocolError", "ProtocolItem", "read_protocol", "write_protocol"]
