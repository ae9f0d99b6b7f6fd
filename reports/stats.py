"""Aggregate run records over seeds and test each norm against BatchNorm.

A table cell is one grid point (task, dataset, model, metric, norm, batch size)
aggregated over seeds. The comparison with BN is the question the paper asks
("does this norm beat BN at this batch size?"), so it is a one-sided Welch's
t-test in the metric's better direction, made only when both cells have enough
finished seeds for the test to mean something.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterable

from scipy import stats as _scipy_stats

from .collect import RunRecord

BN_NORM = "bn"  # canonical spec of the reference: registry name bn, default arguments
ALPHA = 0.05
MIN_SEEDS_FOR_TEST = 3

# Names that mean "lower is better" when a metric is not the record's primary one.
_LOWER_IS_BETTER = ("loss", "err", "error", "time", "nll", "ece")

CellKey = tuple[str, str, str, str, str, int]  # task, dataset, model, metric, norm, batch


@dataclass(frozen=True)
class CellStats:
    """One grid point aggregated over seeds (values are finished seeds only)."""

    task: str
    dataset: str
    model: str
    metric: str
    mode: str  # "max" or "min": which direction is better
    norm: str
    norm_name: str
    norm_label: str
    norm_num_groups: int | None
    batch_size: int
    values: tuple[float, ...]
    n_failed: int
    n_diverged: int
    p_vs_bn: float | None = None
    beats_bn: bool = False  # p_vs_bn < ALPHA and the mean is better than BN's

    @property
    def key(self) -> CellKey:
        return (self.task, self.dataset, self.model, self.metric, self.norm, self.batch_size)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof=1); None for fewer than two seeds."""
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


def metric_mode(metric: str, primary_metric: str, primary_mode: str) -> str:
    """Which direction is better for `metric`.

    The record only states the direction of its primary metric; for the other
    report metrics, losses, errors and times are minimised, everything else
    (accuracies) maximised.
    """
    if metric == primary_metric:
        return primary_mode
    leaf = metric.rsplit("/", 1)[-1].lower()
    return "min" if any(word in leaf for word in _LOWER_IS_BETTER) else "max"


def table_metrics(records: Iterable[RunRecord]) -> list[str]:
    """Primary metric(s) first, then the other report metrics in first-seen order."""
    records = list(records)
    ordered = list(dict.fromkeys(r.primary_metric for r in records))
    for r in records:
        for m in r.report_metrics:
            if m not in ordered:
                ordered.append(m)
    return ordered


def group_metrics(records: Iterable[RunRecord]) -> dict[tuple[str, str, str], list[str]]:
    """Metrics of each (task, dataset, model), primary first (see table_metrics)."""
    groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: str(r.path)):
        groups[(r.task, r.dataset, r.model)].append(r)
    return {head: table_metrics(members) for head, members in groups.items()}


def welch_p_value(values: tuple[float, ...], reference: tuple[float, ...], mode: str) -> float | None:
    """One-sided Welch's t-test p-value that `values` are better than `reference`.

    None when either side has fewer than MIN_SEEDS_FOR_TEST values or the test is
    undefined (both samples constant).
    """
    if len(values) < MIN_SEEDS_FOR_TEST or len(reference) < MIN_SEEDS_FOR_TEST:
        return None
    if statistics.pvariance(values) == 0 and statistics.pvariance(reference) == 0:
        return None  # zero standard error: the t statistic is not defined
    alternative = "greater" if mode == "max" else "less"
    with warnings.catch_warnings():
        # nearly identical samples trigger a precision warning; the p-value is still usable
        warnings.simplefilter("ignore", RuntimeWarning)
        result = _scipy_stats.ttest_ind(values, reference, equal_var=False, alternative=alternative)
    p = float(result.pvalue)
    return p if math.isfinite(p) else None


def aggregate(records: Iterable[RunRecord]) -> list[CellStats]:
    """All cells of all metrics, each with its p-value against BN where testable.

    Cells are returned sorted by key so output built from them is deterministic.
    A record counts as failed/diverged in every metric of its group; a finished
    record contributes a value only where it has the metric.
    """
    records = sorted(records, key=lambda r: str(r.path))
    groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[(r.task, r.dataset, r.model)].append(r)

    cells: dict[CellKey, CellStats] = {}
    for (task, dataset, model), members in groups.items():
        first = members[0]
        for metric in table_metrics(members):
            mode = metric_mode(metric, first.primary_metric, first.primary_mode)
            by_cell: dict[tuple[str, int], list[RunRecord]] = defaultdict(list)
            for r in members:
                by_cell[(r.norm, r.batch_size)].append(r)
            for (norm, batch), runs in by_cell.items():
                values = tuple(
                    r.metrics[metric] for r in sorted(runs, key=lambda r: r.seed)
                    if r.finished and metric in r.metrics and math.isfinite(r.metrics[metric])
                )
                if not values and all(r.finished for r in runs):
                    continue  # the metric was never reported for this grid point
                cell = CellStats(
                    task=task, dataset=dataset, model=model, metric=metric, mode=mode,
                    norm=norm, norm_name=runs[0].norm_name, norm_label=runs[0].norm_label,
                    norm_num_groups=runs[0].norm_num_groups, batch_size=batch, values=values,
                    n_failed=sum(r.status == "failed" for r in runs),
                    n_diverged=sum(r.status == "diverged" for r in runs),
                )
                cells[cell.key] = cell
    return [_with_test(cell, cells) for _, cell in sorted(cells.items())]


def _with_test(cell: CellStats, cells: dict[CellKey, CellStats]) -> CellStats:
    if cell.norm == BN_NORM:
        return cell
    bn = cells.get((cell.task, cell.dataset, cell.model, cell.metric, BN_NORM, cell.batch_size))
    if bn is None:
        return cell
    p = welch_p_value(cell.values, bn.values, cell.mode)
    if p is None:
        return cell
    # A one-sided p below alpha already implies the better mean; checking the
    # means as well keeps the definition literal ("p < 0.05 and mean better").
    assert cell.mean is not None and bn.mean is not None
    better = cell.mean > bn.mean if cell.mode == "max" else cell.mean < bn.mean
    return replace(cell, p_vs_bn=p, beats_bn=p < ALPHA and better)
