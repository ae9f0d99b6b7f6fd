"""The cross-task summary's columns, as the runs declared them before they ran.

Every schema-2 record carries ``summary_columns``: the column(s) its task
contributes to the summary table, ``{label, axis, where, metric}``, fixed by the
task or a sweep override before any result exists (docs/run-record.md). This
module reads those declarations and resolves each one against the records
that carry it, never against the results:

- ``where``: grid coordinates the column's runs must have (``{"method": "pgd_at"}``);
  a key that is no coordinate is looked up in the protocol, then in the record's
  own fields (``dataset``, ``model``, ...). Values compare as spelled
  (``5`` matches ``"5"``).
- ``axis``: ``min`` / ``max`` (smallest / largest value of the task's table axis by
  ``axis_order`` among the column's runs, of every norm and status), ``average``
  (the mean over all of them, e.g. domain pairs) or one axis value, given as its
  label (``5-way 1-shot``) or its value (``5w1s``, ``32``).
- ``metric``: a metric the runs declare (default: their primary); its
  declaration gives the header's words, unit and better direction.

A column reads the records that declare it. Records of one task that declare
different columns are unioned; two declarations with one label that differ in
anything else are a problem (reported; the first by path is used). Runs that
match a column but belong to different tables (another data set, profile,
protocol...) are never averaged: the column splits, one per table, with the
words that tell them apart, and one per row variant (few-shot's norm mode).
Runs that differ only in their comparison key (``data.fraction`` 0.01 and
0.02) are refused instead: the column gets no values and one problem line
naming the keys, since no label could say which of them a reader is shown. Records without the key (schema 1, early schema 2)
declare the task's generic default: the primary metric at the largest axis value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from normbench.naming import task_rank

from .keys import comparison_differences
from .record import (
    RUN_SETTINGS,
    SCALAR_TYPES,
    Context,
    MetricDeclaration,
    RecordError,
    RunRecord,
    Scalar,
    format_scalar,
    row_label,
    scalar_order,
)

AXIS_MIN, AXIS_MAX, AXIS_AVERAGE = "min", "max", "average"
_KEYS = {"label": str, "axis": str, "where": dict, "metric": str}


@dataclass(frozen=True)
class SummaryDeclaration:
    """One declared summary column: `axis` is min, max, average or an axis label/value."""

    label: str
    axis: str
    where: tuple[tuple[str, Scalar], ...]  # sorted by key
    metric: str  # "" means the runs' primary metric

    def describe(self) -> str:
        where = ", ".join(f"{k}={format_scalar(v)}" for k, v in self.where) or "any"
        return f"axis {self.axis!r}, where {where}, metric {self.metric or '(primary)'!r}"


def parse_summary_columns(path: Path, data: dict[str, Any]) -> tuple[SummaryDeclaration, ...] | None:
    """The record's `summary_columns`, validated; None when the record has none."""
    if "summary_columns" not in data:
        return None
    items = data["summary_columns"]
    if not isinstance(items, list):
        raise RecordError(f"{path}: key 'summary_columns' must be list, got {type(items).__name__} {items!r}")
    out: list[SummaryDeclaration] = []
    for i, item in enumerate(items):
        where = f"summary_columns[{i}]"
        if not isinstance(item, dict):
            raise RecordError(f"{path}: key {where!r} must be object, got {type(item).__name__} {item!r}")
        for key, kind in _KEYS.items():
            if key not in item:
                raise RecordError(f"{path}: missing key '{where}.{key}'")
            if not isinstance(item[key], kind):
                raise RecordError(f"{path}: key '{where}.{key}' must be {kind.__name__}, got {item[key]!r}")
        if not item["label"].strip() or not item["axis"].strip():
            raise RecordError(f"{path}: key '{where}.{'label' if not item['label'].strip() else 'axis'}' "
                              "must not be empty")
        for key, value in item["where"].items():
            if not isinstance(value, SCALAR_TYPES):
                raise RecordError(f"{path}: key '{where}.where.{key}' must be str, int, float or bool, got {value!r}")
        declaration = SummaryDeclaration(item["label"], item["axis"], tuple(sorted(item["where"].items())),
                                         item["metric"])
        if any(d.label == declaration.label for d in out):
            raise RecordError(f"{path}: key {where!r} declares the summary column {declaration.label!r} twice")
        out.append(declaration)
    return tuple(out)


