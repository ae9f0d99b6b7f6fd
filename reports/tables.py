"""Paper-style tables: one per (context, metric), norms x axis values.

The context (:class:`reports.record.Context`) is everything but the metric, the
norm, the axis value and the seed, so a table never mixes runs that differ in
anything else; its columns run over the task's declared axis (batch size,
ways/shots, source -> target pair), plus an average column where the task asks
for one. This module decides what each cell says (value, marks, bold, seed
count); the renderers in :mod:`reports.render` only spell those decisions in
Markdown, LaTeX, HTML or CSV, so all formats agree cell for cell.
"""

from __future__ import annotations

import functools
import hashlib
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from normbench.naming import PAPER_TASK_ORDER, file_safe, task_rank

from .record import Context, MetricDeclaration, RunRecord, Scalar, TableAxis, scalar_order, varying_settings
from .stats import CellStats, ContextInfo, aggregate, describe_contexts

# Task order of the paper; unknown tasks follow alphabetically.
TASK_ORDER = PAPER_TASK_ORDER
# Registry order used when normlayers cannot be imported.
_FALLBACK_NORM_ORDER = ("bn", "in", "ln", "gn", "pn", "bgn", "none")
MISSING = "–"
AVERAGE_LABEL = "Avg."


@functools.lru_cache(maxsize=1)
def norm_order() -> tuple[str, ...]:
    """Registry names in registration order (the order the paper's tables use)."""
    try:
        import normlayers  # pure torch; imported lazily to keep the reporter light

        return tuple(normlayers.list_norms())
    except Exception:  # noqa: BLE001 - any import problem falls back to the known order
        return _FALLBACK_NORM_ORDER


def decimals_for(decl: MetricDeclaration, shown: float) -> int:
    """Two decimals for percentages, otherwise about four significant digits of the shown value."""
    if decl.symbol == "%":
        return 2
    if shown == 0 or not math.isfinite(shown):
        return 3
    return max(0, min(6, 3 - math.floor(math.log10(abs(shown)))))


MAX_NAME = 150  # file names hold the table name plus a figure suffix; most file systems allow 255 bytes


def slug(*parts: str) -> str:
    """File-name and label safe identifier, stable across runs.

    A long one keeps its start, a hash of the whole and its last part (the metric), so it stays unique
    and readable within MAX_NAME characters.
    """
    name = file_safe("__".join(parts).replace("/", "-"), "-", keep="_.=-")
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    tail = file_safe(parts[-1].replace("/", "-"), "-", keep="_.=-")[:40]
    head = name[:MAX_NAME - len(tail) - len(digest) - 4].rstrip("_-.=")
    return f"{head}__{digest}__{tail}"


def task_order(task: str) -> tuple[int, str]:
    return task_rank(task)


