"""The cross-task summary table: norms x declared task columns, with an average rank.

This is the table in which a paper claims that a norm "consistently
outperforms" the others, so every decision in it is fixed before looking at a
value, and it says where a norm does not win:

- columns are the records' declared summary columns (:mod:`reports.summary_spec`);
- a cell is mean ± sample std over finished seeds; one seed shows the value and
  ``(n=1)`` and is never tested. An ``average`` column (e.g. over domain pairs)
  averages each seed over the columns and counts the seeds that ran all of them;
- bold is the best shown value per column in the metric's declared direction;
- ``*`` is "significantly better than the reference norm (BN unless declared
  otherwise) in that column" by the test :func:`reports.compare.compare_with_reference`
  picks (paired by seed where the train orders agree), two-sided, Holm-adjusted
  over every comparison of the summary table (one family);
- ranks: per column among the norms with a value (1 = best, ties share the mean
  rank, a norm whose every seed diverged ranks after them all); a norm's rank
  in a task is the mean of its column ranks there, so a task with two columns
  counts once; its average rank is the mean over the tasks where it has one.
  ``n/a`` (the norm never ran this task), ``missing`` (it ran the task, not this
  column) and ``failed`` (every seed raised) cells are left out of it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field, replace

from .compare import Comparison, compare_with_reference
from .family import adjust
from .outcomes import ItemOutcomes, outcomes_of
from .record import RunRecord
from .stats import SeedValues, reference_of
from .summary_spec import ResolvedColumn, resolve_columns
from .tables import format_value, row_order

NOT_RUN, MISSING_CELL, FAILED, DIVERGED = "n/a", "missing", "failed", "diverged"


@dataclass(frozen=True)
class SummaryCell(SeedValues):
    """One norm in one summary column: values by seed, or why there are none (`kind`)."""

    kind: str  # "value", NOT_RUN, MISSING_CELL, FAILED, DIVERGED or "failed/diverged"
    values: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()
    n_failed: int = 0
    n_diverged: int = 0
    note: str = ""  # e.g. the axis column a missing average lacks
    comparison: Comparison | None = None
    beats_bn: bool = False
    rank: float | None = None
    items: dict[int, ItemOutcomes] = field(default_factory=dict, compare=False, repr=False)
    orders: dict[int, str | None] = field(default_factory=dict, compare=False, repr=False)  # train_order_hash

    @property
    def ranks_last(self) -> bool:
        """Every seed diverged (none finished): the norm is ranked after all norms with a value."""
        return self.kind in (DIVERGED, "failed/diverged")


@dataclass(frozen=True)
class SummaryRow:
    norm: str
    label: str
    norm_name: str
    num_groups: int | None
    cells: tuple[SummaryCell, ...]  # one per column
    task_ranks: dict[str, float]  # task -> mean of the norm's column ranks in that task
    average_rank: float | None


@dataclass(frozen=True)
class SummaryTable:
    columns: tuple[ResolvedColumn, ...]
    rows: tuple[SummaryRow, ...]
    tasks: tuple[str, ...]  # tasks with at least one column, in paper order
    best: frozenset[tuple[str, int]]  # (norm, column index) of bold cells; index len(columns): average rank
    problems: tuple[str, ...] = ()

    def shown(self, column: int, cell: SummaryCell) -> float | None:
        """The value as the table prints it (ranks and bold use this, so they agree with the page)."""
        decl = self.columns[column].metric
        if decl is None or cell.mean is None:
            return None
        return float(format_value(decl, cell.mean))


def _status_kind(n_failed: int, n_diverged: int) -> str:
    if n_failed and n_diverged:
        return "failed/diverged"
    return FAILED if n_failed else DIVERGED


def _usable(r: RunRecord, metric: str) -> bool:
    return r.finished and metric in r.metrics


def _single_cell(column: ResolvedColumn, runs: list[RunRecord]) -> SummaryCell:
    assert column.metric is not None
    name = column.metric.name
    used = sorted((r for r in runs if _usable(r, name)), key=lambda r: r.seed)
    failed = sum(r.status == "failed" for r in runs)
    diverged = sum(r.status == "diverged" for r in runs)
    if not used:
        if failed or diverged:
            return SummaryCell(_status_kind(failed, diverged), n_failed=failed, n_diverged=diverged)
        return SummaryCell(MISSING_CELL, note=f"no finished run reports {name}")
    items = {r.seed: found for r in used if (found := outcomes_of(r, name)[0]) is not None}
    return SummaryCell("value", tuple(r.metrics[name] for r in used), tuple(r.seed for r in used), failed, diverged,
                       items=items, orders={r.seed: r.train_order_hash for r in used})


def _average_cell(column: ResolvedColumn, runs: list[RunRecord]) -> SummaryCell:
    """Per seed, the mean over every axis column; only seeds that finished all of them count."""
    assert column.metric is not None
    name = column.metric.name
    labels = {r.axis_value: r.axis_label for r in column.records}
    by_value: dict[object, dict[int, float]] = {v: {} for v in column.axis_values}
    orders: dict[int, list[str | None]] = {}
    failed_seeds, diverged_seeds = set(), set()
    for r in sorted(runs, key=lambda r: r.axis_order):
        if _usable(r, name):
            by_value[r.axis_value][r.seed] = r.metrics[name]
            orders.setdefault(r.seed, []).append(r.train_order_hash)
        elif r.status == "failed":
            failed_seeds.add(r.seed)
        elif r.status == "diverged":
            diverged_seeds.add(r.seed)
    lacking = [labels[v] for v in column.axis_values if not any(r.axis_value == v for r in runs)]
    if lacking:
        return SummaryCell(MISSING_CELL, note=f"no run at {', '.join(lacking)}")
    complete = sorted(set.intersection(*(set(seeds) for seeds in by_value.values())))
    failed, diverged = len(failed_seeds), len(diverged_seeds - failed_seeds)
    if not complete:
        if failed or diverged:
            return SummaryCell(_status_kind(failed, diverged), n_failed=failed, n_diverged=diverged)
        return SummaryCell(MISSING_CELL, note="no seed finished every column")
    values = tuple(statistics.fmean(by_value[v][s] for v in column.axis_values) for s in complete)
    # a seed's runs pair with the reference's only where every column's train order agrees
    joined = {s: None if None in orders[s] else "+".join(orders[s]) for s in complete}  # type: ignore[arg-type]
    return SummaryCell("value", values, tuple(complete), failed, diverged, orders=joined)


def _cell(column: ResolvedColumn, norm: str, ran_task: bool) -> SummaryCell:
    if column.problem is not None or column.metric is None:
        return SummaryCell(MISSING_CELL if ran_task else NOT_RUN, note=column.problem or "")
    runs = [r for r in column.records if r.norm == norm]
    if not runs:
        return SummaryCell(MISSING_CELL if ran_task else NOT_RUN)
    return _average_cell(column, runs) if column.average else _single_cell(column, runs)


def _with_comparisons(column: ResolvedColumn, cells: dict[str, SummaryCell],
                      reference: str | None) -> dict[str, SummaryCell]:
    """Each norm's cell compared with the reference norm's (adjusted later, over the whole table)."""
    ref_norm = reference_of(list(column.records), reference)
    ref = cells.get(ref_norm)
    if ref is None or ref.kind != "value" or column.metric is None:
        return cells
    out = dict(cells)
    for norm, cell in cells.items():
        if norm == ref_norm or cell.kind != "value":
            continue
        comparison = compare_with_reference(cell.by_seed, ref.by_seed, cell.orders, ref.orders, cell.items, ref.items)
        out[norm] = replace(cell, comparison=replace(comparison, reference=ref_norm))
    return out


SUMMARY_FAMILY = "summary table"


def _adjusted(grid: list[dict[str, SummaryCell]], columns: list[ResolvedColumn]) -> list[dict[str, SummaryCell]]:
    """Holm over every comparison of the summary (one family); stars from the adjusted p only."""
    slots = [(i, norm) for i, cells in enumerate(grid) for norm, c in cells.items() if c.comparison is not None]
    adjusted = adjust([grid[i][n].comparison for i, n in slots], [(list(range(len(slots))), SUMMARY_FAMILY, 0)])
    out = [dict(cells) for cells in grid]
    for (i, norm), comparison in zip(slots, adjusted):
        assert comparison is not None and columns[i].metric is not None
        out[i][norm] = replace(grid[i][norm], comparison=comparison,
                               beats_bn=comparison.better(columns[i].metric.direction))
    return out


def _ranked(shown: dict[str, float], last: list[str], mode: str) -> dict[str, float]:
    """Ranks 1..n by shown value (ties share their mean rank); `last` share the ranks after them."""
    ordered = sorted(shown.values(), reverse=mode == "max")
    ranks = {}
    for norm, value in shown.items():
        positions = [i + 1 for i, v in enumerate(ordered) if v == value]
        ranks[norm] = statistics.fmean(positions)
    if last:
        tail = statistics.fmean(range(len(shown) + 1, len(shown) + len(last) + 1))
        ranks.update({norm: tail for norm in last})
    return ranks


def build_summary(records: list[RunRecord], reference: str | None = None) -> SummaryTable:
    """The cross-task summary of these records (see the module docstring for every rule).

    Example::

        from reports.collect import collect_runs
        table = build_summary(collect_runs("runs/demo").records)
        print(render_summary_markdown(table))   # reports.summary_render
    """
    columns, problems = resolve_columns(records)
    norms: dict[str, RunRecord] = {}
    for r in sorted(records, key=lambda r: str(r.path)):
        norms.setdefault(r.norm, r)
    tasks_of = {norm: {r.task for r in records if r.norm == norm} for norm in norms}
    grid: list[dict[str, SummaryCell]] = []
    for column in columns:
        cells = {norm: _cell(column, norm, column.task in tasks_of[norm]) for norm in norms}
        grid.append(_with_comparisons(column, cells, reference))
    grid = _adjusted(grid, columns)

    table = SummaryTable(tuple(columns), (), (), frozenset(), tuple(problems))
    best: set[tuple[str, int]] = set()
    for i, column in enumerate(columns):
        if column.metric is None:
            continue
        shown = {n: v for n, c in grid[i].items() if (v := table.shown(i, c)) is not None}
        last = [n for n, c in grid[i].items() if c.ranks_last]
        ranks = _ranked(shown, last, column.metric.direction)
        grid[i] = {n: replace(c, rank=ranks.get(n)) for n, c in grid[i].items()}
        if shown:
            target = (max if column.metric.direction == "max" else min)(shown.values())
            best.update((n, i) for n, v in shown.items() if v == target)

    tasks = tuple(dict.fromkeys(c.task for c in columns))
    rows = []
    for norm, first in norms.items():
        task_ranks = {}
        for task in tasks:
            ranks = [grid[i][norm].rank for i, c in enumerate(columns) if c.task == task]
            ranks = [r for r in ranks if r is not None]
            if ranks:
                task_ranks[task] = statistics.fmean(ranks)
        average = statistics.fmean(task_ranks.values()) if task_ranks else None
        rows.append(SummaryRow(norm, first.norm_label, first.norm_name, first.norm_num_groups,
                               tuple(grid[i][norm] for i in range(len(columns))), task_ranks, average))
    rows.sort(key=row_order)
    labels = Counter(r.label for r in rows)
    rows = [_relabel(r) if labels[r.label] > 1 else r for r in rows]
    averages = {r.norm: round(r.average_rank, 2) for r in rows if r.average_rank is not None}
    if averages:
        lowest = min(averages.values())
        best.update((n, len(columns)) for n, v in averages.items() if v == lowest)
    return SummaryTable(tuple(columns), tuple(rows), tasks, frozenset(best), tuple(problems))


def _relabel(row: SummaryRow) -> SummaryRow:
    """Two specs with one paper label would read as one norm: name the spec."""
    return SummaryRow(row.norm, f"{row.label} [{row.norm}]", row.norm_name, row.num_groups, row.cells,
                      row.task_ranks, row.average_rank)
