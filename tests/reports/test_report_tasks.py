"""Tables of the other tasks: declared axes, coordinates, intervals, averages, and never averaging unlike runs.

Goldens for the few-shot and domain-adaptation tables live in golden/ (long
caption lines); the numbers in them are worked out in the comments below.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from report_records import (
    FEWSHOT_AXIS,
    PAIRS,
    adversarial_fields,
    declare,
    fewshot_fields,
    golden,
    uda_fields,
)

from reports.cli import main
from reports.collect import collect_runs
from reports.plots import draw_vs_axis, plot_tables
from reports.render import render_csv, render_latex, render_markdown
from reports.tables import Table, tables_from_records

GOLDEN = Path(__file__).parent / "golden"
T_975_2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom


def _tables(root: Path) -> list[Table]:
    return tables_from_records(collect_runs(root).records)


def _one(tables: list[Table], name: str) -> Table:
    (table,) = [t for t in tables if t.name == name]
    return table


# --- adversarial: a coordinate (method) splits tables; a `min` metric named like an accuracy ---

@pytest.fixture
def adversarial_runs(tmp_path: Path, write_record) -> Path:
    for seed in range(3):
        for method, base in (("pgd_at", 0.40), ("trades", 0.50)):
            fields = adversarial_fields(method)
            write_record("bn", 8, seed, acc=0.85, **fields,
                         **{"test/autoattack_acc": base + 0.01 * seed, "test/acc_drop": 45.0 - seed})
            shifted = (seed + 1) % 3  # the seeds' order differs from BN's, so paired differences vary
            write_record("bgn:num_groups=1", 8, seed, acc=0.86, **fields,
                         **{"test/autoattack_acc": base + 0.05 + 0.005 * shifted, "test/acc_drop": 40.0 - 0.5 * shifted})
    return tmp_path / "runs"


def test_methods_are_separate_tables_never_averaged(adversarial_runs: Path) -> None:
    tables = _tables(adversarial_runs)
    prefix = "adversarial__fashion_mnist__resnet20__method="
    assert [t.name for t in tables] == [
        f"{prefix}pgd_at__attack_mode=eval__test-autoattack_acc", f"{prefix}pgd_at__attack_mode=eval__test-acc",
        f"{prefix}pgd_at__attack_mode=eval__test-acc_drop", f"{prefix}trades__attack_mode=eval__test-autoattack_acc",
        f"{prefix}trades__attack_mode=eval__test-acc", f"{prefix}trades__attack_mode=eval__test-acc_drop",
    ]
    pgd, trades = tables[0], tables[3]
    assert pgd.primary and trades.primary and not tables[1].primary
    assert pgd.rows[0].cells[8].values == pytest.approx((0.40, 0.41, 0.42))  # PGD-AT seeds only
    assert trades.rows[0].cells[8].values == pytest.approx((0.50, 0.51, 0.52))  # TRADES seeds only
    md = render_markdown(trades)
    assert md.startswith("adversarial / fashion_mnist / resnet20 (method=trades, attack_mode=eval): "
                         "AutoAttack accuracy (%) by normalization and batch size per device. Mean ± sample std over "
                         "seeds (n=3 seeds unless marked).")
    # paired differences 5.5, 5, 3 points: two-sided paired t p = 0.028, alone in its Holm family
    assert "| BN | 51.00 ± 1.00 |" in md and "| BGN (G=1) | **55.50 ± 0.50**<sup>*</sup> |" in md


def test_direction_and_unit_come_from_the_declaration(adversarial_runs: Path) -> None:
    drop = _one(_tables(adversarial_runs), "adversarial__fashion_mnist__resnet20__method=pgd_at__attack_mode=eval__test-acc_drop")
    assert (drop.mode, drop.unit) == ("min", "%")  # named like an accuracy, declared min and in percent
    md = render_markdown(drop)
    # percent: shown as stored (not x100); lower is better, and BGN's lower drop beats BN's
    assert "| BN | 44.00 ± 1.00 |" in md and "| BGN (G=1) | **39.50 ± 0.50**<sup>*</sup> |" in md
    assert "clean minus AutoAttack accuracy (%) by normalization" in md and "(lower is better)" in md


# --- few-shot: the ways/shots axis and an interval metric, one seed and three seeds ---

# 5-way 1-shot, three seeds: mean ± t_{0.975,2} * s / sqrt(3); s = 0.01 for BN, GN and BGN, so
# 4.302653 * 0.01 / 1.732051 = 0.024841 -> "± 2.48". LN: s = 0.01 as well (0.50, 0.52, 0.51).
# 5-way 5-shot, one seed: value ± the run's own CI over test episodes; LN failed there.
FEWSHOT = {
    ("bn", 1): [(0.600, 0.010), (0.620, 0.011), (0.610, 0.009)],
    ("ln", 1): [(0.500, 0.012), (0.520, 0.011), (0.510, 0.012)],
    ("gn:num_groups=32", 1): [(0.580, 0.012), (0.590, 0.010), (0.570, 0.011)],
    ("bgn:num_groups=1", 1): [(0.680, 0.010), (0.690, 0.009), (0.700, 0.010)],
    ("bn", 5): [(0.750, 0.008)],
    ("ln", 5): ["failed"],
    ("gn:num_groups=32", 5): [(0.740, 0.009)],
    ("bgn:num_groups=1", 5): [(0.790, 0.007)],
}


@pytest.fixture
def fewshot_runs(tmp_path: Path, write_record) -> Path:
    for (norm, shots), outcomes in FEWSHOT.items():
        for seed, outcome in enumerate(outcomes):
            if outcome == "failed":
                write_record(norm, 4, seed, acc=None, status="failed", **fewshot_fields(5, shots, ci95=None))
            else:
                acc, ci = outcome
                write_record(norm, 4, seed, acc=acc, **fewshot_fields(5, shots, ci95=ci))
    # A second method with one seed per cell: its own table, episode intervals only.
    for norm, acc in (("bn", 0.55), ("bgn:num_groups=1", 0.60)):
        write_record(norm, 4, 0, acc=acc, **fewshot_fields(5, 1, ci95=0.015, method="maml"))
    return tmp_path / "runs"


PROTONET = "fewshot__fashion_mnist_rot__conv4__method=protonet__bs=4__norm_mode=transductive__test-acc"
MAML = "fewshot__fashion_mnist_rot__conv4__method=maml__bs=4__norm_mode=transductive__test-acc"


def test_fewshot_golden_markdown(fewshot_runs: Path) -> None:
    tables = _tables(fewshot_runs)
    assert [t.name for t in tables] == [MAML, PROTONET]  # methods never share a table
    table = _one(tables, PROTONET)
    assert [c.label for c in table.columns] == ["5-way 1-shot", "5-way 5-shot"]
    bn = table.rows[0].cells["5w1s"]
    assert bn.half_width == pytest.approx(T_975_2 * 0.01 / 3 ** 0.5)
    text = render_markdown(table)
    assert text == golden("fewshot.md", text)


def test_fewshot_golden_latex(fewshot_runs: Path) -> None:
    text = render_latex(_one(_tables(fewshot_runs), PROTONET))
    assert text == golden("fewshot.tex", text)


def test_fewshot_one_seed_shows_the_episode_interval(fewshot_runs: Path) -> None:
    md = render_markdown(_one(_tables(fewshot_runs), MAML))
    assert "(%) by normalization and ways/shots. Mean ± 95% CI over test episodes (n=1 seed unless marked)." in md
    assert "| BN | 55.00 ± 1.50 |" in md and "| BGN (G=1) | **60.00 ± 1.50** |" in md


def test_fewshot_csv_columns(fewshot_runs: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv([_one(_tables(fewshot_runs), PROTONET)]))))
    by_cell = {(r["norm"], r["axis_value"]): r for r in rows}
    bn = by_cell[("bn", "5w1s")]
    assert (bn["coordinates"], bn["axis"], bn["axis_label"], bn["context"]) == (
        "method=protonet;shots=1;ways=5", "ways_shots", "5-way 1-shot", "method=protonet;bs=4;norm_mode=transductive")
    assert (bn["unit"], bn["direction"], bn["interval"], bn["batch_size"]) == ("fraction", "max", "test/acc_ci95", "4")
    assert float(bn["mean"]) == pytest.approx(0.61) and float(bn["std"]) == pytest.approx(0.01)
    assert float(bn["interval_half_width"]) == pytest.approx(T_975_2 * 0.01 / 3 ** 0.5)
    one = by_cell[("bn", "5w5s")]
    assert (one["n"], one["std"], float(one["interval_half_width"])) == ("1", "", 0.008)
    failed = by_cell[("ln", "5w5s")]
    assert (failed["n"], failed["n_failed"], failed["interval_half_width"]) == ("0", "1", "")


def test_categorical_axis_plot(fewshot_runs: Path, tmp_path: Path) -> None:
    table = _one(_tables(fewshot_runs), PROTONET)
    ax = draw_vs_axis(table).axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim() == (-0.5, 1.5)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5-way 1-shot", "5-way 5-shot"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("ways/shots", "mean episode accuracy (%)")
    # one marker series per norm, dodged around each column (4 rows: offsets -0.12, -0.04, 0.04, 0.12)
    series = [bars.lines[0] for bars in ax.containers]  # the data line of each norm's error bars
    assert [bars.get_label() for bars in ax.containers] == ["BN", "LN", "GN (G=32)", "BGN (G=1)"]
    assert all(line.get_linestyle() == "None" for line in series)  # no line between categories
    assert list(series[0].get_xdata()) == pytest.approx([-0.12, 0.88])
    assert list(series[0].get_ydata()) == pytest.approx([61.0, 75.0])
    assert list(series[1].get_xdata()) == pytest.approx([-0.04])  # LN failed at 5-shot: no point
    bars = ax.containers[0].lines[2][0].get_segments()  # BN's error bars: mean ± the 95% half-widths
    assert [tuple(seg[:, 1]) for seg in bars] == [pytest.approx((61 - 2.4841, 61 + 2.4841), abs=1e-3),
                                                  pytest.approx((74.2, 75.8))]
    paths = plot_tables([table], tmp_path / "plots")[table.name]
    assert [p.name for p in paths] == [f"{PROTONET}__vs_ways_shots.png", f"{PROTONET}__vs_ways_shots.svg"]


# --- domain adaptation: the pair axis with an average column; a row missing a pair has none ---

# BN (0.40, 0.42), (0.80, 0.82) -> 41.00, 81.00, average 61.00; IN -> 46.00, 72.00, 59.00;
# LN ran only the first pair -> no average; BGN -> 56.00, 84.00, 70.00 (bold everywhere).
UDA = {
    ("bn", 0): [0.40, 0.42], ("bn", 1): [0.80, 0.82],
    ("in", 0): [0.45, 0.47], ("in", 1): [0.70, 0.74],
    ("ln", 0): [0.30, 0.34],
    ("bgn:num_groups=1", 0): [0.55, 0.57], ("bgn:num_groups=1", 1): [0.83, 0.85],
}
UDA_NAME = "uda__fashion_mnist__lenet__method=dann__bs=32__domain_batches=joint__test-target_acc"


@pytest.fixture
def uda_runs(tmp_path: Path, write_record) -> Path:
    pairs = list(PAIRS)
    for (norm, pair), accs in UDA.items():
        for seed, acc in enumerate(accs):
            write_record(norm, 32, seed, acc=None, **uda_fields(*pairs[pair]), **{"test/target_acc": acc})
    return tmp_path / "runs"


def test_uda_golden_markdown(uda_runs: Path) -> None:
    (table,) = _tables(uda_runs)
    assert table.name == UDA_NAME
    assert [c.label for c in table.columns] == ["F-MNIST→F-MNIST-M", "F-MNIST-M→F-MNIST", "Avg."]
    averages = {row.label: row.average for row in table.rows}
    assert averages == pytest.approx({"BN": 0.61, "IN": 0.59, "LN": None, "BGN (G=1)": 0.70})
    text = render_markdown(table)
    assert text == golden("uda.md", text)


def test_uda_golden_latex(uda_runs: Path) -> None:
    (table,) = _tables(uda_runs)
    text = render_latex(table)
    assert text == golden("uda.tex", text)


# --- run settings: world sizes and precisions split tables, and only then are named ---

def test_mixed_world_sizes_and_precisions_are_separate_tables(tmp_path: Path, write_record) -> None:
    settings = {(1, "32-true"): 0.90, (2, "32-true"): 0.80, (1, "bf16-mixed"): 0.70}
    for (world, precision), acc in settings.items():
        for seed in range(2):
            write_record("bn", 8, seed, acc=acc + 0.01 * seed, world_size=world, precision=precision)
    tables = _tables(tmp_path / "runs")
    stem = "classification__fashion_mnist__resnet20"
    assert [t.name for t in tables] == [
        f"{stem}__world_size=1__precision=32-true__test-acc",
        f"{stem}__world_size=1__precision=bf16-mixed__test-acc",
        f"{stem}__world_size=2__precision=32-true__test-acc",
    ]
    assert [t.rows[0].cells[8].mean for t in tables] == pytest.approx([0.905, 0.705, 0.805])  # two seeds each
    assert [t.rows[0].cells[8].n for t in tables] == [2, 2, 2]
    assert render_markdown(tables[2]).startswith(
        "classification / fashion_mnist / resnet20 (world_size=2, precision=32-true): test accuracy (%)")


def test_compiled_and_eager_runs_are_separate_tables(tmp_path: Path, write_record) -> None:
    for seed in range(2):
        write_record("bn", 8, seed, acc=0.90, sweep="eager")  # a record from before trainer.compile: eager
        write_record("bn", 8, seed, acc=0.80, sweep="compiled", compile=True)
    tables = _tables(tmp_path / "runs")
    stem = "classification__fashion_mnist__resnet20"
    assert [t.name for t in tables] == [f"{stem}__compile=false__test-acc", f"{stem}__compile=true__test-acc"]
    assert [t.rows[0].cells[8].values for t in tables] == [(0.90, 0.90), (0.80, 0.80)]


def test_schema1_next_to_schema2(tmp_path: Path, write_record) -> None:
    # Schema 1 tested the final weights ("last"); these schema-2 runs report the best-val checkpoint.
    for seed in range(2):
        write_record("bn", 8, seed, acc=0.80 + 0.01 * seed, schema=1, sweep="old")
        write_record("bn", 8, seed, acc=0.90 + 0.01 * seed)
        write_record("bn", 16, seed, acc=0.70, selection={"rule": "last", "monitor": None, "mode": None})
    tables = _tables(tmp_path / "runs")
    stem = "classification__fashion_mnist__resnet20"
    assert [t.name for t in tables] == [f"{stem}__selection=best-val-acc__test-acc", f"{stem}__selection=last__test-acc"]
    best, last = tables
    assert best.rows[0].cells[8].values == pytest.approx((0.90, 0.91))
    # the schema-1 runs share a table with schema-2 runs that also report the last checkpoint
    assert [c.label for c in last.columns] == ["bs=8", "bs=16"]
    assert last.rows[0].cells[8].values == pytest.approx((0.80, 0.81))
    assert last.rows[0].cells[16].values == (0.70, 0.70)
    assert "(selection=last): test accuracy (%)" in render_markdown(last)


# --- the index page and the W&B report show the context ---

def test_index_headings_show_the_context(adversarial_runs: Path, fewshot_runs: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(adversarial_runs)]) == 0  # both fixtures write into the same runs folder
    index = (adversarial_runs / "report" / "index.md").read_text()
    assert "## adversarial / fashion_mnist / resnet20 (method=pgd_at, attack_mode=eval)" in index
    assert "## adversarial / fashion_mnist / resnet20 (method=trades, attack_mode=eval)" in index
    assert ("## fewshot / fashion_mnist_rot / conv4 (method=protonet, bs=4, norm_mode=transductive)" in index)
    assert f"![test/acc: metric vs ways/shots](plots/{PROTONET}__vs_ways_shots.png)" in index
    assert "| BGN (G=1) | **69.00 ± 2.48**<sup>*</sup> | **79.00 ± 0.70** (n=1) |" in capsys.readouterr().out


def test_wandb_report_uses_declarations_and_coordinates(fewshot_runs: Path, tmp_path: Path, write_record) -> None:
    from reports.wandb_report import build_wandb_report

    for seed in range(2):
        write_record("bn", 2, seed, acc=0.5, schema=1)  # schema 1: no declared selection monitor
    records = collect_runs(fewshot_runs).records
    report = build_wandb_report(records, "team", "proj", tables=tables_from_records(records))
    grids = {b.runsets[0].name: b for b in report.blocks if type(b).__name__ == "PanelGrid"}
    fewshot = grids["fewshot runs"]
    assert fewshot.runsets[0].pinned_columns == [
        "config:method.value", "config:shots.value", "config:ways.value", "config:norm_label.value",
        "config:batch_size.value"]
    (line,) = fewshot.panels
    assert line.y == ["val/acc"]  # the declared selection monitor
    (bar,) = grids["fewshot runs, 5-way 1-shot"].panels
    assert bar.metrics == ["test/acc"] and "(mean episode accuracy, higher is better;" in bar.title
    assert grids["classification runs"].panels == []  # schema 1 declared no monitor to plot
    intro = [b.text for b in report.blocks if type(b).__name__ == "MarkdownBlock" and "task `fewshot`" in b.text]
    assert "ways/shots 5-way 1-shot, 5-way 5-shot" in intro[0]


def test_declared_min_metric_in_wandb_title(tmp_path: Path, write_record) -> None:
    from reports.wandb_report import build_wandb_report

    err = declare("test/err", "test error", direction="min", primary=True)
    write_record("bn", 2, 0, acc=None, metric_declarations=[err], **{"test/err": 0.1})
    report = build_wandb_report(collect_runs(tmp_path / "runs").records, "team", "proj")
    _, grid = [b for b in report.blocks if type(b).__name__ == "PanelGrid"]
    assert "(test error, lower is better;" in grid.panels[0].title


def test_a_batch_size_that_follows_the_axis_keeps_one_table(tmp_path: Path, write_record) -> None:
    # few-shot's normalization batch is ways x (shots + queries): 80 images at 1 shot, 100 at 5 shots
    axis = {**FEWSHOT_AXIS, "batch_size_follows": True}
    for shots, batch in ((1, 80), (5, 100)):
        for norm in ("bn", "bgn:num_groups=1"):
            write_record(norm, batch, 0, acc=0.6 + shots / 100, **{**fewshot_fields(5, shots, ci95=0.01),
                                                                   "table_axis": axis})
    tables = _tables(tmp_path / "runs")
    assert len(tables) == 1 and "bs=" not in tables[0].name
    assert [c.label for c in tables[0].columns] == ["5-way 1-shot", "5-way 5-shot"]
    rows = list(csv.DictReader(io.StringIO(render_csv(tables))))  # each cell keeps its own batch size
    assert sorted((r["axis_value"], r["batch_size"]) for r in rows if r["norm"] == "bn") == [("5w1s", "80"), ("5w5s", "100")]
    # without the flag, the batch size is part of the context: one table per batch size
    for shots, batch in ((1, 80), (5, 100)):
        write_record("bn", batch, 0, acc=0.6, root=tmp_path / "other", **fewshot_fields(5, shots, ci95=0.01))
    assert len(_tables(tmp_path / "other")) == 2
