"""Tables a reader can paste: one adversarial table, short file names and a manifest, captions of two
sentences, LaTeX that fits a 6.5 in text width, no duplicated average column, ranks over full coverage.

The page check needs no TeX engine: it estimates each tabular's natural width from its longest cell per
column (character widths of Computer Modern at the table's size, plus the column gaps). Calibrated once by
hand against pdflatex 2022 (texlive-latex-base) on the five-task report: summary 409 pt and the adversarial
table 377 pt measured (estimates 440 and 380), so the estimate errs on the wide side where it matters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from five_tasks import write_five_task_runs
from report_records import declare

from reports.cli import main
from reports.collect import collect_runs
from reports.layout import table_sets
from reports.render import render_latex, render_markdown
from reports.summary import build_summary
from reports.summary_rank import rank_rows
from reports.summary_render import caption as summary_caption
from reports.summary_render import render_summary_latex
from reports.tables import tables_from_records

PAGE_PT = 6.5 * 72.27  # \textwidth of 6.5 in
CHAR_PT = {"\\small": 4.6, "\\footnotesize": 4.4}  # mean glyph width incl. digits (CM digits are 0.5 em)
SCRIPT = 0.75  # \scriptsize relative to the table's size


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory):
    runs = write_five_task_runs(tmp_path_factory.mktemp("five") / "runs")
    records = collect_runs(runs).records
    tables = tables_from_records(records)
    return runs, records, tables, table_sets(tables, records)


def _plain(cell: str) -> list[tuple[str, float]]:
    """(visible text, size factor) per stacked line of one LaTeX cell."""
    cell, size = cell.strip(), 1.0
    if sized := re.fullmatch(r"\{\\scriptsize\s*(.*)\}", cell):  # a header set in \scriptsize as a whole
        cell, size = sized.group(1), SCRIPT
    stacked = re.fullmatch(r"\\begin\{tabular\}\[t\]\{@\{\}r@\{\}\}(.*)\\end\{tabular\}", cell.strip()) \
        or re.fullmatch(r"\\shortstack(?:\[\w\])?\{(.*)\}", cell.strip())
    lines = stacked.group(1).split("\\\\") if stacked else [cell]
    out = []
    for line in lines:
        factor = SCRIPT if "\\scriptsize" in line else size
        text = line.replace("$\\pm$", "±").replace("\\dagger", "†")
        text = re.sub(r"\$\^\{([^}]*)\}\$", lambda m: m.group(1), text)  # marks: one glyph each, as wide
        text = re.sub(r"\\(textbf|scriptsize|footnotesize)", "", text)
        out.append((re.sub(r"[{}$\\]", "", text).strip(), factor))
    return out


def estimated_width(tex: str) -> float:
    """Natural width of the tabular: per column its widest cell, plus 2 x \\tabcolsep per column."""
    size = re.search(r"^(\\small|\\footnotesize)$", tex, re.M).group(1)  # the float's own size line
    sep = float(re.search(r"\\tabcolsep\}\{([\d.]+)pt\}", tex).group(1))
    body = tex[tex.index("\\begin{tabular}{"):tex.rindex("\\end{tabular}")]
    widths: dict[int, float] = {}
    for line in body.splitlines():
        if not line.rstrip().endswith("\\\\") or "\\multicolumn" in line:
            continue
        for i, cell in enumerate(line.rstrip()[:-2].split(" & ")):
            width = max((len(text) * CHAR_PT[size] * f for text, f in _plain(cell)), default=0.0)
            widths[i] = max(widths.get(i, 0.0), width)
    return sum(widths.values()) + 2 * sep * len(widths)


def test_adversarial_is_one_table_with_two_header_levels(five) -> None:
    _, _, _, sets = five
    (adv,) = [s for s in sets if s.first.task == "adversarial"]
    assert adv.group == "robustness" and [t.metric for t in adv.tables] == [
        "test/acc", "test/fgsm_acc", "test/pgd20_acc", "test/robust_acc"]  # the task's declared order
    top, second = adv.header_rows()
    assert [(h.text, h.span) for h in top] == [("bs=2", 4), ("bs=32", 4)]
    assert [h.text for h in second] == ["Clean", "FGSM", "PGD-20", "AutoAttack"] * 2
    md = render_markdown(adv)
    assert "| Norm | bs=2: Clean | bs=2: FGSM | bs=2: PGD-20 | bs=2: AutoAttack | bs=32: Clean |" in md
    assert "| BN | 78.00 ± 1.00 | 68.00 ± 1.00 | 63.00 ± 1.00 | 60.00 ± 1.00 | 80.50 ± 0.50 |" in md
    tex = render_latex(adv)
    assert "\\multicolumn{4}{c}{bs=2} & \\multicolumn{4}{c}{bs=32}" in tex and "\\cmidrule(lr){6-9}" in tex


def test_a_group_at_one_axis_value_heads_columns_by_metric(tmp_path: Path, write_record) -> None:
    group = {"metric_declarations": [declare("test/acc", "clean accuracy", group="g", short="Clean"),
                                     declare("test/rob", "robust accuracy", primary=True, group="g", short="Robust")]}
    for norm, acc in (("bn", 0.8), ("gn:num_groups=32", 0.7)):
        write_record(norm, 32, 0, acc=acc, **group, **{"test/rob": acc - 0.3})
    records = collect_runs(tmp_path / "runs").records
    (ts,) = table_sets(tables_from_records(records), records)
    assert [[h.text for h in row] for row in ts.header_rows()] == [["Clean", "Robust"]]
    md = render_markdown(ts)
    assert md.startswith("classification / fashion_mnist / resnet20, bs=32: Clean and Robust (%) by normalization.")
    assert "| BN | **80.00** | **50.00** |" in md


def test_file_names_are_short_numbered_and_in_the_manifest(five, tmp_path: Path) -> None:
    runs, *_ = five
    assert main([str(runs), "--out", str(tmp_path / "report"), "--print", "none"]) == 0
    tables = tmp_path / "report" / "tables"
    names = sorted(p.name for p in tables.glob("t[0-9]*.tex"))
    assert names == [f"t{i:02d}-{rest}.tex" for i, rest in enumerate([
        "classification-acc", "classification-acc5", "nas-acc", "nas-retrain-params_m", "nas-retrain-wall_time_s",
        "nas-acc", "nas-retrain-params_m", "nas-retrain-wall_time_s", "adversarial-robustness", "fewshot-acc",
        "uda-target_acc", "uda-source_acc"], start=1)]
    manifest = json.loads((tables / "manifest.json").read_text())
    by_file = {e["tex"]: e for e in manifest["tables"]}
    assert set(by_file) == set(names)
    adv = by_file["t09-adversarial-robustness.tex"]
    assert adv["metrics"] == ["test/acc", "test/fgsm_acc", "test/pgd20_acc", "test/robust_acc"]
    assert adv["context"]["coordinates"] == {"method": "pgd_at"} and adv["context"]["protocol"]["epsilon"] == 0.1
    assert by_file["t06-nas-acc.tex"]["context"]["coordinates"] == {"order": "first"}  # what tells t03 and t06 apart
    csv_text = (tables / "tables.csv").read_text()
    assert ",t09-adversarial-robustness\n" in csv_text


def test_captions_have_at_most_two_sentences(five) -> None:
    _, records, _, sets = five
    sentences = re.compile(r"\.\s+(?=[A-Z])")
    for ts in sets:
        first_paragraph = render_markdown(ts).split("\n\n")[0]
        assert first_paragraph.endswith(".") and len(sentences.split(first_paragraph)) <= 2, ts.file
    text = summary_caption(build_summary(records), {"pm": "±"}, str)
    assert len(sentences.split(text)) == 2


def test_latex_fits_a_page(five) -> None:
    _, records, _, sets = five
    summary = render_summary_latex(build_summary(records))
    assert estimated_width(summary) <= PAGE_PT and estimated_width(summary) >= 409  # pdflatex: 409 pt
    for ts in sets:
        assert estimated_width(render_latex(ts)) <= PAGE_PT, ts.file
    adversarial = next(render_latex(s) for s in sets if s.grouped)
    assert estimated_width(adversarial) >= 377  # pdflatex: 377 pt


def test_no_average_column_over_one_axis_value(tmp_path: Path, write_record) -> None:
    from report_records import uda_fields

    for seed in range(2):
        for norm, acc in (("bn", 0.4), ("bgn:num_groups=1", 0.5)):
            write_record(norm, 32, seed, acc=None, **uda_fields("fashion_mnist", "fashion_mnist_m"),
                         **{"test/target_acc": acc + 0.01 * seed})
    (table,) = tables_from_records(collect_runs(tmp_path / "runs").records)
    assert [c.label for c in table.columns] == ["F-MNIST→F-MNIST-M"]  # no "Avg." equal to it


def test_rank_only_for_norms_that_ran_every_task(five) -> None:
    _, records, _, _ = five
    summary = build_summary(records)
    ranking = rank_rows(summary)
    assert ranking.coverage == {"bn": 5, "in": 1, "ln": 4, "gn:num_groups=32": 5, "bgn:num_groups=4": 5}
    assert ranking.ranks == pytest.approx({"bn": 2.4, "gn:num_groups=32": 2.3, "bgn:num_groups=4": 1.3})
    assert ranking.best == {"bgn:num_groups=4"}


def test_declarations_carry_group_short_and_kind() -> None:
    from report_records import make_record

    from reports.collect import RecordError, parse_record

    declared = [declare("test/acc", "clean accuracy", primary=True, group="robustness", short="Clean"),
                declare("time_s", "wall time", direction="min", unit="seconds"),
                declare("params_m", "parameters (M)", direction="min", unit="", kind="cost")]
    record = parse_record(make_record("bn", 2, 0, acc=0.5, metric_declarations=declared,
                                      time_s=1.0, params_m=0.3), Path("r.json"))
    acc, time, params = record.declarations
    assert (acc.group, acc.short, acc.header, acc.is_cost) == ("robustness", "Clean", "Clean", False)
    assert (time.group, time.header, time.is_cost) == (None, "wall time", True)  # seconds: a cost
    assert params.is_cost and params.kind == "cost"
    declared[2]["kind"] = "price"
    with pytest.raises(RecordError, match=r"r.json: key 'metric_declarations\[2\].kind' must be 'result' or 'cost'"):
        parse_record(make_record("bn", 2, 0, acc=0.5, metric_declarations=declared), Path("r.json"))


def test_a_summary_column_repeating_another_is_dropped(tmp_path: Path) -> None:
    """A task that ran one batch size: its smallest and largest columns read the same runs."""
    from report_records import make_record

    from reports.summary_render import render_summary_csv, render_summary_markdown

    columns = [{"label": "smallest", "axis": "min", "where": {}, "metric": "test/acc"},
               {"label": "largest", "axis": "max", "where": {}, "metric": "test/acc"}]
    for seed in range(3):
        for norm, acc in (("bn", 0.70), ("gn:num_groups=32", 0.75)):
            record = make_record(norm, 16, seed, acc=acc + 0.01 * seed, summary_columns=columns)
            run = tmp_path / "s" / record["run_id"]
            run.mkdir(parents=True)
            (run / "result.json").write_text(json.dumps(record))
    summary = build_summary(collect_runs(tmp_path).records)
    assert [c.label for c in summary.columns] == ["smallest", "largest"]  # as declared ...
    md = render_summary_markdown(summary)
    assert "| Norm | smallest: bs=16 | Avg. rank |" in md  # ... printed once
    assert "- largest: the same runs, metric and bs=16 as smallest; not repeated." in md
    assert {row.split(",")[0] for row in render_summary_csv(summary).splitlines()[1:]} == {"smallest"}
    assert rank_rows(summary).ranks == {"gn:num_groups=32": 1.0, "bn": 2.0}
