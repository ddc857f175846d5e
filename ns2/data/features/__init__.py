"""Frame-level features of the preparation stages: F0, phoneme durations, MFA TextGrids."""
