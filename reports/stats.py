"""Aggregate run records over seeds and compare each norm with the reference norm.

A table cell is one (context, metric, row, axis value) aggregated over seeds; the
context (:class:`reports.record.Context`) holds every grid coordinate but the
seed and the row coordinates, so runs that differ in anything else are never
averaged. The comparison with the reference norm (BN, unless the records'
``reference_norm`` or ``--reference`` names another) is the question the paper
asks ("does this norm differ from BN in this column, and by how much?"): a
two-sided test with the difference and its 95% CI, at the level that varies
between trained models (seeds), paired where the runs' train orders prove the
design paired them (:mod:`reports.compare`), then Holm-adjusted over its family
(:mod:`reports.family`). Only the adjusted p-value makes a star.

A metric that declares an `interval` (few-shot: each run's 95% half-width over
test episodes) is shown with a 95% interval instead of a standard deviation:
the run's own with one seed, Student's t over seeds with two or more.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from scipy import stats as _scipy_stats

from .compare import ALPHA, MIN_SEEDS_FOR_TEST, Comparison, stars, welch_p_value
from .outcomes import ItemOutcomes, outcomes_of
from .record import Context, MetricDeclaration, Pairs, RunRecord, Scalar, TableAxis, row_key, row_label, scalar_order

__all__ = ["ALPHA", "BN_NORM", "CONFIDENCE", "MIN_SEEDS_FOR_TEST", "CellStats", "ContextInfo", "SeedValues", "aggregate",
           "describe_contexts", "reference_of", "welch_p_value"]

BN_NORM = "bn"  # canonical spec of the reference: registry name bn, default arguments
CONFIDENCE = 0.95

CellKey = tuple[Context, str, str, Scalar]  # context, metric, row key, axis value


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
    reference: str = BN_NORM  # the norm every other row is compared with


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
    items: Mapping[int, ItemOutcomes] = field(default_factory=dict, compare=False, repr=False)  # by seed
    orders: Mapping[int, str | None] = field(default_factory=dict, compare=False, repr=False)  # train_order_hash
    comparison: Comparison | None = None  # the test against the reference (None for it, or without its cell)
    notes: tuple[str, ...] = ()  # why outcome files were not used, where they were not
    coordinates: tuple[tuple[str, Scalar], ...] = ()  # all grid coordinates, the axis's included, by key
    p_vs_bn: float | None = None  # two-sided p against the reference before correction (the name is historical)
    beats_bn: bool = False  # Holm-adjusted p < ALPHA, n >= 3, and the difference in the better direction
    run_batch_size: int | None = None  # the records' batch size (one per cell; it may follow the axis)
    row_variant: Pairs = ()  # the row coordinates' values (few-shot: norm_mode), () without
    reference: str = BN_NORM  # the reference norm of the cell's context

    @property
    def row_key(self) -> str:
        """The table row this cell belongs to: the norm spec plus its row variant."""
        return row_key(self.norm, self.row_variant)

    @property
    def row_label(self) -> str:
        """"BN", or "BN · running" where the task declares row coordinates."""
        return row_label(self.norm_label, self.row_variant)

    @property
    def is_reference(self) -> bool:
        return self.norm == self.reference

    # What a renderer shows of the comparison (None / "" where no test was made).
    diff = property(lambda self: self.comparison.diff if self.comparison else None)
    ci_low = property(lambda self: self.comparison.ci_low if self.comparison and self.comparison.made else None)
    ci_high = property(lambda self: self.comparison.ci_high if self.comparison and self.comparison.made else None)
    p_adjusted = property(lambda self: self.comparison.p_adjusted if self.comparison else None)
    family_size = property(lambda self: self.comparison.family_size if self.comparison else 0)
    paired = property(lambda self: bool(self.comparison and self.comparison.made and self.comparison.paired))
    fallback = property(lambda self: self.comparison.fallback if self.comparison else "")

    @property
    def stars(self) -> str:
        """"*", "**", "***" for Holm-adjusted p below 0.05, 0.01, 0.001 (either direction; n >= 3), else ""."""
        return stars(self.comparison)

    @property
    def task(self) -> str:
        return self.context.task

    @property
    def episodes(self) -> Mapping[int, ItemOutcomes]:
        """The per-item outcomes by seed (the old name, from when only few-shot episodes had them)."""
        return self.items

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
        return (self.context, self.metric, self.row_key, self.axis_value)

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


def reference_of(runs: list[RunRecord], reference: str | None = None) -> str:
    """The reference norm of a context: `reference` (the report option), else the records' own, else BN."""
    if reference:
        return reference
    return next((r.reference_norm for r in runs if r.reference_norm), BN_NORM)


