"""Sweeps: a YAML grid of tasks x norms x batch sizes x seeds, expanded into runs and launched."""
