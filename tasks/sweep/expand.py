"""Expand a sweep into planned runs, each with its config, directory and state on disk."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, RunConfig
from ..registry import get_task
from ..run_command import parse_config
from ..runner.run import canonical_config, run_directory
from ..runner.rundir import inspect_run_dir
from ..runner.world import world_size_of
from .spec import SweepSpec

__all__ = ["PlannedRun", "expand_sweep", "override_args"]


@dataclass(frozen=True)
class PlannedRun:
    task: str
    argv: tuple[str, ...]  # arguments after `normbench run <task>`
    run_dir: Path
    state: str  # new, resume, retry (a failed record), done, invalid
    reason: str = ""
    world_size: int = 1
    config: RunConfig | None = None

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


def expand_sweep(sweep: SweepSpec) -> list[PlannedRun]:
    """Every grid point of every task entry, in a stable order (task, norm, batch size, seed)."""
    planned: list[PlannedRun] = []
    seen: set[Path] = set()
    for entry in sweep.entries:
        task = get_task(entry.task)
        base = [a for path in entry.configs for a in ("--config", str(path))]
        fixed = override_args({**sweep.overrides, **entry.overrides})
        for norm, batch, seed in itertools.product(entry.norms, entry.batch_sizes, entry.seeds):
            argv = base + fixed + [
                "--norm", norm, "--batch_size", str(batch), "--seed", str(seed),
                "--sweep", sweep.name, "--out_dir", str(sweep.out_dir),
            ]
            try:
                cfg = canonical_config(parse_config(task, argv, raise_errors=True), task)
            except ConfigError as exc:
                fallback = sweep.out_dir / sweep.name / f"{entry.task}-{norm}-bs{batch}-s{seed}"
                planned.append(PlannedRun(entry.task, tuple(argv), fallback, "invalid", str(exc)))
                continue
            run_dir = run_directory(cfg, task)
            if run_dir in seen:
                continue
            seen.add(run_dir)
            state = inspect_run_dir(run_dir)
            if state.done:
                label, reason = "done", str(state.record.get("status")) if state.record else ""
            elif state.resumable:
                label, reason = "resume", ""
            elif state.record is not None:
                label, reason = "retry", str(state.record.get("error") or "")
            else:
                label, reason = "new", ""
            planned.append(PlannedRun(entry.task, tuple(argv), run_dir, label, reason, world_size_of(cfg), cfg))
    return planned
