"""The run record as the reporter sees it: declared metrics, a table axis, a context.

A task declares what its metrics mean (direction, unit, label, which one is
primary) and which coordinate its tables run over; the record carries both
(schema 2, docs/run-record.md). The reporter reads those declarations and never
infers a metric's meaning from its name.

:class:`Context` is everything that identifies a table apart from the metric:
two records are seeds of one table cell only when their contexts, norms and
axis values are equal. That is the rule that keeps the reporter from averaging
unlike runs (PGD-AT with TRADES, one GPU with two, fp32 with bf16).

Records that carry a comparison key (``comparison``: every resolved config value
that changes what is computed, and its ``comparison_hash``) put it into the
context, so two runs made with ``data.fraction`` 0.01 and 0.02 land in two
tables whose names and captions say ``data.fraction=0.01`` / ``=0.02``
(:func:`comparison_differences`). Records written before the key existed keep
an empty key: they group as before, and :attr:`Context.keyed` says so.
Coordinates a task lists in ``row_coordinates`` (few-shot's norm mode) name a
row variant ("BN · running") instead of splitting the table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Union

Scalar = Union[str, int, float, bool]
SCALAR_TYPES = (str, int, float, bool)

BATCH_AXIS = "batch_size"
DIRECTIONS = ("max", "min")
UNITS = ("fraction", "percent", "count", "seconds", "")
KINDS = ("result", "cost")  # a cost (wall time, parameters, throughput) is shown, never crowned best
# Run settings that split tables but are named in a table's title only where they
# vary among the records of the same (task, dataset, model): a plain sweep keeps
# plain table names.
RUN_SETTINGS = ("axis", "world_size", "precision", "sync_norm", "profile", "selection", "compile")


class RecordError(ValueError):
    """A result.json that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class MetricDeclaration:
    """What one reported metric means, as the task declared it.

    `interval` names another metric of the same record holding that run's own
    95% half-width (few-shot: over test episodes), or is None. `group` puts metrics
    of one context into one table (adversarial: clean, FGSM, PGD-20, AutoAttack);
    `short` is the header a grouped table or the summary shows (defaults to the
    label); `kind` "cost" (or the unit seconds) marks what a run spent, not what
    it achieved, so no cell of it is bold.
    """

    name: str
    label: str
    direction: str  # "max" or "min": which direction is better
    unit: str  # one of UNITS
    primary: bool
    interval: str | None = None
    group: str | None = None
    short: str | None = None
    kind: str = "result"

    @property
    def is_cost(self) -> bool:
        """Declared a cost, or measured in seconds: nothing to crown best."""
        return self.kind == "cost" or self.unit == "seconds"

    @property
    def header(self) -> str:
        return self.short or self.label

    @property
    def scale(self) -> float:
        """Fractions are stored in [0, 1] and shown in percent."""
        return 100.0 if self.unit == "fraction" else 1.0

    @property
    def symbol(self) -> str:
        """Unit symbol of the displayed (scaled) value; empty for plain numbers and counts."""
        return {"fraction": "%", "percent": "%", "seconds": "s"}.get(self.unit, "")

    def describe(self) -> str:
        return (f"{self.direction}/{self.unit or 'plain'}/label {self.label!r}"
                f"{'/primary' if self.primary else ''}/interval {self.interval}")


@dataclass(frozen=True)
class TableAxis:
    """The coordinate a task's tables run over, e.g. batch size or ways/shots."""

    key: str
    label: str  # what the columns are, e.g. "batch size per device", "source -> target"
    coordinates: tuple[str, ...] = ()  # entries of the record's `coordinates` the axis spans
    batch_size_follows: bool = False  # the batch size is a function of the axis (few-shot: ways x (shots + queries))

    @property
    def is_batch_size(self) -> bool:
        return self.key == BATCH_AXIS

    @property
    def spans_batch_size(self) -> bool:
        """The batch size varies with the columns, so it is no part of a table's context."""
        return self.is_batch_size or self.batch_size_follows


LEGACY_AXIS = TableAxis(BATCH_AXIS, "batch size per device")


