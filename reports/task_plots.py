"""The figures each task's results call for, beyond metric vs the table axis.

- Clean against robust accuracy, one point per norm (adversarial training): the
  trade-off a robust-training paper is read for. The robust metric is the
  declared primary; the clean one is ``test/acc``, the plain test accuracy in
  every task (DESIGN.md's naming convention), drawn only where the task
  declares both (:data:`CLEAN_VS_PRIMARY` names the tasks that ask for it).
- Accuracy with its 95% CI per norm, for every metric that declares an interval
  (few-shot: each run's interval over test episodes, or Student's t over seeds):
  the norms on x, one marker per table column.
- Grouped bars per table column plus the average, for tables that average over
  their axis (domain adaptation: target accuracy per source -> target pair).

Units, labels and better directions come from the declarations, as in
:mod:`reports.plots`, whose style and file conventions (PNG and SVG, fixed
SVG ids) these figures share.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

from .plots import _MARKERS, _STYLE, _axis_label, _categorical_x, _new_figure, _save
from .stats import CellStats
from .tables import Table

# Tasks whose clean accuracy (test/acc) is drawn against their primary (robust) metric.
CLEAN_VS_PRIMARY = {"adversarial": "test/acc"}
_BAR_WIDTH = 0.8


def _legend(fig, ax) -> None:
    ax.grid(True, linewidth=0.3, alpha=0.5)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", frameon=False, handlelength=1.5)


def _err(cell: CellStats | None, scale: float) -> float:
    return 0.0 if cell is None or cell.spread is None else cell.spread * scale


def clean_vs_robust_pairs(tables: list[Table]) -> list[tuple[Table, Table]]:
    """(robust primary table, clean table) of one context, for the tasks in CLEAN_VS_PRIMARY."""
    by_context = {}
    for table in tables:
        by_context.setdefault(table.context, {})[table.metric] = table
    pairs = []
    for context, metrics in by_context.items():
        clean = CLEAN_VS_PRIMARY.get(context.task)
        primary = next((t for t in metrics.values() if t.primary), None)
        if clean and primary is not None and clean in metrics and primary.metric != clean:
            pairs.append((primary, metrics[clean]))
    return pairs


def draw_clean_vs_robust(robust: Table, clean: Table):
    """Clean (x) against robust (y) accuracy: a colour per norm, a marker per table column, ± as error bars."""
    with matplotlib.rc_context(_STYLE):
        fig, ax = _new_figure()
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        clean_rows = {row.norm: row for row in clean.rows}
        for i, row in enumerate(robust.rows):
            other = clean_rows.get(row.norm)
            for j, column in enumerate(robust.axis_columns):
                y = row.cells.get(column.value)  # type: ignore[arg-type]
                x = other.cells.get(column.value) if other else None  # type: ignore[arg-type]
                if x is None or y is None or x.mean is None or y.mean is None:
                    continue
                ax.errorbar(x.mean * clean.decl.scale, y.mean * robust.decl.scale,
                            xerr=_err(x, clean.decl.scale), yerr=_err(y, robust.decl.scale),
                            fmt=_MARKERS[j % len(_MARKERS)], color=colours[i % len(colours)], capsize=1.5,
                            elinewidth=0.8, label=row.label if j == 0 else None)
        columns = robust.axis_columns
        if len(columns) > 1:  # say which marker is which column
            for j, column in enumerate(columns):
                ax.plot([], [], _MARKERS[j % len(_MARKERS)], color="#777777", label=column.label)
        ax.set_xlabel(_axis_label(clean.decl))
        ax.set_ylabel(_axis_label(robust.decl))
        ax.set_title(f"{robust.dataset} / {robust.model}: clean vs robust")
        _legend(fig, ax)
    return fig


def plot_clean_vs_robust(robust: Table, clean: Table, out_dir: Path) -> list[Path]:
    with matplotlib.rc_context(_STYLE):
        return _save(draw_clean_vs_robust(robust, clean), out_dir, f"{robust.name}__clean_vs_robust")


def draw_intervals_by_norm(table: Table):
    """The metric per norm (x) with its 95% interval, one marker per table column, dodged."""
    scale = table.decl.scale
    with matplotlib.rc_context(_STYLE):
        fig, ax = _new_figure()
        columns = table.axis_columns
        dodge = 0.6 / max(1, len(columns))
        for j, column in enumerate(columns):
            x, y, err = [], [], []
            for i, row in enumerate(table.rows):
                cell = row.cells.get(column.value)  # type: ignore[arg-type]
                if cell is None or cell.mean is None:
                    continue
                x.append(i + (j - (len(columns) - 1) / 2) * dodge)
                y.append(cell.mean * scale)
                err.append(_err(cell, scale))
            if x:
                ax.errorbar(x, y, yerr=err, fmt=_MARKERS[j % len(_MARKERS)], capsize=2, elinewidth=0.9,
                            label=column.label)
        _categorical_x(ax, [row.label for row in table.rows])
        ax.set_xlabel("normalization")
        ax.set_ylabel(_axis_label(table.decl) + ", 95% CI")
        ax.set_title(f"{table.dataset} / {table.model}")
        _legend(fig, ax)
    return fig


def plot_intervals_by_norm(table: Table, out_dir: Path) -> list[Path]:
    with matplotlib.rc_context(_STYLE):
        return _save(draw_intervals_by_norm(table), out_dir, f"{table.name}__by_norm")


def draw_column_bars(table: Table):
    """Grouped bars: one group per table column (then the average), one bar per norm, ± the table's spread."""
    scale = table.decl.scale
    with matplotlib.rc_context(_STYLE):
        fig, ax = _new_figure()
        width = _BAR_WIDTH / max(1, len(table.rows))
        for i, row in enumerate(table.rows):
            x, y, err = [], [], []
            for j, column in enumerate(table.columns):
                offset = j + (i - (len(table.rows) - 1) / 2) * width
                if column.is_average:
                    if row.average is not None:
                        x.append(offset)
                        y.append(row.average * scale)
                        err.append(0.0)
                    continue
                cell = row.cells.get(column.value)  # type: ignore[arg-type]
                if cell is not None and cell.mean is not None:
                    x.append(offset)
                    y.append(cell.mean * scale)
                    err.append(_err(cell, scale))
            if x:
                ax.bar(x, y, width=width * 0.95, yerr=err, capsize=1.5, error_kw={"elinewidth": 0.8},
                       label=row.label)
        _categorical_x(ax, [c.label for c in table.columns])
        ax.set_xlabel(table.axis_label)
        ax.set_ylabel(_axis_label(table.decl))
        ax.set_title(f"{table.dataset} / {table.model}")
        _legend(fig, ax)
    return fig


def plot_column_bars(table: Table, out_dir: Path) -> list[Path]:
    with matplotlib.rc_context(_STYLE):
        return _save(draw_column_bars(table), out_dir, f"{table.name}__bars")


def plot_task_figures(tables: list[Table], out_dir: Path) -> dict[str, list[Path]]:
    """The task-specific figures, keyed by the table they illustrate (its primary table)."""
    figures: dict[str, list[Path]] = {}
    for robust, clean in clean_vs_robust_pairs(tables):
        figures.setdefault(robust.name, []).extend(plot_clean_vs_robust(robust, clean, out_dir))
    for table in tables:
        if not table.primary:
            continue
        if table.decl.interval is not None:
            figures.setdefault(table.name, []).extend(plot_intervals_by_norm(table, out_dir))
        if any(c.is_average for c in table.columns):
            figures.setdefault(table.name, []).extend(plot_column_bars(table, out_dir))
    return figures
