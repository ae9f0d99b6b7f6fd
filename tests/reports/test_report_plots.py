"""Figures: PNG and SVG files that are valid, readable and deterministically named."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image as mpimg

from reports.collect import collect_runs
from reports.plots import DPI, FIGSIZE, plot_bgn_vs_groups, plot_tables, plot_vs_axis
from reports.tables import tables_from_records

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = mpimg.imread(path)
    height, width = image.shape[:2]
    # the figure is saved at its set size: 3.4 x 2.5 inches at DPI
    assert width == round(FIGSIZE[0] * DPI) and height == round(FIGSIZE[1] * DPI)
    assert image.std() > 0.01  # something was drawn


def _check_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == f"{FIGSIZE[0] * 72:g}pt"


def test_figures_for_golden_grid(golden_runs: Path, tmp_path: Path) -> None:
    (table,) = tables_from_records(collect_runs(golden_runs).records)
    out = tmp_path / "plots"
    figures = plot_tables([table], out)
    stem = "classification__fashion_mnist__resnet20__test-acc"
    assert [p.name for p in figures[table.name]] == [
        f"{stem}__vs_batch_size.png", f"{stem}__vs_batch_size.svg",
        f"{stem}__bgn_vs_groups.png", f"{stem}__bgn_vs_groups.svg",
    ]
    for path in figures[table.name]:
        assert path.parent == out
        (_check_png if path.suffix == ".png" else _check_svg)(path)


def test_svg_is_reproducible(golden_runs: Path, tmp_path: Path) -> None:
    (table,) = tables_from_records(collect_runs(golden_runs).records)
    first = plot_vs_axis(table, tmp_path / "a")
    second = plot_vs_axis(table, tmp_path / "b")
    assert first[1].read_bytes() == second[1].read_bytes()


def test_group_plot_needs_two_bgn_group_counts(tmp_path: Path, write_record) -> None:
    for seed in range(2):
        write_record("bn", 2, seed, acc=0.7)
        write_record("bgn:num_groups=1", 2, seed, acc=0.8)
    (table,) = tables_from_records(collect_runs(tmp_path / "runs").records)
    assert plot_bgn_vs_groups(table, tmp_path / "plots") == []
    paths = plot_vs_axis(table, tmp_path / "plots")  # a single batch size still plots
    _check_png(paths[0])
