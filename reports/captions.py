"""A table's caption (two sentences at most) and the notes printed under it.

A caption a reader pastes into a paper says what the table is and what a cell
holds; everything else (what bold and the marks mean, which test made a star,
what the short headers stand for, the average column) is a note under the
table, one line each, in every format. Symbols are spelled per format by the
`sym` maps of :mod:`reports.render`; `esc` escapes plain text for the format.
"""

from __future__ import annotations

from typing import Callable

from .compare import MIN_SEEDS_FOR_TEST
from .family import significance_sentence
from .layout import TableSet
from .tables import AVERAGE_LABEL, Table

Escape = Callable[[str], str]


def _spread_words(table: Table, sym: dict, esc: Escape) -> str:
    """What follows the ±: a sample std, or for an interval metric which 95% interval."""
    if table.decl.interval is None:
        return "sample std over seeds"
    counts = {c.n for row in table.rows for c in row.cells.values() if c.n > 0}
    over_seeds, over_episodes = esc("95% CI over seeds (Student's t)"), esc("95% CI over test episodes")
    if counts and all(n >= 2 for n in counts):
        return over_seeds
    if counts and all(n == 1 for n in counts):
        return over_episodes
    return f"{over_seeds}; with one seed, {sym['pm']} {over_episodes}"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _unit(ts: TableSet, esc: Escape) -> str:
    """The shared unit symbol, escaped (a bare % starts a LaTeX comment); empty when none or mixed."""
    units = {t.unit for t in ts.tables}
    return f" ({esc(units.pop())})" if len(units) == 1 and ts.first.unit else ""


def caption(ts: TableSet, sym: dict, esc: Escape) -> str:
    """What the table is, then what a cell holds: two sentences."""
    first = ts.first
    unit = _unit(ts, esc)
    if not ts.grouped:
        what = f"{esc(first.heading)}: {esc(first.decl.label)}{unit} by normalization and {esc(first.axis_label)}"
    elif ts.single_value:
        metrics = _and([esc(t.decl.header) for t in ts.tables])
        what = f"{esc(first.heading)}, {esc(ts.axis_columns[0].label)}: {metrics}{unit} by normalization"
    else:
        metrics = _and([esc(t.decl.header) for t in ts.tables])
        what = f"{esc(first.heading)}: {metrics}{unit} by normalization and {esc(first.axis_label)}"
    n = first.modal_n
    seeds = f"n={n} seed{'s' if n != 1 else ''} unless marked" if n else "no finished seeds"
    return f"{what}. Mean {sym['pm']} {_spread_words(first, sym, esc)} ({seeds})."


def _bold_note(ts: TableSet, sym: dict, esc: Escape) -> str:
    costs = [t for t in ts.tables if t.decl.is_cost]
    if len(costs) == len(ts.tables):
        return f"No bold: {esc(ts.first.decl.label)} is a cost of the run, not a result."
    directions = {t.mode for t in ts.tables if not t.decl.is_cost}
    better = ("higher" if directions.pop() == "max" else "lower") + " is better" if len(directions) == 1 else \
        "in each metric's declared direction"
    column = "batch size" if ts.first.on_batch_axis and not ts.grouped else "column"
    note = f"{sym['bold']('Bold')}: best mean per {column} ({better}); none in a column with a single value"
    if costs:
        note += f"; none for costs ({esc(', '.join(t.decl.header for t in costs))})"
    return note + "."


def _test_note(ts: TableSet, sym: dict, esc: Escape) -> str:
    first = ts.first
    if not first.has_bn:
        return "No reference (BN) row, so no significance test."
    cells = [c for t in ts.tables for row in t.rows for c in row.cells.values()]
    reference = next((c.norm_label for c in cells if c.is_reference), "BN")
    same = "at the same batch size" if first.on_batch_axis else "in the same column"
    sentence = significance_sentence((c.comparison for c in cells), reference, same)
    if not sentence:
        return (f"No significance claimed: a test needs {sym['geq']} {MIN_SEEDS_FOR_TEST} finished seeds "
                "in both cells.")
    return f"{sym['sup'](sym['sig'])}: {esc(sentence)}"


def notes(ts: TableSet, sym: dict, esc: Escape) -> list[str]:
    """Everything the caption leaves out, one sentence or two per line, in a fixed order."""
    lines = []
    if ts.grouped:
        lines.append("Columns: " + "; ".join(f"{esc(t.decl.header)}: {esc(t.decl.label)} ({esc(t.metric)})"
                                             for t in ts.tables) + ".")
    else:
        lines.append(f"Metric: {esc(ts.first.metric)}; columns: {esc(ts.first.axis_label)}.")
    if any(c.column.is_average for c in ts.columns):
        lines.append(f"{AVERAGE_LABEL}: mean over the row's {esc(ts.first.axis_label)} columns, "
                     "shown only when all of them have a value.")
    lines.append(_bold_note(ts, sym, esc))
    lines.append(_test_note(ts, sym, esc))
    lines.append(f"{sym['sup'](sym['dagger'])}: some seeds failed or diverged, mean over the finished seeds; "
                 f"{sym['dash']}: not run; (n=k): k finished seeds.")
    return lines
