"""The sweep file: a grid of runs described in YAML.

    name: quick                       # runs go to <out_dir>/<name>/<run_id>
    out_dir: runs                     # optional (default runs)
    tasks:                            # one entry per task (or per task + config)
      - task: classification
        config: configs/classification/quick.yaml   # one file or a list
        overrides: {trainer.epochs: 2}              # optional, this task only
        norms: [bn, gn]                             # optional, replaces the top-level grid axis
    norms: [bn, in, ln, gn, pn, bgn, "bgn:num_groups=4"]
    batch_sizes: [2, 16, 128]         # optional: without it, each run keeps its config's batch_size
    seeds: [0, 1, 2]
    grid: {method: [pgd_at, trades]}  # optional: more axes, dotted config keys -> values (top level or per task)
    overrides: {trainer.threads: 1}   # fixed for every run (dotted config keys)
    launcher:                         # optional defaults for `normbench sweep`
      name: local                     # local | submitit
      parallel: 1                     # local: processes at once
      slurm: {partition: gpu, timeout_min: 240, gpus_per_node: 1, cpus_per_task: 8, array_parallelism: 32}
      seconds_per_step: {2: 0.05, 128: 0.3}   # optional: by per-device batch; the dry run prints each run's
                                              # estimate, and without timeout_min submitit's limit follows from it

A ``grid:`` key that is not one of the task's own grid coordinates becomes a
coordinate of the run (its value joins the run id, the W&B group and the report
tables), so two runs that differ only there never share a directory or a table
cell. Relative config paths are resolved against the sweep file's folder first, then
the working directory. Every field is checked when the file is loaded, with one
clear error naming the key and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from normlayers import NormSpecError, resolve_norm

from ..registry import UnknownTaskError, get_task
from ..runner.errors import ConfigError

__all__ = ["SweepSpec", "TaskEntry", "LauncherSpec", "load_sweep"]

_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
_TOP_KEYS = {"name", "out_dir", "tasks", "norms", "batch_sizes", "seeds", "grid", "overrides", "launcher"}
_TASK_KEYS = {"task", "config", "overrides", "norms", "batch_sizes", "seeds", "grid"}
_RESERVED = ("norm", "batch_size", "seed", "sweep", "out_dir", "run_name", "coordinate_keys")
_LAUNCHER_KEYS = {"name", "parallel", "slurm", "threads_per_run", "seconds_per_step"}


@dataclass(frozen=True)
class TaskEntry:
    task: str
    configs: tuple[Path, ...]
    overrides: dict[str, Any]
    norms: tuple[str, ...]
    batch_sizes: tuple[int, ...] | None  # None: the config's batch_size
    seeds: tuple[int, ...]
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class LauncherSpec:
    name: str = "local"
    parallel: int = 1
    threads_per_run: int = 0
    slurm: dict[str, Any] = field(default_factory=dict)
    seconds_per_step: dict[int, float] = field(default_factory=dict)  # by per-device batch: tasks/sweep/estimate.py


@dataclass(frozen=True)
class SweepSpec:
    name: str
    path: Path
    out_dir: Path
    entries: tuple[TaskEntry, ...]
    overrides: dict[str, Any]
    launcher: LauncherSpec


def _fail(path: Path, message: str) -> ConfigError:
    return ConfigError(f"sweep file {path}: {message}")


def _int_list(path: Path, key: str, value: Any, minimum: int) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items):
        raise _fail(path, f"{key} must be a list of integers >= {minimum}, got {value!r}")
    return tuple(items)


def _norm_list(path: Path, key: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _fail(path, f"{key} is empty")
    out = []
    for item in items:
        try:
            out.append(str(resolve_norm(item).spec))
        except NormSpecError as exc:
            raise _fail(path, f"{key}: {exc}") from None
    return tuple(dict.fromkeys(out))  # canonical and de-duplicated, order kept


def _overrides(path: Path, key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(path, f"{key} must be a mapping of dotted config keys to values, e.g. {{trainer.epochs: 2}}")
    for reserved in _RESERVED:
        if reserved in value:
            raise _fail(path, f"{key} may not set {reserved!r}: it is a grid axis or set by the sweep")
    return dict(value)


def _grid(path: Path, key: str, value: Any) -> dict[str, tuple[Any, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(path, f"{key} must be a mapping of dotted config keys to lists of values, e.g. {{method: [dann, cdan]}}")
    grid = {}
    for name, values in value.items():
        if name in _RESERVED:
            raise _fail(path, f"{key} may not vary {name!r}: use the sweep's norms, batch_sizes and seeds lists")
        if not isinstance(values, list) or not values:
            raise _fail(path, f"{key}.{name} must be a non-empty list of values, got {values!r}")
        grid[name] = tuple(values)
    return grid


def _int_field(path: Path, key: str, value: Any, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _fail(path, f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _config_paths(path: Path, value: Any) -> tuple[Path, ...]:
    items = value if isinstance(value, list) else ([] if value is None else [value])
    resolved = []
    for item in items:
        candidates = [path.parent / str(item), Path(str(item))]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise _fail(path, f"config file {item!r} not found (looked in {path.parent} and {Path.cwd()})")
        resolved.append(found.resolve())
    return tuple(resolved)


def _check_keys(path: Path, where: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)} in {where}; allowed: {', '.join(sorted(allowed))}")


def load_sweep(path: str | Path) -> SweepSpec:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _fail(path, f"not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise _fail(path, "must be a YAML mapping")
    _check_keys(path, "the sweep", data, _TOP_KEYS)
    name = str(data.get("name") or path.stem)
    if not _NAME.match(name):
        raise _fail(path, f"name {name!r} may only contain letters, digits and _ . + -")
    if not isinstance(data.get("tasks"), list) or not data["tasks"]:
        raise _fail(path, "tasks must be a non-empty list of {task: NAME, config: FILE} entries")
    entries = []
    for i, raw in enumerate(data["tasks"]):
        raw = {"task": raw} if isinstance(raw, str) else raw
        if not isinstance(raw, dict) or "task" not in raw:
            raise _fail(path, f"tasks[{i}] must be a mapping with a 'task' key")
        _check_keys(path, f"tasks[{i}]", raw, _TASK_KEYS)
        try:
            get_task(raw["task"])
        except UnknownTaskError as exc:
            raise _fail(path, f"tasks[{i}]: {exc}") from None

        def axis(key: str, parse, optional: bool = False):
            if key in raw:
                return parse(f"tasks[{i}].{key}", raw[key])
            if key not in data:
                if optional:
                    return None
                raise _fail(path, f"{key} missing (give it at the top level or in tasks[{i}])")
            return parse(key, data[key])

        grid = {**_grid(path, "grid", data.get("grid")), **_grid(path, f"tasks[{i}].grid", raw.get("grid"))}

        entries.append(
            TaskEntry(
                task=raw["task"],
                configs=_config_paths(path, raw.get("config")),
                overrides=_overrides(path, f"tasks[{i}].overrides", raw.get("overrides")),
                norms=axis("norms", lambda k, v: _norm_list(path, k, v)),
                batch_sizes=axis("batch_sizes", lambda k, v: _int_list(path, k, v, 1), optional=True),
                seeds=axis("seeds", lambda k, v: _int_list(path, k, v, 0)),
                grid=grid,
            )
        )
    launcher_raw = data.get("launcher") or {}
    if not isinstance(launcher_raw, dict):
        raise _fail(path, "launcher must be a mapping")
    _check_keys(path, "launcher", launcher_raw, _LAUNCHER_KEYS)
    launcher_name = launcher_raw.get("name", "local")
    if launcher_name not in ("local", "submitit"):
        raise _fail(path, f"launcher.name must be local or submitit, got {launcher_name!r}")
    slurm = launcher_raw.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise _fail(path, "launcher.slurm must be a mapping of submitit parameters")
    per_step = launcher_raw.get("seconds_per_step") or {}
    if not isinstance(per_step, dict) or not all(
            isinstance(b, int) and b >= 1 and isinstance(v, (int, float)) and v > 0 for b, v in per_step.items()):
        raise _fail(path, "launcher.seconds_per_step must map batch sizes to seconds per step, e.g. {2: 0.05, 128: 0.3}")
    launcher = LauncherSpec(
        name=launcher_name,
        seconds_per_step={int(b): float(v) for b, v in per_step.items()},
        parallel=_int_field(path, "launcher.parallel", launcher_raw.get("parallel", 1), 1),
        threads_per_run=_int_field(path, "launcher.threads_per_run", launcher_raw.get("threads_per_run", 0), 0),
        slurm=dict(slurm),
    )
    return SweepSpec(
        name=name,
        path=path,
        out_dir=Path(str(data.get("out_dir", "runs"))),
        entries=tuple(entries),
        overrides=_overrides(path, "overrides", data.get("overrides")),
        launcher=launcher,
    )
