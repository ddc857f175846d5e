"""Frame-level features of the preparation stages: phoneme durations, MFA TextGrids (F0: :mod:`ns2.audio.f0`)."""
