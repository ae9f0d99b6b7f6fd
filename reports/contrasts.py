"""Difference-in-differences across the table axis, for declared pairs.

The paper's claim is an interaction: BGN helps *more* at batch 2 than at batch
128. One starred cell per column does not test that; the contrast does:

    ((norm - reference) at a) - ((norm - reference) at b)

per seed, paired over seeds where the runs of each column saw the same batches
(their ``train_order_hash`` agree; a paired t interval over the per-seed
contrasts), else from the four cells' means with a Welch-Satterthwaite
interval. Each contrast is two-sided with its 95% CI, and the declared
contrasts of a report are one Holm family.

A sweep declares them; every record it writes carries ``contrasts``, a list of
``{norm, between: [a, b], reference?, metric?, task?}`` (axis values as value
or label, as in summary columns).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from typing import Any, Iterable

from scipy import stats as _scipy_stats

from .compare import ALPHA, CONFIDENCE, MIN_SEEDS_FOR_TEST, paired_t, pairing_of
from .family import HOLM, holm
from .record import Context, RunRecord, format_scalar, row_key
from .stats import CellStats

CONTRASTS_KEY = "contrasts"
PAIRED = "paired t-test over seeds of the per-seed contrast"
UNPAIRED = "Welch-Satterthwaite t-test over the four cells (unpaired)"


@dataclass(frozen=True)
class Contrast:
    """One declared difference-in-differences, computed in one table (context x metric)."""

    context: Context
    metric: str
    norm: str
    reference: str
    at: tuple[str, str]  # the two columns' labels
    n: int = 0  # seeds (paired) or the smallest cell's seed count (unpaired)
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    family_size: int = 0
    test: str = ""
    paired: bool = False
    reason: str = ""  # why no test was made, or why it is not paired

    @property
    def significant(self) -> bool:
        return self.p_adjusted is not None and self.p_adjusted < ALPHA and self.n >= MIN_SEEDS_FOR_TEST


def _declared(records: Iterable[RunRecord]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(task, declaration) pairs, once each, and the problems with malformed ones."""
    found: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    problems = []
    for r in sorted(records, key=lambda r: str(r.path)):
        items = r.raw.get(CONTRASTS_KEY)
        if items is None:
            continue
        for i, item in enumerate(items if isinstance(items, list) else [items]):
            between = item.get("between") if isinstance(item, dict) else None
            if (not isinstance(item, dict) or not isinstance(item.get("norm"), str) or not isinstance(between, list)
                    or len(between) != 2):
                problems.append(f"{r.path}: key '{CONTRASTS_KEY}[{i}]' must be {{norm, between: [a, b], "
                                f"reference?, metric?, task?}}; ignored")
                continue
            task = item.get("task", r.task)
            found.setdefault((task, repr(sorted(item.items()))), (task, item))
    return list(found.values()), list(dict.fromkeys(problems))


def _column(cells: dict[Any, CellStats], wanted: Any) -> CellStats | None:
    spelled = format_scalar(wanted)
    return next((c for c in cells.values() if spelled in (format_scalar(c.axis_value), c.axis_label)), None)


def _unpaired(norm_a: CellStats, ref_a: CellStats, norm_b: CellStats, ref_b: CellStats
              ) -> tuple[float, float, float, float] | None:
    parts = [(norm_a, 1), (ref_a, -1), (norm_b, -1), (ref_b, 1)]
    if any(c.n < MIN_SEEDS_FOR_TEST for c, _ in parts):
        return None
    estimate = sum(sign * c.mean for c, sign in parts)  # type: ignore[operator]
    v = [c.std ** 2 / c.n for c, _ in parts]  # type: ignore[operator]
    se = math.sqrt(sum(v))
    if se == 0:
        return None
    df = sum(v) ** 2 / sum(vi ** 2 / (c.n - 1) for vi, (c, _) in zip(v, parts))
    t = float(_scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df))
    p = float(2 * _scipy_stats.t.sf(abs(estimate / se), df))
    return estimate, estimate - t * se, estimate + t * se, p


