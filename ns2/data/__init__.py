"""Corpora, manifests, preprocessing stages, aligner, datamodules and samplers."""
