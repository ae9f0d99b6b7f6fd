"""Families of comparisons and Holm's correction: which p-values are adjusted together.

A report makes tens of comparisons with the reference norm; at alpha 0.05 each,
some would be "significant" by chance alone. Every p-value is therefore
adjusted over a declared family with Holm's step-down method (it controls the
family-wise error rate like Bonferroni under any dependence between the tests,
and is uniformly more powerful), and only the adjusted value makes a star:

- **declared hypotheses**: a sweep may pre-register its family. Every record it
  writes then carries ``hypotheses`` (docs/reporting.md), a list of
  ``{id, norm, task?, reference?, metric?, axis?, where?, expect?}``; the
  comparisons they name, over all tables of the report, form one family. A
  hypothesis whose comparison could not be tested still counts, as p = 1: a
  pre-registered family does not shrink because runs failed.
- **the table** (default): every other comparison made in one table
  (context x metric) is one family.

The summary table is one family of its own (:mod:`reports.summary`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

from .compare import ALPHA, MIN_SEEDS_FOR_TEST, Comparison, compare_with_reference, stars, tests_sentence
from .record import SCALAR_TYPES, RunRecord, Scalar, format_scalar, row_key
from .stats import CellStats

HOLM = "Holm"
TABLE_FAMILY = "table"
HYPOTHESES_KEY = "hypotheses"
_HYPOTHESIS_KEYS = {"id": str, "norm": str, "task": str, "reference": str, "metric": str, "axis": SCALAR_TYPES,
                    "where": dict, "expect": str}
EXPECTATIONS = ("better", "worse")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: max over j <= i of (m - j + 1) p_(j), capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Hypothesis:
    """One pre-registered comparison: `norm` against `reference` in `metric` at `axis`, where `where` holds."""

    id: str
    norm: str
    task: str = ""  # "" : any task
    reference: str = ""  # "" : the context's reference norm
    metric: str = ""  # "" : the primary metric
    axis: str = ""  # "" : every column; else an axis value or label as spelled
    where: tuple[tuple[str, Scalar], ...] = ()
    expect: str = ""  # "better" / "worse": the pre-registered direction (a two-sided test is made regardless)

    def matches(self, cell: CellStats) -> bool:
        coordinates = dict(cell.coordinates)
        return (cell.norm == self.norm and (not self.task or cell.task == self.task)
                and (not self.reference or cell.reference == self.reference)
                and (cell.metric == self.metric if self.metric else cell.decl.primary)
                and (not self.axis or self.axis in (format_scalar(cell.axis_value), cell.axis_label))
                and all(k in coordinates and format_scalar(coordinates[k]) == format_scalar(v) for k, v in self.where))


def _hypothesis(entry: Any, where: str) -> Hypothesis:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object")
    for key, value in entry.items():
        kind = _HYPOTHESIS_KEYS.get(key)
        if kind is None:
            raise ValueError(f"{where}.{key} is not a hypothesis key (use {', '.join(_HYPOTHESIS_KEYS)})")
        if not isinstance(value, kind) or isinstance(value, bool) and kind is str:
            raise ValueError(f"{where}.{key} has the wrong type: {value!r}")
    if not entry.get("id") or not entry.get("norm"):
        raise ValueError(f"{where} needs an id and a norm")
    if entry.get("expect", "better") not in EXPECTATIONS:
        raise ValueError(f"{where}.expect must be 'better' or 'worse', got {entry['expect']!r}")
    if not all(isinstance(v, SCALAR_TYPES) for v in entry.get("where", {}).values()):
        raise ValueError(f"{where}.where values must be str, int, float or bool")
    return Hypothesis(entry["id"], entry["norm"], entry.get("task", ""), entry.get("reference", ""),
                      entry.get("metric", ""), format_scalar(entry["axis"]) if "axis" in entry else "",
                      tuple(sorted(entry.get("where", {}).items())), entry.get("expect", ""))


def parse_hypotheses(records: Iterable[RunRecord]) -> tuple[tuple[Hypothesis, ...], list[str]]:
    """The union of the records' declared hypotheses (by id, first by path wins) and the problems found."""
    found: dict[str, tuple[Hypothesis, Any]] = {}
    problems: list[str] = []
    for r in sorted(records, key=lambda r: str(r.path)):
        items = r.raw.get(HYPOTHESES_KEY)
        if items is None:
            continue
        if not isinstance(items, list):
            problems.append(f"{r.path}: key {HYPOTHESES_KEY!r} must be a list; ignored")
            continue
        for i, entry in enumerate(items):
            try:
                hypothesis = _hypothesis(entry, f"{HYPOTHESES_KEY}[{i}]")
            except ValueError as exc:
                problems.append(f"{r.path}: key {exc}; that hypothesis is ignored")
                continue
            first = found.setdefault(hypothesis.id, (hypothesis, r.path))
            if first[0] != hypothesis:
                problems.append(f"{r.path}: hypothesis {hypothesis.id!r} differs from the one in {first[1]}; "
                                "the first is used")
    return tuple(h for h, _ in found.values()), list(dict.fromkeys(problems))