def _contrast(base: Contrast, cells: tuple[CellStats, CellStats, CellStats, CellStats]) -> Contrast:
    norm_a, ref_a, norm_b, ref_b = cells
    seeds = sorted(set(norm_a.seeds) & set(ref_a.seeds) & set(norm_b.seeds) & set(ref_b.seeds))
    pair_a = pairing_of(seeds, norm_a.orders, ref_a.orders)
    pair_b = pairing_of(seeds, norm_b.orders, ref_b.orders)
    why = next((p[1] for p in (pair_a, pair_b) if not p[0]), "")
    if not why and len(seeds) < MIN_SEEDS_FOR_TEST:
        why = f"only {len(seeds)} seeds in all four cells: not paired"
    if not why:
        per_seed = [(norm_a.by_seed[s] - ref_a.by_seed[s]) - (norm_b.by_seed[s] - ref_b.by_seed[s]) for s in seeds]
        diff, low, high, p = paired_t(per_seed, [0.0] * len(seeds))
        if p is None:
            return replace(base, n=len(seeds), diff=diff, paired=True,
                           reason="the per-seed contrasts are constant: the t statistic is undefined")
        return replace(base, n=len(seeds), diff=diff, ci_low=low, ci_high=high, p_value=p, test=PAIRED, paired=True)
    result = _unpaired(norm_a, ref_a, norm_b, ref_b)
    if result is None:
        return replace(base, n=min(c.n for c in cells), reason=f"{why}; an unpaired contrast needs ≥ "
                       f"{MIN_SEEDS_FOR_TEST} seeds in each of the four cells and some spread")
    diff, low, high, p = result
    return replace(base, n=min(c.n for c in cells), diff=diff, ci_low=low, ci_high=high, p_value=p, test=UNPAIRED,
                   reason=why)


def compute_contrasts(cells: Iterable[CellStats], records: Iterable[RunRecord]) -> tuple[list[Contrast], list[str]]:
    """Every declared contrast in every table where its norm and reference ran; Holm over all of them.

    A declared contrast whose cells are missing in a table is not computed there;
    one computed but untestable counts in the family as p = 1.
    """
    declared, problems = _declared(records)
    tables: dict[tuple[Context, str], list[CellStats]] = {}
    for cell in cells:
        tables.setdefault((cell.context, cell.metric), []).append(cell)
    out: list[Contrast] = []
    for (context, metric), members in tables.items():
        by_row: dict[str, dict[Any, CellStats]] = {}
        for c in members:
            by_row.setdefault(c.row_key, {})[c.axis_value] = c
        for task, item in declared:
            primary = members[0].decl.primary
            if task != context.task or (item.get("metric", "") != metric if item.get("metric") else not primary):
                continue
            reference = item.get("reference") or members[0].reference
            for key, row in by_row.items():
                first = next(iter(row.values()))
                if first.norm != item["norm"]:
                    continue
                ref_row = by_row.get(row_key(reference, first.row_variant), {})
                found = [_column(row, item["between"][0]), _column(ref_row, item["between"][0]),
                         _column(row, item["between"][1]), _column(ref_row, item["between"][1])]
                if any(c is None for c in found):
                    continue
                base = Contrast(context, metric, key, reference, (found[0].axis_label, found[2].axis_label))  # type: ignore
                out.append(_contrast(base, tuple(found)))  # type: ignore[arg-type]
    adjusted = holm([c.p_value if c.p_value is not None else 1.0 for c in out])
    out = [replace(c, p_adjusted=a if c.p_value is not None else None, family_size=len(out))
           for c, a in zip(out, adjusted)]
    return out, problems


CSV_COLUMNS = ("task", "dataset", "model", "context", "metric", "norm", "reference", "at", "minus_at", "n", "diff",
               "ci_low", "ci_high", "p", "p_holm", "family_size", "correction", "test", "paired", "note")


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_contrasts_csv(contrasts: Iterable[Contrast]) -> str:
    """One row per contrast: ((norm - reference) at `at`) - ((norm - reference) at `minus_at`), raw units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in contrasts:
        writer.writerow([c.context.task, c.context.dataset, c.context.model, ";".join(c.context.parts()), c.metric,
                         c.norm, c.reference, c.at[0], c.at[1], c.n, _num(c.diff), _num(c.ci_low), _num(c.ci_high),
                         _num(c.p_value), _num(c.p_adjusted), c.family_size, HOLM, c.test,
                         "yes" if c.paired else "no", c.reason])
    return out.getvalue()