@dataclass(frozen=True)
class Column:
    """One table column: an axis value, or (value None) the row average over the axis columns."""

    value: Scalar | None
    label: str
    order: float = math.inf

    @property
    def is_average(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class CellView:
    """What one table cell shows, independent of the output format."""

    kind: str  # "value", "missing", "failed", "diverged" or "failed/diverged"
    mean: str = ""
    spread: str = ""  # after the ±; empty when undefined (one seed without a declared interval)
    bold: bool = False
    significant: bool = False  # significantly better than BN
    partial: bool = False  # some seeds failed or diverged
    n_note: int | None = None  # finished seeds, shown when unlike the table's usual count


@dataclass(frozen=True)
class Row:
    norm: str
    label: str
    norm_name: str
    num_groups: int | None
    cells: dict[Scalar, CellStats]  # by axis value
    average: float | None = None  # mean over the axis columns, only when every one has a value


@dataclass(frozen=True)
class Table:
    context: Context
    decl: MetricDeclaration
    primary: bool  # the main table of its context
    axis_label: str  # what the columns are, e.g. "batch size per device"
    columns: tuple[Column, ...]  # axis columns by axis order, then the average column if any
    rows: tuple[Row, ...]
    modal_n: int | None  # most common finished-seed count over the cells
    best: frozenset[tuple[str, Column]]  # (norm, column) of bold cells
    has_bn: bool
    parts: tuple[str, ...]  # context words shown in the name and caption, e.g. ("method=pgd_at",)
    name: str  # file-name slug, unique among the tables of one report

    task = property(lambda self: self.context.task)
    dataset = property(lambda self: self.context.dataset)
    model = property(lambda self: self.context.model)
    metric = property(lambda self: self.decl.name)
    mode = property(lambda self: self.decl.direction)
    unit = property(lambda self: self.decl.symbol)

    @property
    def on_batch_axis(self) -> bool:
        return self.context.axis == "batch_size"

    @property
    def axis_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.is_average)

    @property
    def heading(self) -> str:
        """`task / dataset / model`, then the context words in parentheses."""
        head = f"{self.task} / {self.dataset} / {self.model}"
        return head + (f" ({', '.join(self.parts)})" if self.parts else "")

    def view(self, row: Row, column: Column) -> CellView:
        if column.is_average:
            return self._average_view(row, column)
        cell = row.cells.get(column.value)  # type: ignore[arg-type]
        if cell is None:
            return CellView("missing")
        if cell.n == 0:
            if cell.n_failed and cell.n_diverged:
                return CellView("failed/diverged")
            return CellView("failed" if cell.n_failed else "diverged")
        mean, spread = format_cell(cell)
        return CellView(
            "value", mean=mean, spread=spread,
            bold=(row.norm, column) in self.best,
            significant=cell.beats_bn,
            partial=bool(cell.n_failed or cell.n_diverged),
            n_note=cell.n if cell.n != self.modal_n else None,
        )

    def _average_view(self, row: Row, column: Column) -> CellView:
        if row.average is None:
            return CellView("missing")
        partial = any(c.n_failed or c.n_diverged for c in row.cells.values())
        return CellView("value", mean=format_value(self.decl, row.average),
                        bold=(row.norm, column) in self.best, partial=partial)


def format_value(decl: MetricDeclaration, value: float) -> str:
    shown = value * decl.scale
    return f"{shown:.{decimals_for(decl, shown)}f}"


def format_cell(cell: CellStats) -> tuple[str, str]:
    """Mean and spread as shown: scaled by the unit, the spread with the mean's decimals."""
    assert cell.mean is not None
    scale = cell.decl.scale
    digits = decimals_for(cell.decl, cell.mean * scale)
    spread = cell.spread
    return f"{cell.mean * scale:.{digits}f}", "" if spread is None else f"{spread * scale:.{digits}f}"


def row_order(row: Row) -> tuple[object, ...]:
    order = norm_order()
    known = row.norm_name in order
    return (
        0 if known else 1,
        order.index(row.norm_name) if known else 0,
        row.norm_name,
        -1 if row.num_groups is None else row.num_groups,
        row.label,
        row.norm,
    )


def _shown(table_decl: MetricDeclaration, row: Row, column: Column) -> float | None:
    if column.is_average:
        return None if row.average is None else float(format_value(table_decl, row.average))
    cell = row.cells.get(column.value)  # type: ignore[arg-type]
    return float(format_cell(cell)[0]) if cell is not None and cell.n > 0 else None


def _best_cells(rows: Iterable[Row], columns: Iterable[Column], decl: MetricDeclaration) -> frozenset[tuple[str, Column]]:
    """Best displayed value per column; equal displayed values are all best.

    None for a cost (a declared `kind: cost` or seconds: a run's price, not its result) and none in a
    column with a single value, where "best" compares with nothing.
    """
    best: set[tuple[str, Column]] = set()
    if decl.is_cost:
        return frozenset()
    for column in columns:
        shown = {row.norm: v for row in rows if (v := _shown(decl, row, column)) is not None}
        if len(shown) > 1:
            target = max(shown.values()) if decl.direction == "max" else min(shown.values())
            best.update((norm, column) for norm, value in shown.items() if value == target)
    return frozenset(best)


def _modal_n(rows: Iterable[Row]) -> int | None:
    counts = Counter(c.n for row in rows for c in row.cells.values() if c.n > 0)
    if not counts:
        return None
    top = max(counts.values())
    return max(n for n, k in counts.items() if k == top)  # ties: the larger count


