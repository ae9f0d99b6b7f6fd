"""Figures for a paper column: metric vs the table axis, and BGN's metric vs G.

The x axis is the task's declared table axis: log2 batch size when the axis is
the batch size, otherwise evenly spaced categories labelled with the columns'
labels ("5-way 1-shot", "F-MNIST→F-MNIST-M"), in axis order, with markers and
error bars only (a line between two domain pairs would suggest a trend that is
not there). The y axis says the metric's declared label and unit; bands and
error bars are the table's ± (sample std, or the 95% interval of an interval
metric).

Sized for one column of a two-column paper (3.4 x 2.5 in, 8 pt text) and saved
as PNG (200 dpi, for the index page) and SVG (for the paper). Drawing uses an
explicit Agg canvas and a local rc context, so it needs no display and leaves
matplotlib's global state alone; SVG ids and metadata are fixed so the same
runs give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")  # no display needed, even when a GUI backend is configured
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from .record import MetricDeclaration  # noqa: E402
from .stats import CellStats  # noqa: E402
from .tables import Column, Row, Table  # noqa: E402

FIGSIZE = (3.4, 2.5)  # inches: one column of a two-column paper
DPI = 200
_STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 6.5,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "normbench",
    "svg.fonttype": "path", "axes.prop_cycle": matplotlib.cycler(color=[
        "#000000", "#e69f00", "#56b4e9", "#009e73", "#0072b2", "#d55e00", "#cc79a7", "#999999",
        "#882255", "#44aa99",
    ]),
}
_MARKERS = "osD^v<>ph*"
_DODGE = 0.08  # horizontal offset between norms on a categorical axis (column width 1)


def _axis_label(decl: MetricDeclaration) -> str:
    return f"{decl.label} ({decl.symbol})" if decl.symbol else decl.label


def _log2_x(ax, values: Iterable[int]) -> None:
    """Log2 x axis ticked exactly at the grid values (2, 8, 32, not 2^1...)."""
    values = sorted(set(values))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(v) for v in values])
    if len(values) == 1:  # a single point would give a zero-width axis
        ax.set_xlim(values[0] / 2, values[0] * 2)


def _categorical_x(ax, labels: list[str]) -> None:
    """Evenly spaced categories at 0, 1, ...; long labels are turned so they do not overlap."""
    ax.xaxis.set_major_locator(FixedLocator(list(range(len(labels)))))
    ax.xaxis.set_minor_locator(NullLocator())
    long = max((len(label) for label in labels), default=0) > 8
    ax.set_xticklabels(labels, rotation=30 if long else 0, ha="right" if long else "center")
    ax.set_xlim(-0.5, len(labels) - 0.5)


def _finish(fig: Figure, ax) -> None:
    """Legend outside the axes; constrained layout keeps the figure at FIGSIZE."""
    ax.grid(True, linewidth=0.3, alpha=0.5)
    if ax.lines:
        fig.legend(loc="outside right upper", frameon=False, handlelength=1.8)


def _save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return [png, svg]


def _series(points: list[tuple[float, CellStats | None]], scale: float):
    """Points with finished seeds only; failed cells leave a gap in the x list."""
    x, mean, lo, hi = [], [], [], []
    for position, cell in points:
        if cell is None or cell.mean is None:
            continue
        spread = cell.spread or 0.0
        x.append(position)
        mean.append(cell.mean * scale)
        lo.append((cell.mean - spread) * scale)
        hi.append((cell.mean + spread) * scale)
    return x, mean, lo, hi


def _positions(table: Table) -> list[tuple[float, Column]]:
    """Where each axis column sits on x: its batch size, or its index for a categorical axis."""
    columns = table.axis_columns
    if table.on_batch_axis:
        return [(float(c.value), c) for c in columns]  # type: ignore[arg-type]
    return [(float(i), c) for i, c in enumerate(columns)]


def _new_figure() -> tuple[Figure, object]:
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    return fig, fig.add_subplot()


def figure_stem(table: Table) -> str:
    """`<table>__vs_batch_size` on the batch axis, else `<table>__vs_<axis key>`."""
    return f"{table.name}__vs_{table.context.axis}"


def draw_vs_axis(table: Table) -> Figure:
    """The figure of :func:`plot_vs_axis`, unsaved (tests read its axes)."""
    scale = table.decl.scale
    positions = _positions(table)
    with matplotlib.rc_context(_STYLE):
        fig, ax = _new_figure()
        for i, row in enumerate(table.rows):
            x, mean, lo, hi = _series([(p, row.cells.get(c.value)) for p, c in positions], scale)  # type: ignore[arg-type]
            if not x:
                continue
            marker = _MARKERS[i % len(_MARKERS)]
            if table.on_batch_axis:
                style = "--" if row.norm == "bn" else "-"
                (line,) = ax.plot(x, mean, style, marker=marker, label=row.label)
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
            else:  # separate categories: no line or band between them, norms side by side
                shift = (i - (len(table.rows) - 1) / 2) * _DODGE
                ax.errorbar([v + shift for v in x], mean, yerr=[[m - a for m, a in zip(mean, lo)],
                            [b - m for m, b in zip(mean, hi)]], fmt=marker, capsize=1.5, elinewidth=0.8,
                            label=row.label)
        if table.on_batch_axis:
            _log2_x(ax, [int(p) for p, _ in positions])
        else:
            _categorical_x(ax, [c.label for _, c in positions])
        ax.set_xlabel(table.axis_label)
        ax.set_ylabel(_axis_label(table.decl))
        ax.set_title(f"{table.dataset} / {table.model}")
        _finish(fig, ax)
    return fig


def plot_vs_axis(table: Table, out_dir: Path) -> list[Path]:
    """Metric vs the table axis, one series per norm with the table's ±; PNG and SVG paths."""
    with matplotlib.rc_context(_STYLE):
        return _save(draw_vs_axis(table), out_dir, figure_stem(table))


