"""Aggregate run records over seeds and test each norm against BatchNorm.

A table cell is one (context, metric, norm, axis value) aggregated over seeds;
the context (:class:`reports.record.Context`) holds every grid coordinate but
the seed, so runs that differ in anything else are never averaged. The
comparison with BN is the question the paper asks ("does this norm beat BN in
this column?"): a one-sided test in the metric's declared better direction at
the level that varies between trained models (seeds), paired where the design
pairs the runs (:mod:`reports.compare` says which test and why).

A metric that declares an `interval` (few-shot: each run's 95% half-width over
test episodes) is shown with a 95% interval instead of a standard deviation:
the run's own with one seed, Student's t over seeds with two or more.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from scipy import stats as _scipy_stats

from .compare import ALPHA, MIN_SEEDS_FOR_TEST, Comparison, compare_with_bn, welch_p_value
from .episodes import EpisodeSet, episodes_of
from .record import Context, MetricDeclaration, RunRecord, Scalar, TableAxis, scalar_order

__all__ = ["ALPHA", "BN_NORM", "CONFIDENCE", "MIN_SEEDS_FOR_TEST", "CellStats", "ContextInfo", "SeedValues", "aggregate",
           "describe_contexts", "welch_p_value"]

BN_NORM = "bn"  # canonical spec of the reference: registry name bn, default arguments
CONFIDENCE = 0.95

CellKey = tuple[Context, str, str, Scalar]  # context, metric, norm, axis value


class SeedValues:
    """What a table cell and a summary cell both say about their per-seed values (``values``, ``seeds``)."""

    values: tuple[float, ...]
    seeds: tuple[int, ...]

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

    @property
    def by_seed(self) -> dict[int, float]:
        return dict(zip(self.seeds, self.values))


@dataclass(frozen=True)
class ContextInfo:
    """What the records of one context declare for its tables (first record by path wins)."""

    metrics: tuple[MetricDeclaration, ...]  # table order: primary first, then first-seen order
    axis: TableAxis
    axis_average: bool


@dataclass(frozen=True)
class CellStats(SeedValues):
    """One grid point aggregated over seeds (values are finished seeds only)."""

    context: Context
    metric: str
    decl: MetricDeclaration
    norm: str
    norm_name: str
    norm_label: str
    norm_num_groups: int | None
    axis_value: Scalar
    axis_label: str
    axis_order: float
    values: tuple[float, ...]
    n_failed: int
    n_diverged: int
    run_intervals: tuple[float, ...] = ()  # each finished seed's own half-width, when declared
    seeds: tuple[int, ...] = ()  # the seed of each of `values`
    episodes: Mapping[int, EpisodeSet] = field(default_factory=dict, compare=False, repr=False)  # by seed
    comparison: Comparison | None = None  # the test against BN (None for BN itself or without a BN cell)
    notes: tuple[str, ...] = ()  # why episode files were not used, where they were not
    coordinates: tuple[tuple[str, Scalar], ...] = ()  # all grid coordinates, the axis's included, by key
    p_vs_bn: float | None = None
    beats_bn: bool = False  # p_vs_bn < ALPHA and the mean is better than BN's
    run_batch_size: int | None = None  # the records' batch size (one per cell; it may follow the axis)

    @property
    def task(self) -> str:
        return self.context.task

    @property
    def dataset(self) -> str:
        return self.context.dataset

    @property
    def model(self) -> str:
        return self.context.model

    @property
    def mode(self) -> str:
        """"max" or "min": the declared better direction."""
        return self.decl.direction

    @property
    def batch_size(self) -> int:
        """The normalization batch of this cell: the column on the batch axis, else the table's."""
        if self.context.batch_size is not None:
            return self.context.batch_size
        if self.run_batch_size is not None:  # a batch size that follows another axis (few-shot's ways/shots)
            return self.run_batch_size
        assert isinstance(self.axis_value, int)
        return self.axis_value

    @property
    def key(self) -> CellKey:
        return (self.context, self.metric, self.norm, self.axis_value)

    @property
    def test(self) -> str:
        """The test that compared this cell with BN ("" when none was made)."""
        return self.comparison.test if self.comparison is not None and self.comparison.made else ""

    @property
    def half_width(self) -> float | None:
        """95% half-width of an interval metric: the run's own (one seed) or Student's t over seeds."""
        if self.decl.interval is None or not self.values:
            return None
        if self.n == 1:
            return self.run_intervals[0] if self.run_intervals else None
        t = float(_scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, self.n - 1))
        assert self.std is not None
        return t * self.std / math.sqrt(self.n)

    @property
    def spread(self) -> float | None:
        """What follows the ±: the 95% half-width for interval metrics, else the sample std."""
        return self.half_width if self.decl.interval is not None else self.std