def declarations_of(record: RunRecord) -> tuple[SummaryDeclaration, ...]:
    """What the record declares, or the generic default (primary metric, largest axis value)."""
    if record.summary_columns is not None:
        return record.summary_columns
    return (SummaryDeclaration(record.task, AXIS_MAX, (), ""),)


@dataclass(frozen=True)
class ResolvedColumn:
    """One column of the summary: a declaration resolved against its runs (one table's context)."""

    task: str
    declaration: SummaryDeclaration
    label: str  # the declared label, plus the words that tell split columns apart
    context: Context | None  # None when no run matches the declaration
    metric: MetricDeclaration | None  # None when the runs do not declare the metric
    axis_values: tuple[Scalar, ...]  # the task-table columns it reads, in axis order
    axis_words: str  # "bs=2", "5-way 1-shot", "mean over F-MNIST→F-MNIST-M, F-MNIST-M→F-MNIST"
    records: tuple[RunRecord, ...]  # the matching runs at those axis values (every norm and status)
    problem: str | None = None  # why the column has no values

    @property
    def average(self) -> bool:
        return self.declaration.axis == AXIS_AVERAGE


def _lookup(record: RunRecord, key: str) -> Any:
    for source in (record.coordinates, record.protocol, record.raw):
        if key in source:
            return source[key]
    return _MISSING


_MISSING = object()


def matches(record: RunRecord, where: Iterable[tuple[str, Scalar]]) -> bool:
    """Whether the record has every `where` coordinate, compared as spelled."""
    for key, value in where:
        found = _lookup(record, key)
        if found is _MISSING or not isinstance(found, SCALAR_TYPES) or format_scalar(found) != format_scalar(value):
            return False
    return True


def _context_words(context: Context) -> list[str]:
    return [f"dataset={context.dataset}", f"model={context.model}", *context.parts(RUN_SETTINGS)]


def _split_labels(label: str, contexts: list[Context]) -> dict[Context, str]:
    if len(contexts) == 1:
        return {contexts[0]: label}
    words = {c: _context_words(c) for c in contexts}
    common = set.intersection(*(set(w) for w in words.values()))
    return {c: f"{label} ({', '.join(w for w in words[c] if w not in common)})" for c in contexts}


def _metric(records: list[RunRecord], name: str) -> MetricDeclaration | None:
    for r in records:
        wanted = name or r.primary.name
        for d in r.declarations:
            if d.name == wanted:
                return d
    return None


def _resolve_axis(declaration: SummaryDeclaration, records: list[RunRecord]
                  ) -> tuple[tuple[Scalar, ...], str, str | None]:
    """(axis values, words for the header, problem) of one declaration within one context."""
    columns: dict[Scalar, tuple[float, str]] = {}
    for r in records:
        columns.setdefault(r.axis_value, (r.axis_order, r.axis_label))
    ordered = sorted(columns, key=lambda v: (columns[v][0], scalar_order(v)))
    axis = declaration.axis
    if axis == AXIS_MIN:
        return (ordered[0],), columns[ordered[0]][1], None
    if axis == AXIS_MAX:
        return (ordered[-1],), columns[ordered[-1]][1], None
    if axis == AXIS_AVERAGE:
        return tuple(ordered), "mean over " + ", ".join(columns[v][1] for v in ordered), None
    chosen = [v for v in ordered if columns[v][1] == axis or format_scalar(v) == axis]
    if not chosen:
        have = ", ".join(columns[v][1] for v in ordered)
        return (), axis, f"no run at {axis!r} (the runs have {have})"
    return (chosen[0],), columns[chosen[0]][1], None