def bgn_rows(table: Table) -> list[Row]:
    """BGN rows with a group count, ascending G; a G plot needs at least two."""
    rows = [r for r in table.rows if r.norm_name == "bgn" and r.num_groups is not None]
    return sorted(rows, key=lambda r: r.num_groups) if len({r.num_groups for r in rows}) >= 2 else []


def plot_bgn_vs_groups(table: Table, out_dir: Path) -> list[Path]:
    """BGN's metric vs G (log2 axis), one line per axis column, BN dashed for reference.

    Returns [] when the table has fewer than two G values for BGN.
    """
    rows = bgn_rows(table)
    if not rows:
        return []
    scale = table.decl.scale
    bn = next((r for r in table.rows if r.norm == "bn"), None)
    groups = sorted({r.num_groups for r in rows})
    with matplotlib.rc_context(_STYLE):
        fig, ax = _new_figure()
        for i, column in enumerate(table.axis_columns):
            by_g = {r.num_groups: r.cells.get(column.value) for r in rows}  # type: ignore[arg-type]
            x, mean, lo, hi = _series([(float(g), by_g[g]) for g in groups], scale)
            if not x:
                continue
            (line,) = ax.plot(x, mean, "-", marker=_MARKERS[i % len(_MARKERS)], label=column.label)
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
            ref = bn.cells.get(column.value) if bn is not None else None  # type: ignore[arg-type]
            if ref is not None and ref.mean is not None:
                ax.axhline(ref.mean * scale, color=line.get_color(), linestyle="--", linewidth=0.8)
        _log2_x(ax, groups)
        ax.set_xlabel("BGN groups G")
        ax.set_ylabel(_axis_label(table.decl))
        title = f"{table.dataset} / {table.model}"
        ax.set_title(title + (" (dashed: BN)" if bn is not None else ""))
        _finish(fig, ax)
        return _save(fig, out_dir, f"{table.name}__bgn_vs_groups")


def plot_tables(tables: Iterable[Table], out_dir: Path) -> dict[str, list[Path]]:
    """All figures, keyed by table name; each value lists PNG and SVG paths."""
    figures: dict[str, list[Path]] = {}
    for table in tables:
        paths = plot_vs_axis(table, out_dir) + plot_bgn_vs_groups(table, out_dir)
        figures[table.name] = paths
    return figures