def describe_contexts(records: Iterable[RunRecord], reference: str | None = None) -> dict[Context, ContextInfo]:
    """Per context: its metrics in table order (primary first), its axis, whether it averages, its reference."""
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
        infos[context] = ContextInfo(tuple(ordered), runs[0].table_axis, runs[0].axis_average,
                                     reference_of(runs, reference))
    return infos


def _usable(r: RunRecord, metric: str) -> bool:
    return r.finished and metric in r.metrics and math.isfinite(r.metrics[metric])


def _cell(context: Context, decl: MetricDeclaration, runs: list[RunRecord], reference: str) -> CellStats | None:
    runs = sorted(runs, key=lambda r: r.seed)
    used = [r for r in runs if _usable(r, decl.name)]
    if not used and all(r.finished for r in runs):
        return None  # the metric was never reported for this grid point
    intervals = tuple(r.metrics[decl.interval] for r in used if decl.interval and decl.interval in r.metrics)
    items: dict[int, ItemOutcomes] = {}
    notes = []
    for r in used:
        found, note = outcomes_of(r, decl.name)
        if found is not None:
            items[r.seed] = found
        elif note is not None:
            notes.append(note)
    first = runs[0]
    return CellStats(
        context=context, metric=decl.name, decl=decl, norm=first.norm, norm_name=first.norm_name,
        norm_label=first.norm_label, norm_num_groups=first.norm_num_groups, axis_value=first.axis_value,
        axis_label=first.axis_label, axis_order=first.axis_order,
        values=tuple(r.metrics[decl.name] for r in used),
        run_intervals=intervals if len(intervals) == len(used) else (),
        seeds=tuple(r.seed for r in used), items=items, orders={r.seed: r.train_order_hash for r in used},
        notes=tuple(notes), coordinates=tuple(sorted(first.coordinates.items())),
        n_failed=sum(r.status == "failed" for r in runs),
        n_diverged=sum(r.status == "diverged" for r in runs),
        run_batch_size=first.batch_size, row_variant=first.row_variant, reference=reference,
    )


def cell_order(cell: CellStats) -> tuple[object, ...]:
    return (cell.context.task, cell.context.sort_key(), cell.metric, cell.row_key, cell.axis_order,
            scalar_order(cell.axis_value))


def aggregate(records: Iterable[RunRecord], reference: str | None = None) -> list[CellStats]:
    """All cells of all declared metrics, each compared with its context's reference norm where testable.

    Cells are returned in a fixed order so output built from them is deterministic.
    A record counts as failed/diverged in every metric of its context; a finished
    record contributes a value only where it has the metric. `reference` overrides
    the records' ``reference_norm`` (default BN). The comparisons are Holm-adjusted
    over their families: the hypotheses the records declare, else each table.
    """
    from .family import compare_cells  # family builds on the cells defined here

    records = sorted(records, key=lambda r: str(r.path))
    infos = describe_contexts(records, reference)
    by_point: dict[tuple[Context, str, Scalar], list[RunRecord]] = defaultdict(list)
    for r in records:
        by_point[(r.context, r.row_key, r.axis_value)].append(r)

    cells: dict[CellKey, CellStats] = {}
    for (context, _row, _value), runs in by_point.items():
        for decl in infos[context].metrics:
            cell = _cell(context, decl, runs, infos[context].reference)
            if cell is not None:
                cells[cell.key] = cell
    return sorted(compare_cells(list(cells.values()), records), key=cell_order)