def resolve_columns(records: Iterable[RunRecord]) -> tuple[list[ResolvedColumn], list[str]]:
    """Every declared summary column, resolved, in task order then declaration order; and the problems."""
    by_task: dict[str, list[RunRecord]] = {}
    for r in sorted(records, key=lambda r: str(r.path)):
        by_task.setdefault(r.task, []).append(r)
    columns: list[ResolvedColumn] = []
    problems: list[str] = []
    for task in sorted(by_task, key=task_rank):
        declared: dict[str, tuple[SummaryDeclaration, Path]] = {}
        readers: dict[str, list[RunRecord]] = {}
        for r in by_task[task]:
            for d in declarations_of(r):
                first = declared.setdefault(d.label, (d, r.path))
                if first[0] != d:
                    problems.append(f"{r.path}: summary column {d.label!r} of task {task} is declared as "
                                    f"{d.describe()}, but {first[1]} declares it as {first[0].describe()}; "
                                    "that record is left out of the column")
                    continue
                readers.setdefault(d.label, []).append(r)
        for label, (declaration, _) in declared.items():
            resolved = _resolve(task, declaration, readers[label])
            columns += resolved
            problems += [c.problem for c in resolved if c.problem and c.problem.startswith(_REFUSED)]
    return columns, list(dict.fromkeys(problems))


_REFUSED = "summary column"  # how a refusal's problem line starts (it also goes to the report's notes)


def _unkeyed(context: Context) -> Context:
    return replace(context, comparison=(), comparison_hash=None)


def _refusal(task: str, label: str, contexts: list[Context]) -> str:
    """One line naming the comparison keys in which the runs of one summary column disagree."""
    differences = {d.caption() for c in contexts for d in comparison_differences(c, contexts)}
    if any(not c.keyed for c in contexts):
        differences.add("comparison key absent from old records")
    return (f"{_REFUSED} {label!r} of task {task}: its runs differ in {'; '.join(sorted(differences))}; "
            "refused (not merged): give each setting its own column with `where:` or report the folders apart")


def _resolve(task: str, declaration: SummaryDeclaration, readers: list[RunRecord]) -> list[ResolvedColumn]:
    matching = [r for r in readers if matches(r, declaration.where)]
    if not matching:
        where = declaration.describe()
        return [ResolvedColumn(task, declaration, declaration.label, None, None, (), declaration.axis, (),
                               f"no run of {task} matches ({where})")]
    by_context: dict[Context, list[RunRecord]] = {}
    for r in matching:
        by_context.setdefault(r.context, []).append(r)
    by_base: dict[Context, list[Context]] = {}
    for context in by_context:
        by_base.setdefault(_unkeyed(context), []).append(context)
    refused = {c: _refusal(task, declaration.label, group) for group in by_base.values() if len(group) > 1
               for c in group}
    contexts = sorted(by_base, key=Context.sort_key)
    labels = _split_labels(declaration.label, contexts)
    out = []
    for base in contexts:
        members = by_base[base]
        if members[0] in refused:
            runs = [r for c in members for r in by_context[c]]
            out.append(ResolvedColumn(task, declaration, labels[base], members[0], _metric(runs, declaration.metric),
                                      (), declaration.axis, (), refused[members[0]]))
            continue
        out += _variant_columns(task, declaration, labels[base], members[0], by_context[members[0]])
    return out


def _variant_columns(task: str, declaration: SummaryDeclaration, label: str, context: Context,
                     runs: list[RunRecord]) -> list[ResolvedColumn]:
    """One column per row variant (few-shot's norm mode): a summary row is a norm, so variants are columns."""
    variants: dict[Any, list[RunRecord]] = {}
    for r in runs:
        variants.setdefault(r.row_variant, []).append(r)
    out = []
    for variant in sorted(variants, key=lambda v: tuple((k, scalar_order(x)) for k, x in v)):
        members = variants[variant]
        values, words, problem = _resolve_axis(declaration, members)
        metric = _metric(members, declaration.metric)
        if metric is None and problem is None:
            problem = f"the runs do not declare the metric {declaration.metric!r}"
        chosen = tuple(r for r in members if r.axis_value in values)
        named = row_label(label, variant) if len(variants) > 1 else label
        out.append(ResolvedColumn(task, declaration, named, context, metric, values, words, chosen, problem))
    return out
