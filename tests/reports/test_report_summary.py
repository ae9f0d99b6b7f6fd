"""The cross-task summary table: golden outputs on hand-made records of all five tasks, and every rule.

The five-task grid is in five_tasks.py. Worked out by hand (rank 1 = best; ties share the mean rank):

| column                         | BN          | IN          | LN               | GN          | BGN         |
|--------------------------------|-------------|-------------|------------------|-------------|-------------|
| classification bs=2            | 61.00 (5)   | 70.00 (3)   | 65.50, n=2 (4)   | 72.00 (2)   | 75.33 (1)   |
| classification bs=128          | 92.50 (1)   | 88.00 (5)   | 90.50 (4)        | 91.00 (3)   | 92.00 (2)   |
| NAS DARTS_V2 bs=32, n=1        | 88.00 (3)   | n/a         | 86.00 (4)        | 89.00 (1)   | 88.50 (2)   |
| adversarial PGD-AT bs=32       | 70.50 (2)   | n/a         | diverged (4)     | 69.50 (3)   | 72.67 (1)   |
| few-shot 5-way 1-shot, n=5     | 60.50 (2)   | n/a         | 55.00 (4)        | 59.00 (3)   | 63.80 (1)   |
| DANN, mean of the two pairs    | 61.00 (3)   | n/a         | missing          | 62.00 (2)   | 67.17 (1)   |

Classification counts once: BN (5+1)/2 = 3, IN 4, LN 4, GN 2.5, BGN 1.5. Average ranks:
BN (3+3+2+2+3)/5 = 2.6; IN 4 over 1 task; LN (4+4+4+4)/4 = 4 over 4 tasks (its DANN cell is missing);
GN (2.5+1+3+3+2)/5 = 2.3; BGN (1.5+2+1+1+1)/5 = 1.3. DANN per seed: BGN (0.50+0.83)/2, (0.49+0.85)/2,
(0.52+0.84)/2 = 0.665, 0.67, 0.68 -> 67.17 ± 0.76.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from five_tasks import write_five_task_runs
from report_records import declare, golden, make_record

from reports.cli import main
from reports.collect import collect_runs
from reports.compare import BOOTSTRAP, PAIRED_T
from reports.summary import build_summary
from reports.summary_render import render_summary_csv, render_summary_latex, render_summary_markdown

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_five_task_runs(tmp_path_factory.mktemp("five") / "runs")


@pytest.fixture(scope="module")
def summary(five: Path):
    collection = collect_runs(five)
    assert collection.problems == [] and collection.warnings == []
    return build_summary(collection.records)


def _row(summary, label: str):
    (row,) = [r for r in summary.rows if r.label == label]
    return row


def test_golden_markdown(summary) -> None:
    text = render_summary_markdown(summary)
    assert text == golden("five_tasks_summary.md", text)


def test_golden_latex(summary) -> None:
    text = render_summary_latex(summary)
    assert text == golden("five_tasks_summary.tex", text)


def test_golden_csv(summary) -> None:
    text = render_summary_csv(summary)
    assert text == golden("five_tasks_summary.csv", text)


def test_columns_as_declared(summary) -> None:
    assert [c.label for c in summary.columns] == [
        "classification, smallest batch", "classification, largest batch", "NAS, DARTS_V2 retrained",
        "adversarial, PGD-AT", "few-shot, ProtoNet", "domain adaptation, DANN"]
    assert [c.axis_values for c in summary.columns] == [
        (2,), (128,), (32,), (32,), ("5w1s",), ("fashion_mnist->fashion_mnist_m", "fashion_mnist_m->fashion_mnist")]
    adversarial = summary.columns[3]
    assert adversarial.metric.label == "robust accuracy, autoattack-standard"  # the attack is in the header
    assert summary.tasks == ("classification", "nas", "adversarial", "fewshot", "uda")
    assert [r.label for r in summary.rows] == ["BN", "IN", "LN", "GN (G=32)", "BGN (G=4)"]  # registry order


def test_ranks_worked_out_by_hand(summary) -> None:
    averages = {r.label: r.average_rank for r in summary.rows}
    assert averages == pytest.approx({"BN": 2.6, "IN": 4.0, "LN": 4.0, "GN (G=32)": 2.3, "BGN (G=4)": 1.3})
    assert _row(summary, "BN").task_ranks == pytest.approx(
        {"classification": 3.0, "nas": 3.0, "adversarial": 2.0, "fewshot": 2.0, "uda": 3.0})
    ln = _row(summary, "LN")
    assert ln.cells[3].kind == "diverged" and ln.cells[3].rank == 4.0  # diverged: after every value
    assert ln.cells[5].kind == "missing" and ln.cells[5].rank is None and "uda" not in ln.task_ranks
    assert ln.cells[0].n == 2 and ln.cells[0].n_failed == 1 and ln.cells[0].rank == 4.0
    assert [c.kind for c in _row(summary, "IN").cells[2:]] == ["n/a"] * 4


def test_cells_and_tests(summary) -> None:
    bgn = _row(summary, "BGN (G=4)")
    assert bgn.cells[5].values == pytest.approx((0.665, 0.67, 0.68)) and bgn.cells[5].seeds == (0, 1, 2)
    averaged = bgn.cells[5].comparison  # paired on per-seed averages; Holm over the summary's 13 comparisons
    assert averaged.test == PAIRED_T and averaged.p_value < 0.05 and not bgn.cells[5].beats_bn
    assert (averaged.family, averaged.family_size, averaged.correction) == ("summary table", 13, "Holm")
    assert averaged.p_adjusted == pytest.approx(0.0655397938) and averaged.p_adjusted > averaged.p_value
    assert bgn.cells[4].comparison.test == BOOTSTRAP and bgn.cells[4].beats_bn  # 5 seeds, shared episodes
    assert bgn.cells[4].comparison.p_value < 0.01
    assert bgn.cells[2].n == 1 and bgn.cells[2].comparison.test == "" and not bgn.cells[2].beats_bn  # n=1: no claim
    assert not bgn.cells[1].beats_bn  # worse than BN at bs=128
    assert not _row(summary, "GN (G=32)").cells[4].beats_bn  # worse than BN in few-shot


def test_summary_where_a_norm_does_not_win(summary) -> None:
    text = render_summary_markdown(summary)
    assert ("- BGN (G=4): best in 4 of 6 compared columns (classification, smallest batch; adversarial, PGD-AT; "
            "few-shot, ProtoNet; domain adaptation, DANN); not best in: classification, largest batch (best: BN); "
            "NAS, DARTS_V2 retrained (best: GN (G=32)).") in text
    assert "no value: adversarial, PGD-AT (diverged, ranked last); domain adaptation, DANN (missing)." in text


# --- declarations: union, conflicts, splits, axis values, defaults ------------------------------------

def _write(root: Path, record: dict) -> None:
    run = root / "s" / record["run_id"]
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps(record))


def _column(label: str, axis: str = "max", where: dict | None = None, metric: str = "test/acc") -> dict:
    return {"label": label, "axis": axis, "where": where or {}, "metric": metric}


def test_records_declaring_different_columns_are_unioned(tmp_path: Path) -> None:
    for seed in range(2):
        _write(tmp_path, make_record("bn", 2, seed, acc=0.5, summary_columns=[_column("small", "min")]))
        _write(tmp_path, make_record("bn", 8, seed, acc=0.7, summary_columns=[_column("small", "min"),
                                                                               _column("large")]))
    table = build_summary(collect_runs(tmp_path).records)
    assert [(c.label, c.axis_values) for c in table.columns] == [("small", (2,)), ("large", (8,))]
    # a column reads the records that declare it: "large" has only the bs=8 runs
    assert table.rows[0].cells[1].values == (0.7, 0.7)


def test_one_label_declared_two_ways_is_a_problem(tmp_path: Path) -> None:
    _write(tmp_path, make_record("bn", 2, 0, acc=0.5, summary_columns=[_column("main", "min")]))
    _write(tmp_path, make_record("bn", 8, 0, acc=0.7, summary_columns=[_column("main", "max")]))
    table = build_summary(collect_runs(tmp_path).records)
    (problem,) = table.problems
    assert "summary column 'main' of task classification is declared as axis 'max'" in problem
    assert "declares it as axis 'min'" in problem and "left out of the column" in problem
    assert table.rows[0].cells[0].values == (0.5,)  # the first declaration (by path) is used


def test_runs_of_different_tables_split_the_column(tmp_path: Path) -> None:
    for dataset in ("cifar10", "fashion_mnist"):
        for seed in range(2):
            _write(tmp_path, make_record("bn", 8, seed, acc=0.6 if dataset == "cifar10" else 0.9, dataset=dataset,
                                         summary_columns=[_column("classification")]))
    table = build_summary(collect_runs(tmp_path).records)
    assert [c.label for c in table.columns] == ["classification (dataset=cifar10)",
                                                "classification (dataset=fashion_mnist)"]
    assert [c.mean for c in table.rows[0].cells] == pytest.approx([0.6, 0.9])  # never averaged together


def test_axis_by_value_and_problems(tmp_path: Path) -> None:
    columns = [_column("by value", "8"), _column("by label", "bs=2"), _column("absent", "bs=64"),
               _column("other metric", metric="test/nope"), _column("no match", where={"method": "trades"})]
    for bs in (2, 8):
        _write(tmp_path, make_record("bn", bs, 0, acc=bs / 10, summary_columns=columns))
    table = build_summary(collect_runs(tmp_path).records)
    by_label = {c.label: c for c in table.columns}
    assert by_label["by value"].axis_values == (8,) and by_label["by label"].axis_values == (2,)
    assert by_label["absent"].problem == "no run at 'bs=64' (the runs have bs=2, bs=8)"
    assert by_label["other metric"].problem == "the runs do not declare the metric 'test/nope'"
    assert by_label["no match"].problem.startswith("no run of classification matches")
    assert [c.kind for c in table.rows[0].cells] == ["value", "value", "missing", "missing", "missing"]


def test_records_without_declarations_get_the_default(tmp_path: Path) -> None:
    last = {"rule": "last", "monitor": None, "mode": None}  # as schema 1, so they share a table
    for bs in (2, 8):
        _write(tmp_path, make_record("bn", bs, 0, acc=bs / 10, selection=last))  # no summary_columns: early schema 2
    _write(tmp_path, make_record("bn", 4, 0, acc=0.3, schema=1))
    (column,) = build_summary(collect_runs(tmp_path).records).columns
    assert (column.label, column.axis_values, column.metric.name) == ("classification", (8,), "test/acc")


def test_failed_cells_are_left_out_and_diverged_rank_last(tmp_path: Path) -> None:
    outcomes = {"bn": 0.5, "ln": "failed", "gn:num_groups=32": "diverged", "bgn:num_groups=4": 0.6}
    for norm, outcome in outcomes.items():
        status = outcome if isinstance(outcome, str) else "finished"
        _write(tmp_path, make_record(norm, 8, 0, acc=None if isinstance(outcome, str) else outcome, status=status))
    table = build_summary(collect_runs(tmp_path).records)
    ranks = {r.norm: (r.cells[0].kind, r.cells[0].rank, r.average_rank) for r in table.rows}
    assert ranks == {"bn": ("value", 2.0, 2.0), "ln": ("failed", None, None),
                     "gn:num_groups=32": ("diverged", 3.0, 3.0), "bgn:num_groups=4": ("value", 1.0, 1.0)}


def test_min_metric_ranks_and_bold_the_lowest(tmp_path: Path) -> None:
    err = declare("test/err", "test error", direction="min", primary=True)
    for norm, value in (("bn", 0.2), ("ln", 0.1)):
        _write(tmp_path, make_record(norm, 8, 0, acc=None, metric_declarations=[err], **{"test/err": value},
                                     summary_columns=[_column("error", metric="test/err")]))
    table = build_summary(collect_runs(tmp_path).records)
    assert [(r.norm, r.cells[0].rank) for r in table.rows] == [("bn", 2.0), ("ln", 1.0)]
    assert ("ln", 0) in table.best and "| LN | **10.00** (n=1) | **1.00** |" in render_summary_markdown(table)


@pytest.mark.parametrize("columns, message", [
    ("x", "key 'summary_columns' must be list"),
    ([{"label": "a", "axis": "max", "where": {}}], "missing key 'summary_columns[0].metric'"),
    ([{"label": "", "axis": "max", "where": {}, "metric": ""}], "key 'summary_columns[0].label' must not be empty"),
    ([{"label": "a", "axis": "max", "where": {"m": [1]}, "metric": ""}], "'summary_columns[0].where.m' must be str"),
    ([_column("a"), _column("a")], "declares the summary column 'a' twice"),
])
def test_malformed_declarations_name_the_key(tmp_path: Path, columns, message: str) -> None:
    _write(tmp_path, make_record("bn", 8, 0, acc=0.5, summary_columns=columns))
    collection = collect_runs(tmp_path)
    assert collection.records == [] and message in collection.problems[0]


# --- the command ---------------------------------------------------------------------------------------

def test_report_writes_and_prints_the_summary(five_task_report) -> None:
    out, printed = five_task_report.out, five_task_report.stdout
    assert five_task_report.code == 0 and five_task_report.stderr == ""
    # the main table of every task, then the summary last, then the paths
    assert printed.index("PGD-20 and AutoAttack (%) by normalization") < printed.index("Cross-task summary: one column per")
    assert "| BGN (G=4) | **75.33 ± 1.53**<sup>*</sup> |" in printed
    assert printed.rstrip().endswith(f"Report: {out / 'index.md'}\n        {out / 'index.html'}")
    assert (out / "summary.md").read_text() == (GOLDEN / "five_tasks_summary.md").read_text()
    assert (out / "summary.tex").read_text().startswith("% needs \\usepackage{booktabs}\n\\begin{table*}")
    rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    assert len(rows) == 6 * 5
    index = (out / "index.md").read_text()
    assert index.index("## Cross-task summary") < index.index("## classification")
    assert "[summary (LaTeX)](summary.tex)" in index


def test_print_only_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for norm, acc in (("bn", 0.5), ("ln", 0.4)):
        _write(tmp_path, make_record(norm, 8, 0, acc=acc))
    assert main([str(tmp_path), "--print", "summary"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Cross-task summary:") and "by normalization and batch size" not in printed
    assert main([str(tmp_path), "--print", "none"]) == 0
    assert capsys.readouterr().out.startswith("Report: ")