def hypotheses_label(hypotheses: Sequence[Hypothesis]) -> str:
    return f"declared hypotheses ({', '.join(h.id for h in hypotheses)})"


def adjust(comparisons: Sequence[Comparison | None], groups: Iterable[tuple[list[int], str, int]]
           ) -> list[Comparison | None]:
    """Holm over each group of indices; `extra` untested members of a group count as p = 1."""
    out = list(comparisons)
    for members, label, extra in groups:
        tested = [i for i in members if out[i] is not None and out[i].made]  # type: ignore[union-attr]
        size = len(tested) + extra
        adjusted = holm([out[i].p_value for i in tested] + [1.0] * extra)  # type: ignore[misc, union-attr]
        for i in members:
            if out[i] is None:
                continue
            p = adjusted[tested.index(i)] if i in tested else None
            out[i] = replace(out[i], p_adjusted=p, family=label, family_size=size, correction=HOLM)  # type: ignore
    return out


def compare_cells(cells: list[CellStats], records: Iterable[RunRecord]) -> list[CellStats]:
    """Every non-reference cell compared with the reference row of its variant, then Holm-adjusted."""
    index = {c.key: c for c in cells}
    comparisons: list[Comparison | None] = []
    for cell in cells:
        reference = index.get((cell.context, cell.metric, row_key(cell.reference, cell.row_variant), cell.axis_value))
        if cell.is_reference or reference is None:
            comparisons.append(None)
            continue
        found = compare_with_reference(cell.by_seed, reference.by_seed, cell.orders, reference.orders,
                                       cell.items, reference.items)
        comparisons.append(replace(found, reference=cell.reference))
    hypotheses, _ = parse_hypotheses(records)
    declared = [i for i, c in enumerate(cells) if comparisons[i] is not None and any(h.matches(c) for h in hypotheses)]
    unmatched = sum(not any(h.matches(cells[i]) for i in declared) for h in hypotheses)
    untested = sum(not comparisons[i].made for i in declared)  # type: ignore[union-attr]
    tables: dict[Any, list[int]] = {}
    for i, cell in enumerate(cells):
        if comparisons[i] is not None and i not in declared:
            tables.setdefault((cell.context, cell.metric), []).append(i)
    groups = [(idx, TABLE_FAMILY, 0) for idx in tables.values()]
    if hypotheses:
        groups.append((declared, hypotheses_label(hypotheses), unmatched + untested))
    adjusted = adjust(comparisons, groups)
    out = []
    for cell, comparison in zip(cells, adjusted):
        if comparison is None:
            out.append(cell)
            continue
        out.append(replace(cell, comparison=comparison, p_vs_bn=comparison.p_value if comparison.made else None,
                           beats_bn=comparison.better(cell.mode)))
    return out


def significance_sentence(comparisons: Iterable[Comparison | None], reference: str, same: str) -> str:
    """The caption's account of the star (the renderer puts the mark first): test, family sizes, correction.

    `reference` is the reference norm's label, `same` where it is compared
    ("at the same batch size"). Empty when no comparison was made.
    """
    made = [c for c in comparisons if c is not None and c.made]
    if not made:
        return ""
    families = sorted({(c.family, c.family_size) for c in made}, key=lambda f: (f[0] == TABLE_FAMILY, f))
    where = " and ".join(f"the {size} comparison{'s' if size != 1 else ''} of "
                         f"{'this table' if family == TABLE_FAMILY else 'the ' + family}" for family, size in families)
    return (f"significantly better than {reference} {same} (two-sided test, {HOLM}-adjusted p < {ALPHA:g} over "
            f"{where}; never with fewer than {MIN_SEEDS_FOR_TEST} seeds; {tests_sentence({c.test for c in made})}).")


# The statistics columns of tables.csv and summary.csv, the same in both (raw units; empty where undefined).
CSV_COLUMNS = ("reference", "diff", "ci_low", "ci_high", "p", "p_holm", "stars", "family", "family_size",
               "correction", "paired", "pairing", "fallback")


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def csv_values(comparison: Comparison | None) -> list[str]:
    """One cell's CSV_COLUMNS: the difference to the reference, its 95% CI, raw and adjusted p, the family."""
    if comparison is None:
        return [""] * len(CSV_COLUMNS)
    made = comparison.made
    reason = comparison.fallback or ("" if made else comparison.reason)
    return [comparison.reference, _num(comparison.diff), _num(comparison.ci_low if made else None),
            _num(comparison.ci_high if made else None), _num(comparison.p_value if made else None),
            _num(comparison.p_adjusted), stars(comparison), comparison.family,
            str(comparison.family_size) if comparison.family else "", comparison.correction,
            ("yes" if comparison.paired else "no") if made else "", comparison.pairing if made else "", reason]
