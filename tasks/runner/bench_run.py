"""The "normbench side" of the overhead benchmarks: one training through the run machinery, timed by it.

Every ``python -m tasks.<task>.bench`` (and ``tasks.bench_overhead``) compares a plain loop with
a real run of the same config; this is the real run, with validation and testing switched off so
that only training is timed, and the record (``train_images_per_s``) returned.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .run import execute

if TYPE_CHECKING:
    from .config import RunConfig
    from .task import Task

__all__ = ["benchmark_record"]


def benchmark_record(cfg: "RunConfig", task: "Task", out_dir: Path) -> dict[str, Any]:
    """Run ``cfg`` once in a fresh run directory under ``out_dir`` (no validation, no test) and return its record."""
    cfg = dataclasses.replace(cfg, out_dir=str(out_dir), run_name=f"bench-{time.perf_counter_ns()}")
    outcome = execute(cfg, task, trainer_overrides={"limit_val_batches": 0, "limit_test_batches": 0}, use_wandb=False)
    if outcome.status != "finished" or outcome.record is None:
        raise RuntimeError(f"benchmark run {outcome.status}: {outcome.message}")
    return outcome.record
