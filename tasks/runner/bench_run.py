"""The "normbench side" of the overhead benchmarks: one training through the run machinery, timed by it.

Every ``python -m tasks.<task>.bench`` (and ``tasks.bench_overhead``) compares a plain loop with
a real run of the same config; this is the real run, with validation and testing switched off so
that only training is timed, and the record (``train_images_per_s``) returned.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .run import execute

if TYPE_CHECKING:
    from .config import RunConfig
    from .task import Task

__all__ = ["benchmark_record", "cold_compile_cache", "compile_modes", "compiled_in_place", "compile_columns",
           "compile_cells", "Measured", "measure_alternating"]


def benchmark_record(cfg: "RunConfig", task: "Task", out_dir: Path) -> dict[str, Any]:
    """Run ``cfg`` once in a fresh run directory under ``out_dir`` (no validation, no test) and return its record."""
    cfg = dataclasses.replace(cfg, out_dir=str(out_dir), run_name=f"bench-{time.perf_counter_ns()}")
    outcome = execute(cfg, task, trainer_overrides={"limit_val_batches": 0, "limit_test_batches": 0}, use_wandb=False)
    if outcome.status != "finished" or outcome.record is None:
        raise RuntimeError(f"benchmark run {outcome.status}: {outcome.message}")
    return outcome.record


def compile_modes(with_compile: bool) -> tuple[bool, ...]:
    """The ``trainer.compile`` settings a benchmark measures: eager only, or eager then compiled."""
    return (False, True) if with_compile else (False,)


@contextmanager
def cold_compile_cache(enabled: bool, folder: Path) -> Iterator[None]:
    """Inductor's cache in a fresh ``folder`` while enabled, so the first compile is cold (not served from an
    earlier process's cache); the previous setting comes back afterwards."""
    if not enabled:
        yield
        return
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        if before is not None:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


@dataclass(frozen=True)
class Measured:
    """Medians of alternating repeats, and the first run's compile time (0 when eager): the cold compile."""

    plain: float
    normbench: float
    compile_time_s: float

    @property
    def ratio(self) -> float:
        return self.normbench / self.plain


def measure_alternating(plain: Callable[[], float], normbench: Callable[[], dict[str, Any]],
                        value: Callable[[dict[str, Any]], float], repeats: int) -> Measured:
    """Alternate the normbench run (first, so its compile is the cold one) and the plain loop ``repeats`` times.

    ``value`` turns a run record into the number the plain loop returns (images/s, ms per step, ...).
    """
    plain_values, ours, compile_s = [], [], []
    for _ in range(repeats):
        record = normbench()
        ours.append(value(record))
        compile_s.append(float(record.get("compile_time_s") or 0.0))
        plain_values.append(plain())
    return Measured(statistics.median(plain_values), statistics.median(ours), compile_s[0])


def compiled_in_place(task: "Task", cfg: "RunConfig", module: Any) -> None:
    """When ``cfg.trainer.compile``, do to ``module`` what the run does (compile the task's ``compiled_networks``
    in place with ``nn.Module.compile``), so a plain loop measures the same compiled networks."""
    if cfg.trainer.compile:
        for net in task.compiled_networks(cfg, module):
            net.compile()


def compile_columns(with_compile: bool) -> tuple[str, str]:
    """The header cells and separator cells a ``--compile`` table appends (empty when eager only)."""
    return (" compile | compile s |", "---|---:|") if with_compile else ("", "")


def compile_cells(with_compile: bool, compiled: bool, compile_time_s: float) -> str:
    """A row's cells under :func:`compile_columns`: the setting and the cold compile time."""
    return f" {'on' if compiled else 'off'} | {compile_time_s:.1f} |" if with_compile else ""
