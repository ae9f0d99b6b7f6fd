"""What a reader pastes: tables as printed, with short stable file names and a manifest.

:mod:`reports.tables` builds one :class:`~reports.tables.Table` per (context,
metric): the unit that is aggregated, tested and plotted. A printed table can
hold several of them: metrics that declare the same ``group`` in one context
(adversarial training: Clean | FGSM | PGD-20 | AutoAttack) share one table, the
metric a second header level under each axis value, or the only header level
when the task ran one axis value (then the caption names that value). Everything
else prints alone.

Printed tables are numbered in report order and named
``t<NN>-<task>-<group or metric>`` (``t03-adversarial-robustness``): short,
stable for the same runs, and sorted together in a folder. Because such a name
no longer says which run settings it holds, ``tables/manifest.json`` maps every
file to its full context (task, data set, model, coordinates, protocol, run
settings, the comparison key where records carry one, metrics, the internal
table keys that the plots are named after).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Iterable

from .record import RunRecord, format_scalar
from .tables import Column, Row, Table, row_order, slug

MANIFEST_FORMAT = "normbench-tables/1"


@dataclass(frozen=True)
class SetColumn:
    """One printed column: an axis (or average) column of one member table."""

    column: Column
    table: Table

    @property
    def metric(self) -> str:
        return self.table.metric


@dataclass(frozen=True)
class HeaderCell:
    text: str
    span: int = 1


@dataclass(frozen=True)
class TableSet:
    """One printed table: a single metric's table, or a declared group of them (same context)."""

    tables: tuple[Table, ...]  # member tables in declared metric order
    group: str | None
    file: str  # short file stem, e.g. "t01-classification-acc"

    @property
    def first(self) -> Table:
        return self.tables[0]

    @property
    def grouped(self) -> bool:
        return len(self.tables) > 1

    @property
    def axis_columns(self) -> tuple[Column, ...]:
        """The union of the members' axis columns, by axis order."""
        seen: dict[Any, Column] = {}
        for table in self.tables:
            for column in table.axis_columns:
                seen.setdefault(column.value, column)
        return tuple(sorted(seen.values(), key=lambda c: (c.order, str(c.value))))

    @property
    def single_value(self) -> bool:
        """A grouped table over one axis value: metrics are the only header level."""
        return self.grouped and len(self.axis_columns) == 1

    @property
    def columns(self) -> tuple[SetColumn, ...]:
        if not self.grouped:
            return tuple(SetColumn(c, self.first) for c in self.first.columns)
        cols = [SetColumn(a, t) for a in self.axis_columns for t in self.tables]
        cols += [SetColumn(c, t) for t in self.tables for c in t.columns if c.is_average]
        return tuple(cols)

    def header_rows(self) -> list[list[HeaderCell]]:
        """Header levels over the value columns (the row-label column is the renderer's)."""
        if not self.grouped:
            return [[HeaderCell(c.label) for c in self.first.columns]]
        if self.single_value:
            return [[HeaderCell(t.decl.header) for t in self.tables]]
        top = [HeaderCell(a.label, len(self.tables)) for a in self.axis_columns]
        second = [HeaderCell(t.decl.header) for t in self.tables] * len(self.axis_columns)
        averages = [sc for sc in self.columns if sc.column.is_average]
        if averages:
            top.append(HeaderCell(averages[0].column.label, len(averages)))
            second += [HeaderCell(sc.table.decl.header) for sc in averages]
        return [top, second]

    def flat_header(self, column: SetColumn) -> str:
        """One-level header for formats without spans (Markdown, CSV): `bs=2: FGSM`."""
        if not self.grouped:
            return column.column.label
        if self.single_value:
            return column.table.decl.header
        return f"{column.column.label}: {column.table.decl.header}"

    def rows(self) -> list[tuple[str, str, dict[str, Row]]]:
        """(norm, label, member metric -> that table's row) in registry order."""
        found: dict[str, dict[str, Row]] = {}
        first_row: dict[str, Row] = {}
        for table in self.tables:
            for row in table.rows:
                found.setdefault(row.norm, {})[table.metric] = row
                first_row.setdefault(row.norm, row)
        ordered = sorted(first_row.values(), key=row_order)
        return [(r.norm, r.label, found[r.norm]) for r in ordered]


def _declared_orders(records: Iterable[RunRecord]) -> dict[tuple[str, str], int]:
    """(task, metric) -> position in the task's declarations (first record by path wins)."""
    order: dict[tuple[str, str], int] = {}
    for r in sorted(records, key=lambda r: str(r.path)):
        for i, d in enumerate(r.declarations):
            order.setdefault((r.task, d.name), i)
    return order


def _stem(table: Table, group: str | None) -> str:
    """The group, or the metric without a leading ``test/`` (the split most tables report)."""
    word = group or (table.metric[5:] if table.metric.startswith("test/") else table.metric)
    return slug(table.task, word).replace("__", "-")


def table_sets(tables: list[Table], records: Iterable[RunRecord] = ()) -> list[TableSet]:
    """Printed tables in report order; members of a group follow the task's declaration order."""
    order = _declared_orders(records)
    keyed: dict[tuple[Any, ...], list[Table]] = {}
    for table in tables:
        key = (table.context, table.decl.group) if table.decl.group else (table.name,)
        keyed.setdefault(key, []).append(table)
    width = max(2, len(str(len(keyed))))
    sets = []
    for number, (key, members) in enumerate(keyed.items(), start=1):
        group = members[0].decl.group if len(key) == 2 else None
        members.sort(key=lambda t: order.get((t.task, t.metric), len(order)))
        sets.append(TableSet(tuple(members), group, f"t{number:0{width}d}-{_stem(members[0], group)}"))
    return sets


def _pairs(pairs: Any) -> Any:
    """Context tuples of (key, value) pairs as JSON objects; other values as they are."""
    if isinstance(pairs, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
        return {k: v for k, v in pairs}
    return pairs


def manifest(sets: list[TableSet]) -> dict[str, Any]:
    """What each printed table holds, keyed by file stem (``tables/manifest.json``)."""
    entries = []
    for ts in sets:
        table = ts.first
        context = {k: _pairs(v) for k, v in dataclasses.asdict(table.context).items()}
        entries.append({
            "file": ts.file, "tex": f"{ts.file}.tex", "task": table.task, "dataset": table.dataset,
            "model": table.model, "context": context, "context_words": list(table.parts),
            "group": ts.group, "metrics": [t.metric for t in ts.tables],
            "metric_labels": {t.metric: t.decl.label for t in ts.tables},
            "axis": table.context.axis, "axis_label": table.axis_label,
            "columns": [ts.flat_header(c) for c in ts.columns],
            "rows": [label for _, label, _ in ts.rows()],
            "keys": [t.name for t in ts.tables],
            "axis_values": [format_scalar(c.value) for c in ts.axis_columns],
        })
    return {"format": MANIFEST_FORMAT, "tables": entries}


def manifest_json(sets: list[TableSet]) -> str:
    return json.dumps(manifest(sets), indent=2, ensure_ascii=False, default=str) + "\n"