def _rows(members: list[CellStats], columns: tuple[Column, ...], average: bool) -> list[Row]:
    by_norm: dict[str, list[CellStats]] = {}
    for c in members:
        by_norm.setdefault(c.row_key, []).append(c)  # the norm, plus its row variant where the task declares one
    rows = []
    for norm, cs in by_norm.items():
        cells = {c.axis_value: c for c in cs}
        means = [cells[col.value].mean for col in columns if col.value in cells]
        full = average and len(means) == len(columns) and all(m is not None for m in means)
        rows.append(Row(norm, cs[0].row_label, cs[0].norm_name, cs[0].norm_num_groups, cells,
                        statistics.fmean(means) if full else None))  # type: ignore[arg-type]
    rows.sort(key=row_order)
    seen = Counter(r.label for r in rows)  # two specs with one paper label would read as one norm
    return [Row(r.norm, f"{r.label} [{r.norm}]", r.norm_name, r.num_groups, r.cells, r.average)
            if seen[r.label] > 1 else r for r in rows]


def _fallback_info(cells: list[CellStats]) -> ContextInfo:
    """Without records: metrics alphabetically (the declared primary first) and a plain axis."""
    decls = sorted({c.metric: c.decl for c in cells}.values(), key=lambda d: (not d.primary, d.name))
    key = cells[0].context.axis
    return ContextInfo(tuple(decls), TableAxis(key, "batch size per device" if key == "batch_size" else key), False)


def build_tables(cells: Iterable[CellStats], infos: dict[Context, ContextInfo] | None = None) -> list[Table]:
    """Group cells into tables, ordered by task, dataset, model, context, then declared metric order.

    `infos` (see :func:`reports.stats.describe_contexts`) gives each context's
    metric order, axis label and average flag; contexts it lacks get alphabetical
    metrics and the axis key as label.
    """
    groups: dict[tuple[Context, str], list[CellStats]] = {}
    for cell in cells:
        groups.setdefault((cell.context, cell.metric), []).append(cell)
    infos = dict(infos or {})
    for context in {c for c, _ in groups}:
        if context not in infos:
            infos[context] = _fallback_info([c for (ctx, _), cs in groups.items() if ctx == context for c in cs])
    varying = varying_settings(c for c, _ in groups)

    def table_key(key: tuple[Context, str]) -> tuple[object, ...]:
        context, metric = key
        order = [d.name for d in infos[context].metrics]
        return (task_order(context.task), context.sort_key(), order.index(metric) if metric in order else len(order))

    tables: list[Table] = []
    names: Counter[str] = Counter()
    for key in sorted(groups, key=table_key):
        context, metric = key
        members, info = groups[key], infos[context]
        decl = members[0].decl
        labels: dict[Scalar, tuple[float, str]] = {}
        for c in sorted(members, key=lambda c: str(c.norm)):
            labels.setdefault(c.axis_value, (c.axis_order, c.axis_label))
        columns = tuple(Column(v, label, order) for v, (order, label)
                        in sorted(labels.items(), key=lambda kv: (kv[1][0], scalar_order(kv[0]))))
        average = info.axis_average and len(columns) > 1  # over one column it would repeat that column
        rows = _rows(members, columns, average)
        if average:
            columns += (Column(None, AVERAGE_LABEL),)
        parts = context.parts(varying.get(context.head, frozenset()))
        name = slug(context.task, context.dataset, context.model, *parts, metric)
        names[name] += 1
        if names[name] > 1:  # two contexts that spell alike (a coordinate named like a protocol key)
            name = f"{name}__{names[name]}"
        tables.append(Table(
            context=context, decl=decl, primary=info.metrics[0].name == metric, axis_label=info.axis.label,
            columns=columns, rows=tuple(rows), modal_n=_modal_n(rows), best=_best_cells(rows, columns, decl),
            has_bn=any(c.is_reference for r in rows for c in r.cells.values()), parts=parts, name=name,
        ))
    return tables


def tables_from_records(records: Iterable[RunRecord], reference: str | None = None) -> list[Table]:
    """Aggregate records over seeds and lay the cells out as tables.

    Example::

        from reports.collect import collect_runs
        tables = tables_from_records(collect_runs("runs/quick").records)
        print(tables[0].name)  # classification__fashion_mnist__resnet20__test-acc
    """
    records = list(records)
    return build_tables(aggregate(records, reference), describe_contexts(records, reference))
