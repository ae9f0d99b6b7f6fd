"""Expand a sweep into planned runs, each with its config, directory and state on disk.

Every grid point is parsed and checked exactly as ``normbench run`` would
(:func:`~tasks.runner.prepare.prepare`, dry forward pass included), so a point
that would be refused is planned as ``invalid`` with the reason, and a point
another process is training right now is planned as ``running``.

The plan is seed-major: every point of the smallest seed (of every task entry) comes before
any point of the next seed, so a sweep stopped half way leaves whole seeds (every norm, batch
size and task at seed 0) rather than some norms without any run, and its report can already
pair norms by seed.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..registry import get_task
from ..runner.config import RunConfig
from ..runner.errors import ConfigError
from ..runner.lease import lease_holder
from ..runner.parse import parse_config
from ..runner.prepare import prepare
from ..runner.run import run_directory
from ..runner.rundir import inspect_run_dir, slug
from ..runner.world import world_size_of
from .spec import SweepSpec, TaskEntry

__all__ = ["PlannedRun", "expand_sweep", "override_args"]

LAUNCHABLE = ("new", "resume", "retry")


@dataclass(frozen=True)
class PlannedRun:
    task: str
    argv: tuple[str, ...]  # arguments after `normbench run <task>`
    run_dir: Path
    state: str  # new, resume, retry (a failed record), done, running (leased elsewhere), invalid
    reason: str = ""
    world_size: int = 1
    config: RunConfig | None = None
    label: str = ""  # the grid point in words (for invalid points, which have no run directory)

    @property
    def command(self) -> list[str]:
        return ["normbench", "run", self.task, *self.argv]


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def override_args(overrides: dict[str, Any]) -> list[str]:
    """``{trainer.epochs: 2}`` -> ``["--trainer.epochs", "2"]`` (values as YAML/JSON scalars)."""
    args: list[str] = []
    for key, value in overrides.items():
        args += [f"--{key}", _value(value)]
    return args


def _grid_points(entry: TaskEntry) -> list[dict[str, Any]]:
    keys = list(entry.grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(entry.grid[k] for k in keys))]


def _state(run_dir: Path) -> tuple[str, str]:
    state = inspect_run_dir(run_dir)
    if state.done:
        return "done", str(state.record.get("status")) if state.record else ""
    holder = lease_holder(run_dir)
    if holder is not None:
        return "running", f"held by {holder.get('host', '?')} pid {holder.get('pid', '?')}"
    if state.resumable:
        return "resume", ""
    if state.record is not None:
        return "retry", str(state.record.get("error") or "")
    return "new", ""


def expand_sweep(sweep: SweepSpec) -> list[PlannedRun]:
    """Every grid point of every task entry, seed-major: by seed, then task entry, grid point, norm, batch size."""
    planned: list[tuple[int, PlannedRun]] = []
    seen: set[Path] = set()
    for entry in sweep.entries:
        task = get_task(entry.task)
        base = [a for path in entry.configs for a in ("--config", str(path))]
        fixed = override_args({**sweep.overrides, **entry.overrides})
        own = set(task.grid_coordinates.values())
        extra_keys = [k for k in entry.grid if k not in own]
        coordinate_args = ["--coordinate_keys", json.dumps(extra_keys)] if extra_keys else []
        batches: tuple[int | None, ...] = entry.batch_sizes or (None,)
        for point, norm, batch, seed in itertools.product(_grid_points(entry), entry.norms, batches, entry.seeds):
            batch_args = ["--batch_size", str(batch)] if batch is not None else []
            argv = base + fixed + override_args(point) + coordinate_args + [
                "--norm", norm, *batch_args, "--seed", str(seed), "--sweep", sweep.name, "--out_dir", str(sweep.out_dir),
            ]
            words = [f"{k}={v}" for k, v in point.items()] + [norm] + ([f"bs{batch}"] if batch else []) + [f"s{seed}"]
            label = f"{entry.task} " + " ".join(words)
            try:
                cfg = prepare(parse_config(task, argv, raise_errors=True), task)
            except ConfigError as exc:
                fallback = sweep.out_dir / sweep.name / slug(label.replace(" ", "-"))
                planned.append((seed, PlannedRun(entry.task, tuple(argv), fallback, "invalid", str(exc), label=label)))
                continue
            run_dir = run_directory(cfg, task)
            if run_dir in seen:
                continue
            seen.add(run_dir)
            state, reason = _state(run_dir)
            planned.append((seed, PlannedRun(entry.task, tuple(argv), run_dir, state, reason, world_size_of(cfg), cfg,
                                             label)))
    return [run for _, run in sorted(planned, key=lambda item: item[0])]  # stable: the rest keeps its order
