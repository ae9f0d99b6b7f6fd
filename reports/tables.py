"""Paper-style tables: one per (task, dataset, model, metric), norms x batch sizes.

This module decides what each cell says (value, marks, bold, seed count); the
renderers in :mod:`reports.render` only spell those decisions in Markdown, LaTeX,
HTML or CSV, so all formats agree cell for cell.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from .collect import RunRecord
from .stats import CellStats, aggregate, group_metrics

# Task order of the paper; unknown tasks follow alphabetically.
TASK_ORDER = ("classification", "nas", "adversarial", "fewshot", "uda")
# Registry order used when normlayers cannot be imported.
_FALLBACK_NORM_ORDER = ("bn", "in", "ln", "gn", "pn", "bgn", "none")
MISSING = "–"


@functools.lru_cache(maxsize=1)
def norm_order() -> tuple[str, ...]:
    """Registry names in registration order (the order the paper's tables use)."""
    try:
        import normlayers  # pure torch; imported lazily to keep the reporter light

        return tuple(normlayers.list_norms())
    except Exception:  # noqa: BLE001 - any import problem falls back to the known order
        return _FALLBACK_NORM_ORDER


def is_accuracy(metric: str) -> bool:
    """Accuracies are fractions in [0, 1] in records and shown in percent."""
    return "acc" in metric.rsplit("/", 1)[-1].lower()


def decimals_for(metric: str, mean: float) -> int:
    """Two decimals for percentages, otherwise about four significant digits."""
    if is_accuracy(metric):
        return 2
    if mean == 0 or not math.isfinite(mean):
        return 3
    return max(0, min(6, 3 - math.floor(math.log10(abs(mean)))))


def scale_for(metric: str) -> float:
    return 100.0 if is_accuracy(metric) else 1.0


def slug(*parts: str) -> str:
    """File-name and label safe identifier, stable across runs."""
    text = "__".join(parts).replace("/", "-")
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("-")


@dataclass(frozen=True)
class CellView:
    """What one table cell shows, independent of the output format."""

    kind: str  # "value", "missing", "failed", "diverged" or "failed/diverged"
    mean: str = ""
    std: str = ""  # empty when fewer than two finished seeds
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
    cells: dict[int, CellStats]


@dataclass(frozen=True)
class Table:
    task: str
    dataset: str
    model: str
    metric: str
    mode: str
    primary: bool  # the main table of its (task, dataset, model)
    batch_sizes: tuple[int, ...]
    rows: tuple[Row, ...]
    modal_n: int | None  # most common finished-seed count over the cells
    best: frozenset[tuple[str, int]]  # (norm, batch size) of bold cells
    has_bn: bool

    @property
    def name(self) -> str:
        return slug(self.task, self.dataset, self.model, self.metric)

    @property
    def unit(self) -> str:
        return "%" if is_accuracy(self.metric) else ""

    def view(self, row: Row, batch_size: int) -> CellView:
        cell = row.cells.get(batch_size)
        if cell is None:
            return CellView("missing")
        if cell.n == 0:
            if cell.n_failed and cell.n_diverged:
                return CellView("failed/diverged")
            return CellView("failed" if cell.n_failed else "diverged")
        mean, std = _format_mean_std(cell)
        return CellView(
            "value", mean=mean, std=std,
            bold=(row.norm, batch_size) in self.best,
            significant=cell.beats_bn,
            partial=bool(cell.n_failed or cell.n_diverged),
            n_note=cell.n if cell.n != self.modal_n else None,
        )


def _format_mean_std(cell: CellStats) -> tuple[str, str]:
    assert cell.mean is not None
    scale = scale_for(cell.metric)
    digits = decimals_for(cell.metric, cell.mean * scale)
    mean = f"{cell.mean * scale:.{digits}f}"
    std = f"{cell.std * scale:.{digits}f}" if cell.std is not None else ""
    return mean, std


def _row_order(row: Row) -> tuple[object, ...]:
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


def _task_order(task: str) -> tuple[int, str]:
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)


def _best_cells(rows: Iterable[Row], batch_sizes: Iterable[int], mode: str) -> frozenset[tuple[str, int]]:
    """Best displayed mean per column; equal displayed values are all best."""
    best: set[tuple[str, int]] = set()
    for bs in batch_sizes:
        shown = {
            row.norm: float(_format_mean_std(row.cells[bs])[0])
            for row in rows if bs in row.cells and row.cells[bs].n > 0
        }
        if not shown:
            continue
        target = max(shown.values()) if mode == "max" else min(shown.values())
        best.update((norm, bs) for norm, value in shown.items() if value == target)
    return frozenset(best)


def _modal_n(rows: Iterable[Row]) -> int | None:
    counts = Counter(c.n for row in rows for c in row.cells.values() if c.n > 0)
    if not counts:
        return None
    top = max(counts.values())
    return max(n for n, k in counts.items() if k == top)  # ties: the larger count


def _unique_labels(rows: list[Row]) -> list[Row]:
    """Two specs with one paper label would read as one norm; show the spec then."""
    seen = Counter(r.label for r in rows)
    return [
        Row(r.norm, f"{r.label} [{r.norm}]", r.norm_name, r.num_groups, r.cells) if seen[r.label] > 1 else r
        for r in rows
    ]


def build_tables(
    cells: Iterable[CellStats], metric_order: dict[tuple[str, str, str], list[str]] | None = None
) -> list[Table]:
    """Group cells into tables, ordered by task, dataset, model, then metric.

    `metric_order` maps (task, dataset, model) to its metrics, primary first (see
    :func:`reports.stats.group_metrics`); groups it lacks use alphabetical order
    and take the first metric as primary.
    """
    groups: dict[tuple[str, str, str, str], list[CellStats]] = {}
    for cell in cells:
        groups.setdefault((cell.task, cell.dataset, cell.model, cell.metric), []).append(cell)
    order = {k: list(v) for k, v in (metric_order or {}).items()}
    for head in sorted({key[:3] for key in groups}):
        known = order.setdefault(head, [])
        known.extend(sorted(m for (*h, m) in groups if tuple(h) == head and m not in known))

    def table_key(key: tuple[str, str, str, str]) -> tuple[object, ...]:
        return (_task_order(key[0]), key[1], key[2], order[key[:3]].index(key[3]))

    tables = []
    for key in sorted(groups, key=table_key):
        members = groups[key]
        by_norm: dict[str, list[CellStats]] = {}
        for c in members:
            by_norm.setdefault(c.norm, []).append(c)
        rows = sorted(
            (Row(norm, cs[0].norm_label, cs[0].norm_name, cs[0].norm_num_groups,
                 {c.batch_size: c for c in cs})
             for norm, cs in by_norm.items()),
            key=_row_order,
        )
        rows = _unique_labels(rows)
        batch_sizes = tuple(sorted({c.batch_size for c in members}))
        mode = members[0].mode
        tables.append(Table(
            task=key[0], dataset=key[1], model=key[2], metric=key[3], mode=mode,
            primary=order[key[:3]][0] == key[3], batch_sizes=batch_sizes, rows=tuple(rows),
            modal_n=_modal_n(rows), best=_best_cells(rows, batch_sizes, mode),
            has_bn=any(r.norm == "bn" for r in rows),
        ))
    return tables


def tables_from_records(records: Iterable[RunRecord]) -> list[Table]:
    """Aggregate records over seeds and lay the cells out as tables."""
    records = list(records)
    return build_tables(aggregate(records), group_metrics(records))
