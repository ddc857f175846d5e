"""Studies: measurements of one trained component, each a function and a ``python -m`` command that
writes an experiment's ``results.json`` (with the commit and inputs).

- :mod:`ns2.eval.studies.codec`: codec quality on held-out speakers against an 8-bit mu-law baseline
  (``python -m ns2.eval.studies.codec CODEC MANIFEST --out results.json``);
- :mod:`ns2.eval.studies.aligner`: phoneme-boundary errors of the learned aligner against reference
  durations, with a uniform baseline (``python -m ns2.eval.studies.aligner CKPT MANIFEST``);
- :mod:`ns2.eval.studies.ns2`: does a trained NaturalSpeech 2 learn (duration, pitch, latent error,
  zero-shot pitch following, samplers) (``python -m ns2.eval.studies.ns2 CKPT MANIFEST``);
- :mod:`ns2.eval.studies.samplers`: quality and time against sampler steps for one text and prompt
  (``sampler_sweep``; notebooks/04);
- :mod:`ns2.eval.studies.finetune`: prompt-only zero-shot against fine-tuning on a held-out voice
  (``python -m ns2.eval.studies.finetune subsets|evaluate``; experiments/ns2_finetune_tiny/).

They live with the evaluation code, not in the packages they study, so those stay free of the
training, data and command-line layers (tests/test_layering.py).
"""