def describe_contexts(records: Iterable[RunRecord]) -> dict[Context, ContextInfo]:
    """Per context: its metrics in table order (primary first), its axis and whether it averages."""
    members: dict[Context, list[RunRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: str(r.path)):
        members[r.context].append(r)
    infos = {}
    for context, runs in members.items():
        declared: dict[str, MetricDeclaration] = {}
        for r in runs:
            for d in r.declarations:
                declared.setdefault(d.name, d)
        primary = runs[0].primary.name
        ordered = [declared[primary], *(d for name, d in declared.items() if name != primary)]
        infos[context] = ContextInfo(tuple(ordered), runs[0].table_axis, runs[0].axis_average)
    return infos


def _usable(r: RunRecord, metric: str) -> bool:
    return r.finished and metric in r.metrics and math.isfinite(r.metrics[metric])


def _cell(context: Context, decl: MetricDeclaration, runs: list[RunRecord]) -> CellStats | None:
    runs = sorted(runs, key=lambda r: r.seed)
    used = [r for r in runs if _usable(r, decl.name)]
    if not used and all(r.finished for r in runs):
        return None  # the metric was never reported for this grid point
    intervals = tuple(r.metrics[decl.interval] for r in used if decl.interval and decl.interval in r.metrics)
    episodes: dict[int, EpisodeSet] = {}
    notes = []
    for r in used:
        found, note = episodes_of(r, decl.name)
        if found is not None:
            episodes[r.seed] = found
        elif note is not None:
            notes.append(note)
    first = runs[0]
    return CellStats(
        context=context, metric=decl.name, decl=decl, norm=first.norm, norm_name=first.norm_name,
        norm_label=first.norm_label, norm_num_groups=first.norm_num_groups, axis_value=first.axis_value,
        axis_label=first.axis_label, axis_order=first.axis_order,
        values=tuple(r.metrics[decl.name] for r in used),
        run_intervals=intervals if len(intervals) == len(used) else (),
        seeds=tuple(r.seed for r in used), episodes=episodes, notes=tuple(notes),
        coordinates=tuple(sorted(first.coordinates.items())),
        n_failed=sum(r.status == "failed" for r in runs),
        n_diverged=sum(r.status == "diverged" for r in runs),
        run_batch_size=first.batch_size,
    )


def cell_order(cell: CellStats) -> tuple[object, ...]:
    return (cell.context.task, cell.context.sort_key(), cell.metric, cell.norm, cell.axis_order,
            scalar_order(cell.axis_value))


def aggregate(records: Iterable[RunRecord]) -> list[CellStats]:
    """All cells of all declared metrics, each with its p-value against BN where testable.

    Cells are returned in a fixed order so output built from them is deterministic.
    A record counts as failed/diverged in every metric of its context; a finished
    record contributes a value only where it has the metric.
    """
    records = sorted(records, key=lambda r: str(r.path))
    infos = describe_contexts(records)
    by_point: dict[tuple[Context, str, Scalar], list[RunRecord]] = defaultdict(list)
    for r in records:
        by_point[(r.context, r.norm, r.axis_value)].append(r)

    cells: dict[CellKey, CellStats] = {}
    for (context, _norm, _value), runs in by_point.items():
        for decl in infos[context].metrics:
            cell = _cell(context, decl, runs)
            if cell is not None:
                cells[cell.key] = cell
    return sorted((_with_test(cell, cells) for cell in cells.values()), key=cell_order)


def _with_test(cell: CellStats, cells: dict[CellKey, CellStats]) -> CellStats:
    if cell.norm == BN_NORM:
        return cell
    bn = cells.get((cell.context, cell.metric, BN_NORM, cell.axis_value))
    if bn is None:
        return cell
    comparison = compare_with_bn(cell.by_seed, bn.by_seed, cell.mode, cell.episodes, bn.episodes)
    if not comparison.made:
        return replace(cell, comparison=comparison)
    # A one-sided p below alpha already implies the better mean; checking the
    # means as well keeps the definition literal ("p < 0.05 and mean better").
    assert cell.mean is not None and bn.mean is not None
    better = cell.mean > bn.mean if cell.mode == "max" else cell.mean < bn.mean
    return replace(cell, comparison=comparison, p_vs_bn=comparison.p_value,
                   beats_bn=comparison.significant(better))
