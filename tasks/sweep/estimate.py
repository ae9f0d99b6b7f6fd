"""How long each run of a sweep will take, and the SLURM time limit that follows from it.

A sweep file may declare ``launcher.seconds_per_step``: seconds per training step by
per-device batch size, measured on the target hardware (or declared, and then the file
says so), e.g. ``{2: 0.05, 16: 0.07, 128: 0.3}``. With it, ``normbench sweep --dry-run``
prints each run's steps (the task's :meth:`~tasks.runner.task.Task.training_steps`) times
its seconds per step, and the submitit launcher sets ``timeout_min`` to the longest run's
estimate times :data:`MARGIN` unless the file gives ``timeout_min`` itself. Evaluation is
not counted, so the margin is there for it and for slower nodes; the estimate is a
product the reader can check, not a forecast.
"""

from __future__ import annotations

import math
from typing import Any

from ..registry import get_task
from .expand import PlannedRun

__all__ = ["MARGIN", "run_estimate", "estimate_lines", "timeout_minutes"]

MARGIN = 1.5  # timeout = longest estimate x MARGIN (evaluation, checkpoints, slower nodes)


def run_estimate(run: PlannedRun, seconds_per_step: dict[int, float]) -> tuple[int, float | None] | None:
    """``(steps, seconds or None)`` of one run; None when the task cannot count its steps."""
    if run.config is None:
        return None
    steps = get_task(run.task).training_steps(run.config)
    if steps is None:
        return None
    per_step = seconds_per_step.get(run.config.batch_size)
    return steps, (steps * per_step if per_step is not None else None)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def estimate_lines(runs: list[PlannedRun], seconds_per_step: dict[int, float], timeout_min: Any = None) -> list[str]:
    """Dry-run lines: the estimate per run with one, then the longest and the time limit it gives (none without
    ``seconds_per_step``: a sweep that declares no timing gets no estimate)."""
    if not seconds_per_step:
        return []
    lines, longest = [], 0.0
    for run in runs:
        estimate = run_estimate(run, seconds_per_step)
        if estimate is None:
            continue
        steps, seconds = estimate
        batch = run.config.batch_size if run.config is not None else "?"
        timing = (f" x {seconds_per_step[batch]:g} s = {_hours(seconds)}" if seconds is not None
                  else " (no launcher.seconds_per_step for this batch size)")
        lines.append(f"estimate {run.run_dir.name}: {steps:,} steps{timing}")
        longest = max(longest, seconds or 0.0)
    if longest:
        derived = timeout_minutes(runs, seconds_per_step)
        lines.append(f"longest run: {_hours(longest)}; time limit from it (x{MARGIN:g}): {derived} min"
                     + (f"; the sweep file's timeout_min: {timeout_min}" if timeout_min is not None else ""))
        if isinstance(timeout_min, (int, float)) and derived is not None and timeout_min < derived:
            lines.append(f"warning: timeout_min={timeout_min} is below the estimate; the longest runs would be killed")
    return lines


def timeout_minutes(runs: list[PlannedRun], seconds_per_step: dict[int, float]) -> int | None:
    """The longest estimated run times MARGIN, in whole minutes; None without any estimate."""
    seconds = [e[1] for e in (run_estimate(r, seconds_per_step) for r in runs) if e is not None and e[1] is not None]
    return math.ceil(max(seconds) * MARGIN / 60) if seconds else None