def format_scalar(value: Scalar | None) -> str:
    """JSON spelling for booleans and null, Python's shortest repr for numbers."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, float) else repr(value)


def scalar_order(value: Scalar | None) -> tuple[int, float, str]:
    """A total order over mixed JSON scalars (numbers, then strings, then the rest)."""
    if isinstance(value, bool) or value is None:
        return (2, float(bool(value)), "")
    if isinstance(value, (int, float)):
        return (0, float(value) if math.isfinite(value) else math.inf, "")
    return (1, 0.0, str(value))


Pairs = tuple[tuple[str, Scalar], ...]
# A context word for a run without a comparison key, shown only beside keyed runs of the same head.
UNKEYED = "comparison_key"
UNKEYED_WORD = "comparison key=none (old record)"
KEY_PREFIX = "comparison:"  # varying_settings' name for a comparison key that varies
ABSENT = "absent"  # how a key's value reads for runs that lack it


def key_value(value: Any) -> Scalar | None:
    """A comparison value as a hashable scalar: lists and objects as their canonical JSON."""
    if value is None or isinstance(value, SCALAR_TYPES):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Context:
    """Everything a table is about, except the metric; hashable, so it keys groups."""

    task: str
    dataset: str
    model: str
    axis: str  # table axis key
    coordinates: Pairs  # the coordinates the axis does not span, sorted by key
    batch_size: int | None  # None when batch size is the axis (then it is a column)
    protocol: Pairs  # the task's norm-protocol choices, sorted by key
    world_size: int
    precision: str | None
    sync_norm: bool
    profile: str | None
    selection: str | None  # the rule that chose the reported checkpoint
    compile: bool = False  # trainer.compile (torch.compile): same results, other throughput
    comparison: Pairs = ()  # the records' comparison key, sorted by key; () for records without one
    comparison_hash: str | None = None  # None: written before the key existed (grouped as before)

    @property
    def keyed(self) -> bool:
        """Whether the runs carry a comparison key (False: old records, grouped by the fields above only)."""
        return self.comparison_hash is not None

    @property
    def head(self) -> tuple[str, str, str]:
        return (self.task, self.dataset, self.model)

    def sort_key(self) -> tuple[Any, ...]:
        pairs = lambda ps: tuple((k, scalar_order(v)) for k, v in ps)  # noqa: E731
        return (self.dataset, self.model, self.axis, pairs(self.coordinates), self.batch_size or 0,
                pairs(self.protocol), self.world_size, self.precision or "", self.sync_norm,
                self.profile or "", self.selection or "", self.compile,
                pairs(self.comparison), self.comparison_hash or "")

    def parts(self, varying: Iterable[str] = ()) -> tuple[str, ...]:
        """`key=value` words that tell this table apart from the others of its (task, dataset, model).

        Non-axis coordinates, the batch size when it is not the axis and the
        protocol always; the run settings of RUN_SETTINGS only when in `varying`.
        """
        words = [f"{k}={format_scalar(v)}" for k, v in self.coordinates]
        if self.batch_size is not None:
            words.append(f"bs={self.batch_size}")
        words += [f"{k}={format_scalar(v)}" for k, v in self.protocol]
        shown = set(varying)
        words += [f"{name}={format_scalar(getattr(self, name))}" for name in RUN_SETTINGS if name in shown]
        if self.keyed:
            mine = dict(self.comparison)
            keys = sorted(name[len(KEY_PREFIX):] for name in shown if name.startswith(KEY_PREFIX))
            words += [f"{k}={format_scalar(mine[k]) if k in mine else ABSENT}" for k in keys]
        elif UNKEYED in shown:
            words.append(UNKEYED_WORD)
        return tuple(words)



def varying_settings(contexts: Iterable[Context]) -> dict[tuple[str, str, str], frozenset[str]]:
    """Per (task, dataset, model): which RUN_SETTINGS and comparison keys take more than one value.

    A varying comparison key comes back as ``comparison:<key>`` (what
    :meth:`Context.parts` shows as ``<key>=<value>``); UNKEYED when old records
    without a key sit beside keyed ones.
    """
    from .keys import differing_keys  # keys builds on Context

    contexts = list(contexts)
    seen: dict[tuple[str, str, str], dict[str, set[Any]]] = {}
    for context in contexts:
        values = seen.setdefault(context.head, {name: set() for name in RUN_SETTINGS})
        for name in RUN_SETTINGS:
            values[name].add(getattr(context, name))
    out = {head: set(n for n, v in values.items() if len(v) > 1) for head, values in seen.items()}
    for head, keys in differing_keys(contexts).items():
        # a key the context already shows (a protocol choice, a varying run setting) is not named twice
        shown = out[head] | {k for c in contexts if c.head == head for k, _ in c.protocol}
        out[head] |= {KEY_PREFIX + k for k in keys if k.rsplit(".", 1)[-1] not in shown}
        if any(not c.keyed for c in contexts if c.head == head) and any(c.keyed for c in contexts if c.head == head):
            out[head].add(UNKEYED)
    return {head: frozenset(names) for head, names in out.items()}



@dataclass(frozen=True)
class RunRecord:
    """The fields of one run record that the reporter uses (schema 1 upgraded), plus the raw record."""

    path: Path
    schema: int
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
    coordinates: dict[str, Scalar]
    table_axis: TableAxis
    axis_value: Scalar
    axis_label: str
    axis_order: float
    axis_average: bool
    declarations: tuple[MetricDeclaration, ...]  # table order; exactly one primary
    protocol: dict[str, Scalar]
    selection: str | None
    selection_monitor: str | None
    world_size: int
    precision: str | None
    sync_norm: bool
    profile: str | None
    metrics: dict[str, float]  # declared metrics and their intervals, where present
    raw: dict[str, Any] = field(repr=False, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)  # non-fatal problems (left-out metrics)
    # the cross-task summary columns the run declares (reports.summary_spec); None: the record has none
    summary_columns: tuple[Any, ...] | None = field(default=None, compare=False)
    compile: bool = False  # trainer.compile; absent from records written before it existed
    # model.weight_standardization; such a run's norm and norm_label carry "+ws" / " + WS" (a row of its own)
    weight_standardization: bool = False
    # the comparison key (docs/run-record.md); None for records written before it existed
    comparison: dict[str, Any] | None = field(default=None, compare=False)
    comparison_hash: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict, compare=False)
    train_order_hash: str | None = None  # proves two runs of one seed saw the same batches
    row_coordinates: tuple[str, ...] = ()  # coordinates that name a row variant, not a table
    reference_norm: str | None = None  # the norm the sweep compares every other norm with (default bn)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def primary(self) -> MetricDeclaration:
        return next(d for d in self.declarations if d.primary)

    @property
    def primary_metric(self) -> str:
        return self.primary.name

    @property
    def primary_mode(self) -> str:
        return self.primary.direction

    @property
    def report_metrics(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.declarations)

    @property
    def row_variant(self) -> Pairs:
        """The row coordinates' values, sorted by key (few-shot: (("norm_mode", "running"),))."""
        return tuple(sorted((k, self.coordinates[k]) for k in self.row_coordinates if k in self.coordinates))

    @property
    def row_key(self) -> str:
        """The table row: the norm spec, plus the row variant where the task declares one."""
        return row_key(self.norm, self.row_variant)

    @property
    def context(self) -> Context:
        spanned = set(self.table_axis.coordinates) | set(self.row_coordinates)
        comparison = self.comparison or {}
        return Context(
            task=self.task, dataset=self.dataset, model=self.model, axis=self.table_axis.key,
            coordinates=tuple(sorted((k, v) for k, v in self.coordinates.items() if k not in spanned)),
            batch_size=None if self.table_axis.spans_batch_size else self.batch_size,
            protocol=tuple(sorted(self.protocol.items())),
            world_size=self.world_size, precision=self.precision, sync_norm=self.sync_norm,
            profile=self.profile, selection=self.selection, compile=self.compile,
            comparison=tuple(sorted((k, key_value(v)) for k, v in comparison.items())),
            comparison_hash=self.comparison_hash,
        )

    @property
    def grid_key(self) -> tuple[Any, ...]:
        """Equal for two records only when they differ in nothing a table shows: one seed twice."""
        return (self.context, self.row_key, self.axis_value, self.seed)


ROW_SEPARATOR = " · "


def row_key(norm: str, variant: Pairs) -> str:
    """`bn` without a variant, `bn · norm_mode=running` with one: unique per table row."""
    return norm + "".join(f"{ROW_SEPARATOR}{k}={format_scalar(v)}" for k, v in variant)


def row_label(label: str, variant: Pairs) -> str:
    """The row's words: the norm's paper label, then the variant's values ("BN · running")."""
    return label + "".join(f"{ROW_SEPARATOR}{format_scalar(v)}" for _, v in variant)
