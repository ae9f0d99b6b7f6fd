"""Find and load run records (`result.json`) under a runs folder.

The reporter reads records and nothing else (docs/run-record.md). A sweep can be
half done or contain a broken file, and a report is most useful exactly then, so
this module never raises on one bad record: it validates it
(:func:`reports.schema.parse_record`, schemas 1 and 2), skips a malformed record
with a message naming the file and the key, and lists run directories that have
no record yet so the index can say how many runs are still incomplete.

Two records that would be averaged as seeds of one cell must agree on
everything but the seed, so the duplicate check and the declaration check use
the full grid key (:attr:`RunRecord.grid_key`), not the (task, norm, batch size)
of schema 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .record import Context, MetricDeclaration, RecordError, RunRecord
from .schema import STATUSES, SUPPORTED_SCHEMAS, parse_record

RESULT_FILE = "result.json"

# Files that only a run directory holds (written before result.json); a directory
# with one of them and no result.json is a run that has not ended (yet).
_RUN_MARKERS = ("config.yaml", "metrics.csv", "checkpoints")
# Never descend into these: they belong to a run and hold files that look like
# run markers (W&B offline runs keep their own config.yaml).
_SKIP_DIRS = {"checkpoints", "wandb", "__pycache__"}


@dataclass
class Collection:
    """Everything found under a runs folder.

    `problems` are skipped records (counted as malformed); `warnings` are notes
    about records that were kept, such as a schema-1 metric left out.
    """

    root: Path
    records: list[RunRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)


__all__ = ["Collection", "RecordError", "RunRecord", "RESULT_FILE", "STATUSES", "SUPPORTED_SCHEMAS",
           "collect_runs", "load_record", "parse_record"]


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


_PRIMARY = "(primary)"  # key of the table's primary metric in the declaration register


def _disagreement(record: RunRecord, declared: dict[tuple[Context, str], tuple[MetricDeclaration, Path]]) -> str | None:
    """Why `record` cannot share tables with the records before it, or None.

    Runs of one table that declare a metric differently (another unit, direction,
    label, interval or primary flag), or name different primaries, cannot be
    averaged: the first record (by path) defines the table.
    """
    context = record.context
    earlier = declared.get((context, _PRIMARY))
    if earlier is not None and earlier[0].name != record.primary.name:
        return (f"declares primary metric {record.primary.name!r}, but {earlier[1]} declares "
                f"{earlier[0].name!r} for the same table (runs that disagree on a metric are never averaged)")
    for decl in record.declarations:
        earlier = declared.get((context, decl.name))
        if earlier is not None and earlier[0] != decl:
            return (f"declares metric {decl.name!r} as {decl.describe()}, but {earlier[1]} declares it as "
                    f"{earlier[0].describe()} for the same table (runs that disagree on a metric are never averaged)")
    return None


def _register(record: RunRecord, declared: dict[tuple[Context, str], tuple[MetricDeclaration, Path]]) -> None:
    context = record.context
    declared.setdefault((context, _PRIMARY), (record.primary, record.path))
    for decl in record.declarations:
        declared.setdefault((context, decl.name), (decl, record.path))


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
    declared: dict[tuple[Context, str], tuple[MetricDeclaration, Path]] = {}
    for path in sorted(paths):
        try:
            record = load_record(path)
        except RecordError as exc:
            collection.problems.append(f"skipped {exc}")
            continue
        key = record.grid_key
        if key in seen:
            collection.problems.append(
                f"skipped {path}: same grid point and seed as {seen[key]} (counted once)"
            )
            continue
        conflict = _disagreement(record, declared)
        if conflict is not None:
            collection.problems.append(f"skipped {path}: {conflict}")
            continue
        seen[key] = path
        _register(record, declared)
        collection.records.append(record)
        collection.warnings.extend(record.notes)
    collection.incomplete.sort()
    return collection
