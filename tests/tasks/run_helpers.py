"""Helpers for tests that drive whole runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest


def interrupt(monkeypatch: pytest.MonkeyPatch, module_class: type, run: Callable[[], Any],
              when: Callable[[Any, int], bool], out: Path) -> Path:
    """Start ``run()`` and press Ctrl-C at the first training step where ``when(module, batch_idx)`` holds.

    Returns the run directory (the only folder in ``out``). The module's training step is
    restored afterwards, so the next ``run()`` in the test resumes normally.
    """
    original = module_class.training_step

    def step(self, batch, batch_idx):
        if when(self, batch_idx):
            raise KeyboardInterrupt
        return original(self, batch, batch_idx)

    monkeypatch.setattr(module_class, "training_step", step)
    with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful exit(1)
        run()
    monkeypatch.setattr(module_class, "training_step", original)
    return next(p for p in out.iterdir() if p.is_dir())
