"""Find and load run records (`result.json`) under a runs folder.

The reporter reads records and nothing else (docs/run-record.md). A sweep can be
half done or contain a broken file, and a report is most useful exactly then, so
this module never raises on one bad record: it validates the fields the reporter
uses, skips a malformed record with a message naming the file and the key, and
lists run directories that have no record yet so the index can say how many runs
are still incomplete.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED_SCHEMA = 1
STATUSES = ("finished", "failed", "diverged")
RESULT_FILE = "result.json"

# Files that only a run directory holds (written before result.json); a directory
# with one of them and no result.json is a run that has not ended (yet).
_RUN_MARKERS = ("config.yaml", "metrics.csv", "checkpoints")
# Never descend into these: they belong to a run and hold files that look like
# run markers (W&B offline runs keep their own config.yaml).
_SKIP_DIRS = {"checkpoints", "wandb", "__pycache__"}

# key -> allowed types, for the fields the reporter reads. bool is excluded from
# int explicitly below because isinstance(True, int) holds.
_REQUIRED: dict[str, tuple[type, ...]] = {
    "schema": (int,),
    "run_id": (str,),
    "task": (str,),
    "dataset": (str,),
    "model": (str,),
    "norm": (str,),
    "norm_name": (str,),
    "norm_label": (str,),
    "norm_num_groups": (int, type(None)),
    "batch_size": (int,),
    "seed": (int,),
    "status": (str,),
    "primary_metric": (str,),
    "primary_mode": (str,),
    "report_metrics": (list,),
}
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "sweep": (str, type(None)),
    "error": (str, type(None)),
}


class RecordError(ValueError):
    """A result.json that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class RunRecord:
    """The fields of one run record that the reporter uses, plus the raw record."""

    path: Path
    run_id: str
    sweep: str | None
    task: str
    dataset: str
    model: str
    norm: str
    norm_name: str
    norm_label: str
    norm_num_groups: int | None
    batch_size: int
    seed: int
    status: str
    error: str | None
    primary_metric: str
    primary_mode: str
    report_metrics: tuple[str, ...]
    metrics: dict[str, float]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status == "finished"


@dataclass
class Collection:
    """Everything found under a runs folder."""

    root: Path
    records: list[RunRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "int", str: "str", list: "list", float: "float", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_type(path: Path, data: dict[str, Any], key: str, types: tuple[type, ...]) -> None:
    value = data[key]
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise RecordError(
            f"{path}: key {key!r} must be {_type_name(types)}, got {type(value).__name__} {value!r}"
        )


def parse_record(data: Any, path: Path) -> RunRecord:
    """Validate a decoded result.json and keep what the reporter needs."""
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for key, types in _REQUIRED.items():
        if key not in data:
            raise RecordError(f"{path}: missing key {key!r}")
        _check_type(path, data, key, types)
    for key, types in _OPTIONAL.items():
        if key in data:
            _check_type(path, data, key, types)
    if data["schema"] != SUPPORTED_SCHEMA:
        raise RecordError(
            f"{path}: record schema {data['schema']} is not supported "
            f"(this reporter reads schema {SUPPORTED_SCHEMA})"
        )
    if data["status"] not in STATUSES:
        raise RecordError(
            f"{path}: key 'status' must be one of {', '.join(STATUSES)}, got {data['status']!r}"
        )
    if data["primary_mode"] not in ("max", "min"):
        raise RecordError(f"{path}: key 'primary_mode' must be 'max' or 'min', got {data['primary_mode']!r}")
    if not all(isinstance(m, str) for m in data["report_metrics"]):
        raise RecordError(f"{path}: key 'report_metrics' must be a list of str")
    if data["batch_size"] < 1:
        raise RecordError(f"{path}: key 'batch_size' must be >= 1, got {data['batch_size']}")

    wanted = [data["primary_metric"], *data["report_metrics"]]
    metrics: dict[str, float] = {}
    for name in wanted:
        if name not in data:
            continue  # missing metrics are absent keys; a failed run may lack them
        value = data[name]
        if not _is_number(value):
            raise RecordError(f"{path}: metric {name!r} must be a number, got {value!r}")
        metrics[name] = float(value)
    if data["status"] == "finished":
        primary = data["primary_metric"]
        if primary not in metrics:
            raise RecordError(f"{path}: finished run lacks its primary metric {primary!r}")
        if not math.isfinite(metrics[primary]):
            raise RecordError(f"{path}: finished run has a non-finite {primary!r}: {metrics[primary]}")

    return RunRecord(
        path=path,
        run_id=data["run_id"],
        sweep=data.get("sweep"),
        task=data["task"],
        dataset=data["dataset"],
        model=data["model"],
        norm=data["norm"],
        norm_name=data["norm_name"],
        norm_label=data["norm_label"],
        norm_num_groups=data["norm_num_groups"],
        batch_size=data["batch_size"],
        seed=data["seed"],
        status=data["status"],
        error=data.get("error"),
        primary_metric=data["primary_metric"],
        primary_mode=data["primary_mode"],
        report_metrics=tuple(data["report_metrics"]),
        metrics=metrics,
        raw=data,
    )


def load_record(path: Path) -> RunRecord:
    """Read and validate one result.json; raises RecordError with the file name."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_record(data, path)


def _grid_point(record: RunRecord) -> tuple[Any, ...]:
    """Two records with the same grid point and seed would count one seed twice."""
    return (record.task, record.dataset, record.model, record.norm, record.batch_size,
            record.raw.get("world_size", 1), record.seed)


def _walk(directory: Path, skip: set[Path], results: list[Path], incomplete: list[Path]) -> bool:
    """Depth-first scan; returns True when `directory` holds a run (complete or not)."""
    if (directory / RESULT_FILE).is_file():
        results.append(directory / RESULT_FILE)
        return True
    try:
        children = sorted(p for p in directory.iterdir() if p.is_dir())
    except OSError:
        return False
    found_below = False
    for child in children:
        if child.name in _SKIP_DIRS or child.name.startswith(".") or child.resolve() in skip:
            continue
        found_below |= _walk(child, skip, results, incomplete)
    if found_below:
        return True
    if any((directory / marker).exists() for marker in _RUN_MARKERS):
        incomplete.append(directory)
        return True
    return False


def collect_runs(root: Path | str, exclude: list[Path] | None = None) -> Collection:
    """Load every result.json below `root` (recursively) and list incomplete runs.

    `exclude` names folders to leave out, e.g. the report's own output folder.
    Records come back sorted by path, so everything built from them is deterministic.
    Raises FileNotFoundError/NotADirectoryError only for a bad `root` itself.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"runs folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    skip = {p.resolve() for p in exclude or []}
    paths: list[Path] = []
    collection = Collection(root=root)
    _walk(root, skip, paths, collection.incomplete)
    seen: dict[tuple[Any, ...], Path] = {}
    for path in sorted(paths):
        try:
            record = load_record(path)
        except RecordError as exc:
            collection.problems.append(f"skipped {exc}")
            continue
        key = _grid_point(record)
        if key in seen:
            collection.problems.append(
                f"skipped {path}: same grid point and seed as {seen[key]} (counted once)"
            )
            continue
        seen[key] = path
        collection.records.append(record)
    collection.incomplete.sort()
    return collection
