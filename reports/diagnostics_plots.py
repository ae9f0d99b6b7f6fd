"""Figures of the norm diagnostics, drawn when records carry ``diagnostics/...`` fields (docs/diagnostics.md).

Runs made with ``--diagnostics.norm_stats true`` record, per run, how noisy its
batch statistics were (``diagnostics/noise_mean``, ``diagnostics/noise_std``:
batch vs population moments, in population stds), how confused its pooled
statistics were (``diagnostics/confusion``: the between-channel share of the
pooled variance) and how many elements a statistic pools
(``diagnostics/elements_per_stat``, geometric mean over layers). Three figures
test BGN's explanation of BN's failures with them:

- noise against batch size, one line per norm (BGN per G), the error of the
  mean above and of the std below; norms without batch statistics have none;
- confusion against G: BGN one line per batch size, norms with a group count
  (GN) as markers at their G, the others (LN, PN, BN) as dotted levels (those
  two kinds averaged over the batch sizes);
- the primary metric against elements per statistic, a colour per norm and a
  marker per table column.

Each figure goes with the primary table of its context; values are means over
seeds. Style and file conventions are :mod:`reports.plots`'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import matplotlib

from .plots import _MARKERS, _STYLE, FIGSIZE, _axis_label, _log2_x, _new_figure, _save
from .record import RunRecord
from .tables import Table

__all__ = ["DiagnosticPoint", "diagnostic_points", "plot_diagnostics", "NOISE_MEAN", "NOISE_STD", "CONFUSION",
           "ELEMENTS"]

NOISE_MEAN, NOISE_STD = "diagnostics/noise_mean", "diagnostics/noise_std"
CONFUSION, ELEMENTS = "diagnostics/confusion", "diagnostics/elements_per_stat"
_FIELDS = (NOISE_MEAN, NOISE_STD, CONFUSION, ELEMENTS)


@dataclass(frozen=True)
class DiagnosticPoint:
    """One (norm, table column) of a context: diagnostics and primary metric, means over finished seeds."""

    norm: str
    label: str
    num_groups: int | None
    batch_size: int
    axis_value: object
    axis_label: str
    values: dict[str, float]  # the diagnostics fields present in every seed's record
    metric: float | None
    seeds: int

    def get(self, key: str) -> float | None:
        return self.values.get(key)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def diagnostic_points(records: Iterable[RunRecord], table: Table) -> list[DiagnosticPoint]:
    """The table's finished runs that carry diagnostics, averaged over seeds, in the table's row order."""
    groups: dict[tuple[str, object], list[RunRecord]] = {}
    for r in records:
        if r.finished and r.context == table.context and any(_number(r.raw.get(k)) for k in _FIELDS):
            groups.setdefault((r.norm, r.axis_value), []).append(r)
    rank = {row.norm: i for i, row in enumerate(table.rows)}
    labels = {row.norm: row.label for row in table.rows}
    points = []
    for (norm, axis_value), runs in groups.items():
        values = {k: sum(r.raw[k] for r in runs) / len(runs) for k in _FIELDS if all(_number(r.raw.get(k)) for r in runs)}
        metrics = [r.metrics[table.metric] for r in runs if table.metric in r.metrics]
        first = runs[0]
        points.append(DiagnosticPoint(norm, labels.get(norm, first.norm_label), first.norm_num_groups, first.batch_size,
                                      axis_value, first.axis_label, values,
                                      sum(metrics) / len(metrics) if metrics else None, len(runs)))
    return sorted(points, key=lambda p: (rank.get(p.norm, len(rank)), p.norm, p.batch_size))


def _by_norm(points: list[DiagnosticPoint]) -> dict[str, list[DiagnosticPoint]]:
    out: dict[str, list[DiagnosticPoint]] = {}
    for p in points:
        out.setdefault(p.norm, []).append(p)
    return out


def _legend(fig, ax) -> None:
    ax.grid(True, linewidth=0.3, alpha=0.5)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", frameon=False, handlelength=1.8)


def draw_noise_vs_batch_size(points: list[DiagnosticPoint], title: str):
    """Noise of the mean (top) and of the std (bottom) against batch size, log-log, a line per norm."""
    with matplotlib.rc_context(_STYLE):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(FIGSIZE[0], FIGSIZE[1] * 1.6), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
        sizes = sorted({p.batch_size for p in points if p.get(NOISE_MEAN) is not None})
        for i, (norm, series) in enumerate(_by_norm(points).items()):
            series = sorted((p for p in series if p.get(NOISE_MEAN) is not None), key=lambda p: p.batch_size)
            if not series:
                continue
            x = [p.batch_size for p in series]
            style = dict(marker=_MARKERS[i % len(_MARKERS)], linestyle="--" if norm == "bn" else "-")
            top.plot(x, [p.get(NOISE_MEAN) for p in series], label=series[0].label, **style)
            bottom.plot(x, [p.get(NOISE_STD) for p in series], **style)
        for ax in (top, bottom):
            ax.set_yscale("log")
            ax.grid(True, linewidth=0.3, alpha=0.5)
        _log2_x(bottom, sizes)
        top.set_ylabel("|mean_B - mean| / std")
        bottom.set_ylabel("|std_B - std| / std")
        bottom.set_xlabel("batch size per device")
        top.set_title(title)
        if top.lines:
            fig.legend(loc="outside right upper", frameon=False, handlelength=1.8)
    return fig


def draw_confusion_vs_groups(points: list[DiagnosticPoint], title: str):
    """Confusion against G: a line per batch size for the norm with several G, markers or levels for the others."""
    with matplotlib.rc_context(_STYLE):
        fig, ax = _new_figure()
        with_confusion = [p for p in points if p.get(CONFUSION) is not None]
        by_norm = _by_norm(with_confusion)
        families: dict[str, set[int]] = {}
        for p in with_confusion:
            if p.num_groups is not None:
                families.setdefault(p.norm.split(":")[0], set()).add(p.num_groups)
        swept = {name for name, gs in families.items() if len(gs) >= 2}
        lined = [p for p in with_confusion if p.norm.split(":")[0] in swept]
        groups = sorted({p.num_groups for p in with_confusion if p.num_groups is not None})
        for i, size in enumerate(sorted({p.batch_size for p in lined})):
            series = sorted((p for p in lined if p.batch_size == size), key=lambda p: p.num_groups or 0)
            family = series[0].label.split(" (")[0]
            ax.plot([p.num_groups for p in series], [p.get(CONFUSION) for p in series], "-",
                    marker=_MARKERS[i % len(_MARKERS)], label=f"{family}, bs={size}")
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        others = [(norm, ps) for norm, ps in by_norm.items() if norm.split(":")[0] not in swept]
        for j, (norm, ps) in enumerate(others):
            colour = colours[(j + 4) % len(colours)]
            level = sum(p.get(CONFUSION) for p in ps) / len(ps)  # type: ignore[misc]
            if ps[0].num_groups is not None:
                ax.plot([ps[0].num_groups], [level], "s", color=colour, label=ps[0].label)
            else:
                ax.axhline(level, color=colour, linestyle=":", linewidth=1.0, label=ps[0].label)
        if groups:
            _log2_x(ax, groups)
        ax.set_xlabel("groups G")
        ax.set_ylabel("confusion (between-channel share)")
        ax.set_title(title)
        _legend(fig, ax)
    return fig


def draw_metric_vs_elements(points: list[DiagnosticPoint], table: Table, title: str):
    """The primary metric against elements per statistic (log x): a colour per norm, a marker per column."""
    scale = table.decl.scale
    with matplotlib.rc_context(_STYLE):
        fig, ax = _new_figure()
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        columns = sorted({(p.batch_size, p.axis_label) for p in points})
        marker = {label: _MARKERS[j % len(_MARKERS)] for j, (_, label) in enumerate(columns)}
        for i, (norm, series) in enumerate(_by_norm(points).items()):
            shown = False
            for p in series:
                if p.get(ELEMENTS) is None or p.metric is None:
                    continue
                ax.plot([p.get(ELEMENTS)], [p.metric * scale], marker[p.axis_label], color=colours[i % len(colours)],
                        label=None if shown else p.label)
                shown = True
        if len(columns) > 1:
            for _, label in columns:
                ax.plot([], [], marker[label], color="#777777", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("elements per statistic (geo. mean of layers)")
        ax.set_ylabel(_axis_label(table.decl))
        ax.set_title(title)
        _legend(fig, ax)
    return fig


def plot_diagnostics(records: Iterable[RunRecord], tables: list[Table], out_dir: Path) -> dict[str, list[Path]]:
    """The three figures per primary table whose runs carry diagnostics; keyed by table name (PNG and SVG)."""
    records = list(records)
    figures: dict[str, list[Path]] = {}
    for table in (t for t in tables if t.primary):
        points = diagnostic_points(records, table)
        if not points:
            continue
        title = f"{table.dataset} / {table.model}"
        paths: list[Path] = []
        with matplotlib.rc_context(_STYLE):
            if any(p.get(NOISE_MEAN) is not None for p in points):
                paths += _save(draw_noise_vs_batch_size(points, title), out_dir, f"{table.name}__noise_vs_batch_size")
            if any(p.get(CONFUSION) is not None and p.num_groups is not None for p in points):
                paths += _save(draw_confusion_vs_groups(points, title), out_dir, f"{table.name}__confusion_vs_groups")
            if any(p.get(ELEMENTS) is not None and p.metric is not None for p in points):
                paths += _save(draw_metric_vs_elements(points, table, title), out_dir,
                               f"{table.name}__metric_vs_elements")
        figures[table.name] = paths
    return figures
