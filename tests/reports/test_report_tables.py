"""Paper tables: golden Markdown and LaTeX, CSV, ordering, formatting and escaping."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from report_records import ACC, declare, golden

from reports.collect import collect_runs
from reports.render import CSV_COLUMNS, latex_escape, render_csv, render_latex, render_markdown
from reports.tables import Table, tables_from_records


def _tables(root: Path) -> list[Table]:
    return tables_from_records(collect_runs(root).records)


def test_golden_markdown(golden_runs: Path) -> None:
    (table,) = _tables(golden_runs)
    assert table.primary and [c.label for c in table.columns] == ["bs=2", "bs=16"] and table.modal_n == 3
    assert table.name == "classification__fashion_mnist__resnet20__test-acc" and table.parts == ()
    text = render_markdown(table)
    assert text == golden("classification.md", text)


def test_golden_latex(golden_runs: Path) -> None:
    (table,) = _tables(golden_runs)
    text = render_latex(table)
    assert text == golden("classification.tex", text)


def test_output_is_deterministic(golden_runs: Path) -> None:
    first, second = _tables(golden_runs), _tables(golden_runs)
    assert render_csv(first) == render_csv(second)
    assert [render_latex(t) for t in first] == [render_latex(t) for t in second]


def test_csv_long_format(golden_runs: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(_tables(golden_runs)))))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert len(rows) == 11  # one row per existing cell; the missing (IN, 16) has none
    by_cell = {(r["norm"], int(r["batch_size"])): r for r in rows}
    best = by_cell[("bgn:num_groups=1", 2)]
    assert best["norm_label"] == "BGN (G=1)" and best["norm_num_groups"] == "1"
    assert (best["n"], best["n_failed"], best["n_diverged"]) == ("3", "0", "0")
    assert float(best["mean"]) == pytest.approx(0.80) and float(best["std"]) == pytest.approx(0.01)
    # two-sided paired t p = 0.013, Holm over the table's 5 comparisons: 0.065, no star
    assert float(best["p_vs_bn"]) == pytest.approx(0.0130724575, rel=1e-6) and best["best"] == "true"
    assert float(best["p_holm"]) == pytest.approx(5 * float(best["p_vs_bn"])) and best["beats_bn"] == "false"
    assert (best["family"], best["family_size"], best["correction"], best["paired"]) == ("table", "5", "Holm", "yes")
    assert float(best["diff"]) == pytest.approx(0.10) and float(best["ci_low"]) < 0.10 < float(best["ci_high"])
    failed = by_cell[("ln", 2)]
    assert (failed["n"], failed["n_failed"], failed["mean"], failed["std"], failed["p_vs_bn"]) == (
        "0", "3", "", "", "")
    partial = by_cell[("gn:num_groups=32", 16)]
    assert (partial["n"], partial["n_failed"], partial["p_vs_bn"]) == ("2", "1", "")
    assert by_cell[("bn", 2)]["norm_num_groups"] == "" and by_cell[("bn", 2)]["p_vs_bn"] == ""
    assert {k for k, r in by_cell.items() if r["best"] == "true"} == {
        ("bgn:num_groups=1", 2), ("bgn:num_groups=1", 16), ("bgn:num_groups=4", 16)}


def test_row_order_registry_then_groups(tmp_path: Path, write_record) -> None:
    for norm in ["bgn:num_groups=16", "pn", "bgn:num_groups=4", "bn", "gn:num_groups=32", "in"]:
        write_record(norm, 2, 0, acc=0.5)
    write_record("bn", 2, 0, acc=0.5, norm="zz", norm_name="zz", norm_label="Custom")
    write_record("bn", 2, 0, acc=0.5, norm="aa", norm_name="aa", norm_label="Another")
    (table,) = _tables(tmp_path / "runs")
    assert [r.label for r in table.rows] == [
        "BN", "IN", "GN (G=32)", "PN", "BGN (G=4)", "BGN (G=16)", "Another", "Custom"]


def test_other_metrics_and_min_mode(tmp_path: Path, write_record) -> None:
    declared = {"metric_declarations": [
        ACC, declare("test/loss", "test loss", direction="min", unit=""), declare("test/robust_acc", "robust accuracy")]}
    for seed, (loss_bn, loss_gn) in enumerate([(0.6234, 0.41), (0.6301, 0.42), (0.6190, 0.40)]):
        write_record("bn", 8, seed, acc=0.9, **declared, **{"test/loss": loss_bn, "test/robust_acc": 0.3})
        write_record("gn:num_groups=32", 8, seed, acc=0.8, **declared, **{"test/loss": loss_gn})
    tables = _tables(tmp_path / "runs")
    assert [(t.metric, t.primary, t.mode) for t in tables] == [
        ("test/acc", True, "max"), ("test/loss", False, "min"), ("test/robust_acc", False, "max")]
    loss = render_markdown(tables[1])
    assert "| BN | 0.6242 ± 0.0056 |" in loss  # four significant digits, std with the same decimals
    assert "| GN (G=32) | **0.4100 ± 0.0100**<sup>*</sup> |" in loss  # lower is better
    assert "test loss by normalization" in loss and "(lower is better)" in loss
    robust = render_markdown(tables[2])
    assert "| BN | 30.00 ± 0.00 |" in robust  # three equal seeds: std 0.00 is shown; the only row: no bold
    assert "GN" not in robust  # GN never reported the metric: no row


def test_units_scale_cells_and_name_the_caption_unit(tmp_path: Path, write_record) -> None:
    declared = {"metric_declarations": [
        ACC, declare("test/acc_pct", "accuracy in percent", unit="percent"),
        declare("test/time", "test time", direction="min", unit="seconds"),
        declare("test/acc_count", "correct images", unit="count")]}
    write_record("bn", 8, 0, acc=0.9, **declared, **{"test/acc_pct": 91.25, "test/time": 12.3456,
                                                     "test/acc_count": 9123})
    acc, pct, time, count = (render_markdown(t) for t in _tables(tmp_path / "runs"))
    assert "test accuracy (%)" in acc and "| BN | 90.00 |" in acc  # fraction: shown x100; one row: no bold
    assert "accuracy in percent (%)" in pct and "| BN | 91.25 |" in pct  # percent: as stored
    assert "test time (s)" in time and "| BN | 12.35 |" in time and "No bold: test time is a cost" in time
    assert "correct images by" in count and "| BN | 9123 |" in count  # a count, though named acc


def test_single_seed_has_no_plus_minus(tmp_path: Path, write_record) -> None:
    write_record("bn", 4, 0, acc=0.9123)
    (table,) = _tables(tmp_path / "runs")
    assert "| BN | 91.23 |" in render_markdown(table)  # and no bold: nothing to compare with


def test_latex_escaping_and_no_bn_caption(tmp_path: Path, write_record) -> None:
    write_record("bn", 2, 0, acc=0.5, norm="x", norm_name="x", norm_label="My_Norm & 50% #1",
                 dataset="tiny_set")
    (table,) = _tables(tmp_path / "runs")
    tex = render_latex(table)
    assert r"My\_Norm \& 50\% \#1 & 50.00 \\" in tex
    assert r"tiny\_set" in tex and "No reference (BN) row, so no significance test." in tex
    assert latex_escape(r"a\b{c}~^$") == r"a\textbackslash{}b\{c\}\textasciitilde{}\textasciicircum{}\$"


def test_same_label_for_two_specs_is_disambiguated(tmp_path: Path, write_record) -> None:
    write_record("bn", 2, 0, acc=0.5)
    write_record("bn", 2, 0, acc=0.6, norm="bn:momentum=0.01")
    (table,) = _tables(tmp_path / "runs")
    assert [r.label for r in table.rows] == ["BN [bn]", "BN [bn:momentum=0.01]"]


def test_long_table_names_stay_short_unique_and_end_with_the_metric() -> None:
    from reports.tables import MAX_NAME, slug

    protocol = ["attack_mode=eval", "epsilon=0.1", "robust_attack=apgd-ce(5 it)+apgd-t(5 it, 2 targets)",
                "robust_samples=1000", "train_attack=pgd-7 step 0.025"]
    names = {slug("adversarial", "fashion_mnist", "resnet20", "method=pgd_at", *protocol, metric)
             for metric in ("test/robust_acc", "test/acc")}
    assert len(names) == 2 and all(len(n) <= MAX_NAME for n in names)
    assert sorted(n.rsplit("__", 1)[1] for n in names) == ["test-acc", "test-robust_acc"]
    assert slug("classification", "fashion_mnist", "resnet8", "test/acc") == "classification__fashion_mnist__resnet8__test-acc"
