"""The norm-diagnostics figures (reports/diagnostics_plots.py) on hand-made records with diagnostics/ fields."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pytest

from reports.cli import main as report_main
from reports.collect import collect_runs
from reports.diagnostics_plots import (
    diagnostic_points,
    draw_confusion_vs_groups,
    draw_metric_vs_elements,
    draw_noise_vs_batch_size,
    plot_diagnostics,
)
from reports.tables import tables_from_records

NORMS = ["bn", "ln", "gn:num_groups=32", "pn", "bgn:num_groups=1", "bgn:num_groups=4", "bgn:num_groups=16"]
BATCH = {"bn": True, "bgn:num_groups=1": True, "bgn:num_groups=4": True, "bgn:num_groups=16": True}
GROUPS = {"bgn:num_groups=1": 1, "bgn:num_groups=4": 4, "bgn:num_groups=16": 16, "gn:num_groups=32": 32}


def diagnostics(norm: str, batch_size: int, seed: int) -> dict[str, float]:
    """Plausible fields: noise falls with the batch and with pooling, confusion with G (0 for per-channel BN)."""
    groups = GROUPS.get(norm, 64 if norm == "bn" else 1)
    elements = batch_size * 784 * 16 / groups if norm in BATCH else (16 if norm == "pn" else 784 * 16 / groups)
    fields = {"diagnostics/elements_per_stat": elements,
              "diagnostics/confusion": 0.0 if norm == "bn" else 0.5 / groups + 0.01 * seed}
    if norm in BATCH:
        fields["diagnostics/noise_mean"] = elements ** -0.5 * (1 + 0.1 * seed)
        fields["diagnostics/noise_std"] = 2 * elements ** -0.5
    return fields


@pytest.fixture
def runs(tmp_path: Path, write_record) -> Path:
    for norm in NORMS:
        for batch_size in (2, 16):
            for seed in (0, 1):
                write_record(norm, batch_size, seed, acc=0.7 + 0.01 * seed + (0.05 if norm != "bn" else 0),
                             **diagnostics(norm, batch_size, seed))
    return tmp_path / "runs"


def test_points_average_seeds_in_table_order(runs: Path) -> None:
    records = collect_runs(runs).records
    (table,) = tables_from_records(records)
    points = diagnostic_points(records, table)
    assert len(points) == len(NORMS) * 2
    bgn4 = next(p for p in points if p.norm == "bgn:num_groups=4" and p.batch_size == 16)
    assert bgn4.seeds == 2 and bgn4.num_groups == 4
    assert bgn4.get("diagnostics/noise_mean") == pytest.approx((16 * 784 * 4) ** -0.5 * 1.05)
    assert bgn4.metric == pytest.approx(0.755)
    assert next(p for p in points if p.norm == "ln").get("diagnostics/noise_mean") is None
    assert [p.norm for p in points][::2] == [row.norm for row in table.rows]


def test_noise_figure_has_a_line_per_norm_with_batch_statistics(runs: Path) -> None:
    records = collect_runs(runs).records
    (table,) = tables_from_records(records)
    fig = draw_noise_vs_batch_size(diagnostic_points(records, table), "t")
    top, bottom = fig.axes[:2]
    assert [line.get_label() for line in top.lines] == ["BN", "BGN (G=1)", "BGN (G=4)", "BGN (G=16)"]
    assert list(top.lines[0].get_xdata()) == [2, 16] and len(bottom.lines) == 4
    assert top.get_yscale() == "log"


def test_confusion_figure_lines_bgn_per_batch_size_and_marks_the_others(runs: Path) -> None:
    records = collect_runs(runs).records
    (table,) = tables_from_records(records)
    ax = draw_confusion_vs_groups(diagnostic_points(records, table), "t").axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels[:2] == ["BGN, bs=2", "BGN, bs=16"]
    assert list(ax.lines[0].get_xdata()) == [1, 4, 16]
    assert list(ax.lines[0].get_ydata()) == pytest.approx([0.505, 0.13, 0.5 / 16 + 0.005])
    assert {"BN", "LN", "PN", "GN (G=32)"} <= set(labels)
    gn = ax.lines[labels.index("GN (G=32)")]
    assert list(gn.get_xdata()) == [32]


def test_metric_figure_puts_every_run_point_at_its_elements(runs: Path) -> None:
    records = collect_runs(runs).records
    (table,) = tables_from_records(records)
    ax = draw_metric_vs_elements(diagnostic_points(records, table), table, "t").axes[0]
    points = [line for line in ax.lines if len(line.get_xdata())]
    assert len(points) == len(NORMS) * 2
    assert ax.get_xscale() == "log"
    assert all(70 <= float(line.get_ydata()[0]) <= 80 for line in points)  # percent


def test_report_writes_and_links_the_figures_only_for_runs_with_diagnostics(runs: Path, tmp_path: Path,
                                                                         write_record) -> None:
    assert report_main([str(runs), "--out", str(tmp_path / "report")]) == 0
    plots = tmp_path / "report" / "plots"
    stems = ["noise_vs_batch_size", "confusion_vs_groups", "metric_vs_elements"]
    for stem in stems:
        png = next(plots.glob(f"*__{stem}.png"))
        assert mpimg.imread(png).std() > 0.01
        assert png.with_suffix(".svg").is_file()
    index = (tmp_path / "report" / "index.md").read_text()
    assert "noise of batch statistics vs batch size (diagnostics)" in index
    assert "confusion of pooled statistics vs G (diagnostics)" in index
    assert "metric vs elements per statistic (diagnostics)" in index
    plain = tmp_path / "plain"
    for norm in ("bn", "bgn:num_groups=1"):
        write_record(norm, 2, 0, root=plain)
    records = collect_runs(plain).records
    assert plot_diagnostics(records, tables_from_records(records), tmp_path / "none") == {}
