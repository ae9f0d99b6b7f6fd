"""Each task's own tables, figures and W&B section on realistic records of all five tasks (five_tasks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import pytest
from five_tasks import DARTS_V2, SEARCHED

from reports.cells import GenotypeParseError, genotype_groups, parse_genotype
from reports.collect import collect_runs
from reports.compare import BOOTSTRAP
from reports.render import render_markdown
from reports.tables import tables_from_records
from reports.task_plots import clean_vs_robust_pairs, draw_clean_vs_robust, draw_column_bars, draw_intervals_by_norm

T_975_4 = 2.7764451051977987  # Student's t, 97.5% quantile, 4 degrees of freedom


@pytest.fixture(scope="module")
def tables(five_task_report):
    return tables_from_records(collect_runs(five_task_report.runs).records)


def _primary(tables, task: str, *words: str):
    (table,) = [t for t in tables if t.task == task and t.primary and all(w in t.name for w in words)]
    return table


def test_fewshot_cells_show_the_95_ci_and_the_bootstrap(tables) -> None:
    table = _primary(tables, "fewshot")
    assert [c.label for c in table.columns] == ["5-way 1-shot", "5-way 5-shot"]
    bn, bgn = table.rows[0].cells["5w1s"], table.rows[-1].cells["5w1s"]
    assert bn.half_width == pytest.approx(T_975_4 * bn.std / 5 ** 0.5)
    assert bgn.test == BOOTSTRAP and bgn.beats_bn and len(bgn.episodes) == 5
    md = render_markdown(table)
    assert "Mean ± 95% CI over seeds (Student's t) (n=5 seeds unless marked)." in md
    assert "hierarchical bootstrap over seeds and shared test items (10,000 resamples" in md
    assert f"| BGN (G=4) | **63.80 ± {T_975_4 * bgn.std / 5 ** 0.5 * 100:.2f}**<sup>*</sup> |" in md


def test_uda_has_a_column_per_pair_and_the_average(tables) -> None:
    table = _primary(tables, "uda")
    assert [c.label for c in table.columns] == ["F-MNIST→F-MNIST-M", "F-MNIST-M→F-MNIST", "Avg."]
    md = render_markdown(table)
    # F-MNIST-M→F-MNIST: BGN is exactly 3 points above BN at every seed, so the paired t statistic is
    # undefined and nothing is claimed there
    # F-MNIST→F-MNIST-M: two-sided paired t p = 0.016, Holm over the table's 4 comparisons: 0.052, no star
    assert "| BGN (G=4) | **50.33 ± 1.53** | **84.00 ± 1.00** | **67.17** |" in md
    assert "| LN | 36.00 ± 1.00 | – | – |" in md  # one pair only: no average


def test_adversarial_clean_and_robust_side_by_side(five_task_report, tables) -> None:
    adversarial = [t for t in tables if t.task == "adversarial"]
    assert [t.metric for t in adversarial] == ["test/robust_acc", "test/acc", "test/fgsm_acc", "test/pgd20_acc"]
    assert "robust accuracy, autoattack-standard" in adversarial[0].decl.label
    page = (five_task_report.out / "task-adversarial.html").read_text()
    assert page.count("<h3>") == 1 and "<h3>t09-adversarial-robustness: robustness</h3>" in page  # one table
    header = page[page.index("<thead>"):page.index("</thead>")]
    assert header.count('colspan="4"') == 2 and header.index(">Clean<") < header.index(">FGSM<") \
        < header.index(">PGD-20<") < header.index(">AutoAttack<")
    ((robust_table, clean_table),) = clean_vs_robust_pairs(tables)
    ax = draw_clean_vs_robust(robust_table, clean_table).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("clean test accuracy (%)", "robust accuracy, autoattack-standard (%)")
    points = {c.get_label(): c.lines[0].get_xydata()[0].tolist() for c in ax.containers}
    assert points["BN"] == pytest.approx([78.0, 60.0])  # the bs=2 point of BN: clean 78.00, robust 60.00
    assert "LN" in points  # LN diverged at bs=32 but has its bs=2 point


def test_fewshot_accuracy_per_norm_with_ci_bars(tables) -> None:
    table = _primary(tables, "fewshot")
    ax = draw_intervals_by_norm(table).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["BN", "LN", "GN (G=32)", "BGN (G=4)"]
    one_shot = ax.containers[0]
    assert one_shot.get_label() == "5-way 1-shot"
    assert one_shot.lines[0].get_ydata().tolist() == pytest.approx([60.5, 55.0, 59.0, 63.8])
    bn = table.rows[0].cells["5w1s"]
    low, high = one_shot.lines[2][0].get_segments()[0][:, 1]
    assert (high - low) / 2 == pytest.approx(bn.half_width * 100)


def test_uda_target_accuracy_per_pair(tables) -> None:
    ax = draw_column_bars(_primary(tables, "uda")).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["F-MNIST→F-MNIST-M", "F-MNIST-M→F-MNIST", "Avg."]
    from matplotlib.container import BarContainer

    heights = {c.get_label(): [round(p.get_height(), 2) for p in c.patches] for c in ax.containers
               if isinstance(c, BarContainer)}
    assert heights["BN"] == [41.0, 81.0, 61.0] and heights["LN"] == [36.0]


def test_nas_cells_are_drawn_from_the_records(five_task_report, tables) -> None:
    figures, problems = genotype_groups(collect_runs(five_task_report.runs).records)
    assert problems == []
    titles = sorted(f.title for f in figures)
    assert titles == ["DARTS_V2 cell: BN, LN, GN (G=32), BGN (G=4), seed 0", "searched cell: BGN (G=4), seed 0",
                      "searched cell: BN, seed 0"]
    page = (five_task_report.out / "task-nas.html").read_text()
    assert "searched cell: BN, seed 0" in page and "DARTS_V2 cell: BN, LN, GN (G=32), BGN (G=4), seed 0" in page
    png = next(p for p in (five_task_report.out / "plots").glob("nas__*cell1.png"))
    assert mpimg.imread(png).std() > 0.01 and png.with_suffix(".svg").is_file()


def test_genotype_parser_is_tolerant_and_strict_where_it_matters() -> None:
    v2 = parse_genotype(DARTS_V2)
    assert v2.normal.edges[:2] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)) and v2.normal.concat == (2, 3, 4, 5)
    searched = parse_genotype(SEARCHED["bgn:num_groups=4"][0])  # range(2, 6) concat
    assert searched.reduce.concat == (2, 3, 4, 5) and searched.normal.steps == 4
    tuples = parse_genotype("Genotype(normal=(('skip_connect', 0), ('max_pool_3x3', 1)), reduce=[['avg_pool_3x3', 1], "
                            "['skip_connect', 0]])")  # tuples, lists, no concat: every intermediate node
    assert tuples.normal.concat == (2,) and tuples.reduce.edges == (("avg_pool_3x3", 1), ("skip_connect", 0))
    for bad, message in [("DARTS_V2", "not of the form"), ("Genotype(normal=[('a', 0)], reduce=[])", "even"),
                         ("Genotype(normal=[('a', 0), ('b', 2)], reduce=[('a', 0), ('b', 1)])", "input in 0..1"),
                         ("Genotype(normal=__import__('os'), reduce=[])", "is not a literal")]:
        with pytest.raises(GenotypeParseError, match=message):
            parse_genotype(bad)


def test_a_genotype_that_cannot_be_drawn_is_a_note(tmp_path: Path) -> None:
    from report_records import make_record

    record = make_record("bn", 8, 0, acc=0.5, task="nas", genotype="Genotype(normal=oops)")
    run = tmp_path / "s" / record["run_id"]
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps(record))
    figures, problems = genotype_groups(collect_runs(tmp_path).records)
    assert figures == [] and "key 'genotype' cannot be drawn" in problems[0]


def test_every_task_page_has_its_figures(five_task_report) -> None:
    out = five_task_report.out
    expected = {"classification": 2, "nas": 9, "adversarial": 5, "fewshot": 2, "uda": 3}
    for task, images in expected.items():
        page = (out / f"task-{task}.html").read_text()
        assert page.count('src="data:image/png;base64,') == images, task
    index = (out / "index.html").read_text()
    assert index.index('id="cross-task-summary"') < index.index("<h2>Tasks</h2>")
    for task in expected:
        assert f'href="task-{task}.html"' in index


def test_wandb_specification_for_all_five_tasks(five_task_report) -> None:
    spec = json.loads((five_task_report.out / "wandb_report.json").read_text())
    blocks = spec["blocks"]
    headings = [b["text"] for b in blocks if b["type"] == "H1"]
    assert headings == ["Cross-task summary", "classification", "nas", "adversarial", "fewshot", "uda"]
    summary = blocks[[b.get("text") for b in blocks].index("Cross-task summary") + 1]
    assert summary["type"] == "MarkdownBlock" and "| BGN (G=4) | **75.33 ± 1.53** |" in summary["text"]
    grids = {b["runsets"][0]["name"]: b for b in blocks if b["type"] == "PanelGrid"}
    per_axis = {
        "classification": ["bs=2", "bs=128"], "nas": ["bs=8", "bs=32"], "adversarial": ["bs=2", "bs=32"],
        "fewshot": ["5-way 1-shot", "5-way 5-shot"], "uda": ["F-MNIST→F-MNIST-M", "F-MNIST-M→F-MNIST"],
    }
    primary = {"classification": "test/acc", "nas": "test/acc", "adversarial": "test/robust_acc",
               "fewshot": "test/acc", "uda": "test/target_acc"}
    assert list(grids) == [name for task, labels in per_axis.items()
                           for name in [f"{task} runs", *(f"{task} runs, {label}" for label in labels)]]
    for task, labels in per_axis.items():
        for label in labels:
            bar = grids[f"{task} runs, {label}"]["panels"][0]
            assert (bar["type"], bar["metrics"]) == ("BarPlot", [primary[task]])
    kinds = [p["type"] for p in grids["adversarial runs, bs=32"]["panels"]]
    assert kinds == ["BarPlot", "BarPlot", "ScatterPlot"]  # the primary; clean and robust; clean vs robust
    # a runset per axis value filters on the axis coordinates the run side logs
    assert "('source', '=', 'fashion_mnist_m')" not in json.dumps(grids)  # filters are expressions, not tuples
    fewshot = grids["fewshot runs, 5-way 5-shot"]["runsets"][0]["filters"]
    assert "ways" in fewshot and "shots" in fewshot
    monitors = {task: [p["y"] for p in grids[f"{task} runs"]["panels"]] for task in per_axis}
    assert monitors == {"classification": [], "nas": [], "adversarial": [["val/robust_acc"]],
                        "fewshot": [["val/acc"]], "uda": [["val/source_acc"]]}
