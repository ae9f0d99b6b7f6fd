"""The summary's average rank, over the norms that ran every task of the summary.

An average over the tasks a norm happened to run ranks a norm that ran its
three best tasks above one that ran all five: the mean is over different
things. So only rows that have a result in every task of the table are ranked
(their full coverage is what makes their averages comparable), and the ranks
are recomputed among those rows alone, so a norm that is missing elsewhere
cannot push them apart either. The other rows show their coverage
(``– (3/5 tasks)``) and stay unranked; the caption notes say so.

Within the ranked rows the rule is :mod:`reports.summary`'s: per column, rank by
shown value (1 = best, ties share the mean rank, a norm whose every seed
diverged after the others), the mean over a task's columns (a task counts
once), then the mean over tasks.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from .summary import SummaryTable


@dataclass(frozen=True)
class Ranking:
    ranks: dict[str, float]  # norm -> average rank, ranked rows only
    coverage: dict[str, int]  # norm -> tasks where it has a result
    best: frozenset[str]  # the lowest average rank (none with fewer than two ranked rows)


def _column_ranks(shown: dict[str, float], last: list[str], direction: str) -> dict[str, float]:
    ordered = sorted(shown.values(), reverse=direction == "max")
    ranks = {n: statistics.fmean(i + 1 for i, v in enumerate(ordered) if v == value) for n, value in shown.items()}
    if last:
        tail = statistics.fmean(range(len(shown) + 1, len(shown) + len(last) + 1))
        ranks.update({n: tail for n in last})
    return ranks


def rank_rows(table: SummaryTable) -> Ranking:
    """Average ranks of the rows that have a result in every task, ranked among themselves."""
    table, _ = without_repeats(table)  # a repeated column would count twice in its task
    coverage = {row.norm: len(row.task_ranks) for row in table.rows}
    full = [row for row in table.rows if table.tasks and len(row.task_ranks) == len(table.tasks)]
    if len(full) < 2:
        return Ranking({}, coverage, frozenset())
    per_task: dict[str, dict[str, list[float]]] = {row.norm: {} for row in full}
    for i, column in enumerate(table.columns):
        if column.metric is None:
            continue
        shown = {row.norm: v for row in full if (v := table.shown(i, row.cells[i])) is not None}
        last = [row.norm for row in full if row.cells[i].ranks_last]
        for norm, rank in _column_ranks(shown, last, column.metric.direction).items():
            per_task[norm].setdefault(column.task, []).append(rank)
    ranks = {norm: statistics.fmean(statistics.fmean(r) for r in tasks.values())
             for norm, tasks in per_task.items() if tasks}
    lowest = min(round(r, 2) for r in ranks.values()) if ranks else None
    best = frozenset(n for n, r in ranks.items() if round(r, 2) == lowest) if len(ranks) > 1 else frozenset()
    return Ranking(ranks, coverage, best)


def without_repeats(table: SummaryTable) -> tuple[SummaryTable, list[str]]:
    """Drop a column that reads the same runs, metric and axis values as an earlier one.

    A task that ran one axis value makes its declared average (e.g. over domain pairs) equal to the column
    at that value; printing both would show one number twice and count it twice in the task's rank.
    Returns the table without the repeats and a note per dropped column.
    """
    keep: list[int] = []
    notes: list[str] = []
    seen: dict[tuple[object, ...], int] = {}
    for i, column in enumerate(table.columns):
        key = (column.task, column.context, column.metric.name if column.metric else None, column.axis_values)
        if column.context is not None and column.metric is not None and key in seen:
            notes.append(f"{column.label}: the same runs, metric and {column.axis_words} as "
                         f"{table.columns[seen[key]].label}; not repeated.")
            continue
        seen.setdefault(key, i)
        keep.append(i)
    if len(keep) == len(table.columns):
        return table, []
    index = {old: new for new, old in enumerate(keep)}
    index[len(table.columns)] = len(keep)  # the average-rank column
    rows = tuple(replace(row, cells=tuple(row.cells[i] for i in keep)) for row in table.rows)
    best = frozenset((n, index[i]) for n, i in table.best if i in index)
    return replace(table, columns=tuple(table.columns[i] for i in keep), rows=rows, best=best), notes
