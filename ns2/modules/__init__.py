"""Shared nn building blocks (attention, transformer, conv, wavenet, noise schedules, mel front end)."""
