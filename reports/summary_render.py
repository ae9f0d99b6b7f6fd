"""Spell the cross-task summary in Markdown, LaTeX, HTML and CSV.

Every format shows the same decisions (:mod:`reports.summary`): the cells, bold,
the marks, the ranks. Below the table come the column definitions (what each
column read, resolved from its declaration) and one line per norm saying where
it is best and where it is not, because a bold cell alone hides the columns a
norm loses.
"""

from __future__ import annotations

import csv
import html
import io
from collections import Counter

from .compare import MIN_SEEDS_FOR_TEST
from .family import CSV_COLUMNS as STAT_COLUMNS
from .family import csv_values, significance_sentence
from .record import format_scalar
from .render import _HTML, _MD, _TEX, _md_escape, latex_escape
from .summary import DIVERGED, FAILED, MISSING_CELL, NOT_RUN, SummaryCell, SummaryRow, SummaryTable
from .summary_spec import ResolvedColumn
from .tables import format_value

RANK_LABEL = "Avg. rank"
SUMMARY_CSV_COLUMNS = (
    "column", "task", "dataset", "model", "context", "metric", "metric_label", "unit", "direction", "axis",
    "axis_values", "where", "norm", "norm_label", "norm_num_groups", "kind", "n", "n_failed", "n_diverged",
    "mean", "std", "seeds", "rank", "task_rank", "average_rank", "best", "test", "p_vs_bn", "beats_bn", "note",
    *STAT_COLUMNS,
)


def _modal_n(table: SummaryTable) -> int | None:
    counts = Counter(c.n for row in table.rows for c in row.cells if c.n > 0)
    if not counts:
        return None
    top = max(counts.values())
    return max(n for n, k in counts.items() if k == top)


def header_words(column: ResolvedColumn) -> tuple[str, str]:
    """(label, "metric label (unit), axis") of a column header."""
    if column.metric is None:
        return column.label, column.declaration.metric or "(no metric)"
    unit = f" ({column.metric.symbol})" if column.metric.symbol else ""
    axis = f"avg. of {len(column.axis_values)}" if column.average else column.axis_words
    return column.label, f"{column.metric.label}{unit}, {axis}"


def cell_text(table: SummaryTable, row: SummaryRow, index: int, sym: dict, modal: int | None) -> str:
    cell = row.cells[index]
    if cell.kind != "value":
        return cell.kind
    decl = table.columns[index].metric
    assert decl is not None and cell.mean is not None
    text = format_value(decl, cell.mean)
    if cell.std is not None:
        text += f" {sym['pm']} {format_value(decl, cell.std)}"
    if (row.norm, index) in table.best:
        text = sym["bold"](text)
    marks = (sym["sig"] if cell.beats_bn else "") + (sym["dagger"] if cell.n_failed or cell.n_diverged else "")
    if marks:
        text += sym["sup"](marks)
    if cell.n == 1 or cell.n != modal:
        text += f" (n={cell.n})"
    return text


def rank_text(table: SummaryTable, row: SummaryRow, sym: dict) -> str:
    if row.average_rank is None:
        return NOT_RUN
    text = f"{row.average_rank:.2f}"
    if (row.norm, len(table.columns)) in table.best:
        text = sym["bold"](text)
    if len(row.task_ranks) < len(table.tasks):
        text += f" ({len(row.task_ranks)}/{len(table.tasks)} tasks)"
    return text


def caption(table: SummaryTable, sym: dict, esc) -> str:
    modal = _modal_n(table)
    seeds = f"n={modal} seed{'s' if modal != 1 else ''} unless marked" if modal else "no finished seeds"
    comparisons = [c.comparison for row in table.rows for c in row.cells if c.comparison]
    reference = next((c.reference for c in comparisons), "bn")
    label = next((r.label for r in table.rows if r.norm == reference), reference)
    sentence = significance_sentence(comparisons, label, "in that column")
    parts = [
        f"Cross-task summary: one column per declared task setting (the runs' summary_columns, fixed before "
        f"the runs); mean {sym['pm']} sample std over seeds ({seeds}); (n=1): one seed, no {sym['pm']} and no test.",
        f"{sym['bold']('Bold')}: best per column in the direction its metric declares.",
    ]
    if sentence:
        parts.append(f"{sym['sup'](sym['sig'])}: {esc(sentence)}")
    else:
        parts.append(f"No significance claimed: a test needs {sym['geq']} {MIN_SEEDS_FOR_TEST} finished seeds "
                     "of BN and the norm in a column.")
    parts.append(
        f"{RANK_LABEL}: rank per column (1 = best, ties share the mean rank, a norm whose every seed diverged ranks "
        "after the others), averaged within each task first (a task counts once), then over tasks; "
        f"{NOT_RUN}, {MISSING_CELL} and {FAILED} cells are left out of it. {NOT_RUN}: the norm has no run of this "
        f"task; {MISSING_CELL}: it ran the task but not this column; {FAILED} / {DIVERGED}: every seed did; "
        f"{sym['sup'](sym['dagger'])}: some seeds failed or diverged."
    )
    return " ".join(parts)


def column_lines(table: SummaryTable) -> list[str]:
    """What each column read: task, data set, model, context, metric and the resolved axis columns."""
    lines = []
    for column in table.columns:
        declared = column.declaration.describe()
        if column.context is None:
            lines.append(f"{column.label}: {column.problem} [declared: {declared}]")
            continue
        ctx = column.context
        where = f"{ctx.task} / {ctx.dataset} / {ctx.model}"
        words = ctx.parts()
        if words:
            where += f" ({', '.join(words)})"
        metric = f"{column.metric.name} ({column.metric.label})" if column.metric else "no metric"
        line = f"{column.label}: {where}, {metric}, {column.axis_words} [declared: {declared}]"
        if column.problem:
            line += f"; {column.problem}"
        lines.append(line)
    return lines


def scorecard_lines(table: SummaryTable) -> list[str]:
    """Per norm: the columns where it is best, where it is not (and who is), and where it has no value."""
    best_in: dict[int, list[str]] = {}
    for norm, index in table.best:
        if index < len(table.columns):
            best_in.setdefault(index, []).append(norm)
    labels = {r.norm: r.label for r in table.rows}
    lines = []
    for row in table.rows:
        wins, losses, absent = [], [], []
        for i, (column, cell) in enumerate(zip(table.columns, row.cells)):
            if cell.kind != "value":
                absent.append(f"{column.label} ({cell.kind}{', ranked last' if cell.ranks_last else ''})")
            elif (row.norm, i) in table.best:
                wins.append(column.label)
            else:
                winners = ", ".join(labels[n] for n in sorted(best_in.get(i, []), key=list(labels).index))
                losses.append(f"{column.label} (best: {winners})")
        valued = len(wins) + len(losses)
        text = f"{row.label}: best in {len(wins)} of {valued} columns with a value"
        if wins:
            text += f" ({'; '.join(wins)})"
        text += f"; not best in: {'; '.join(losses)}" if losses else "; best in every one"
        if absent:
            text += f"; no value: {'; '.join(absent)}"
        lines.append(text + ".")
    return lines


def render_summary_markdown(table: SummaryTable) -> str:
    """Caption, the table, the column definitions and the per-norm scorecard."""
    modal = _modal_n(table)
    heads = [_md_escape(f"{a}: {b}") for a, b in map(header_words, table.columns)]
    lines = [caption(table, _MD, lambda s: s), "", "| Norm | " + " | ".join(heads) + f" | {RANK_LABEL} |",
             "|:--|" + "--:|" * (len(table.columns) + 1)]
    for row in table.rows:
        cells = [cell_text(table, row, i, _MD, modal) for i in range(len(table.columns))]
        lines.append(f"| {_md_escape(row.label)} | " + " | ".join(cells) + f" | {rank_text(table, row, _MD)} |")
    lines += ["", "Columns:"] + [f"- {_md_escape(line)}" for line in column_lines(table)]
    lines += ["", "Where each norm is best, and where it is not:"] + [f"- {line}" for line in scorecard_lines(table)]
    if table.problems:
        lines += ["", "Problems:"] + [f"- {p}" for p in table.problems]
    return "\n".join(lines) + "\n"


def render_summary_latex(table: SummaryTable) -> str:
    """A table* environment (needs \\usepackage{booktabs}); column definitions follow as comments."""
    modal = _modal_n(table)
    heads = list(map(header_words, table.columns))
    lines = ["\\begin{table*}[t]", "\\centering", f"\\caption{{{caption(table, _TEX, latex_escape)}}}",
             "\\label{tab:cross-task-summary}", "\\small",
             f"\\begin{{tabular}}{{l{'r' * (len(table.columns) + 1)}}}", "\\toprule",
             "Norm & " + " & ".join(latex_escape(a) for a, _ in heads) + f" & {RANK_LABEL} \\\\",
             " & " + " & ".join(f"\\footnotesize {latex_escape(b)}" for _, b in heads) + " & \\\\", "\\midrule"]
    for row in table.rows:
        cells = [cell_text(table, row, i, _TEX, modal) for i in range(len(table.columns))]
        lines.append(f"{latex_escape(row.label)} & " + " & ".join(cells) + f" & {rank_text(table, row, _TEX)} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table*}"]
    lines += [f"% Column {line}" for line in column_lines(table)]
    lines += [f"% {line}" for line in scorecard_lines(table)]
    return "\n".join(lines) + "\n"


def render_summary_html(table: SummaryTable) -> str:
    """The table (with its caption) and the two lists, for the index page."""
    esc = html.escape
    modal = _modal_n(table)
    heads = "".join(f"<th>{esc(a)}<br><small>{esc(b)}</small></th>" for a, b in map(header_words, table.columns))
    body = []
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row.cells):
            cls = "" if cell.kind == "value" else f' class="{cell.kind.replace("/", "-")}"'
            cells.append(f"<td{cls}>{cell_text(table, row, i, _HTML, modal)}</td>")
        body.append(f'<tr><th scope="row">{esc(row.label)}</th>{"".join(cells)}'
                    f"<td>{rank_text(table, row, _HTML)}</td></tr>")
    parts = [
        f'<p class="caption" id="cross-task-summary__caption">{caption(table, _HTML, esc)}</p>',
        '<div class="scroll"><table id="cross-task-summary" aria-describedby="cross-task-summary__caption">',
        f"<thead><tr><th>Norm</th>{heads}<th>{RANK_LABEL}</th></tr></thead>",
        "<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>",
        "<h3>Columns</h3><ul>" + "".join(f"<li>{esc(line)}</li>" for line in column_lines(table)) + "</ul>",
        "<h3>Where each norm is best, and where it is not</h3><ul>"
        + "".join(f"<li>{esc(line)}</li>" for line in scorecard_lines(table)) + "</ul>",
    ]
    if table.problems:
        parts.append('<ul class="warn">' + "".join(f"<li>{esc(p)}</li>" for p in table.problems) + "</ul>")
    return "\n".join(parts) + "\n"


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _row(table: SummaryTable, row: SummaryRow, index: int, cell: SummaryCell) -> list[object]:
    column = table.columns[index]
    ctx, decl = column.context, column.metric
    comparison = cell.comparison
    return [
        column.label, column.task, ctx.dataset if ctx else "", ctx.model if ctx else "",
        ";".join(ctx.parts()) if ctx else "", decl.name if decl else column.declaration.metric,
        decl.label if decl else "", decl.unit if decl else "", decl.direction if decl else "",
        column.declaration.axis, ";".join(format_scalar(v) for v in column.axis_values),
        ";".join(f"{k}={format_scalar(v)}" for k, v in column.declaration.where),
        row.norm, row.label, "" if row.num_groups is None else row.num_groups, cell.kind, cell.n, cell.n_failed,
        cell.n_diverged, _num(cell.mean), _num(cell.std), " ".join(map(str, cell.seeds)), _num(cell.rank),
        _num(row.task_ranks.get(column.task)), _num(row.average_rank), str((row.norm, index) in table.best).lower(),
        comparison.test if comparison and comparison.made else "",
        _num(comparison.p_value) if comparison else "", str(cell.beats_bn).lower(),
        cell.note or (comparison.reason if comparison and not comparison.made else ""),
        *csv_values(comparison),
    ]


def render_summary_csv(table: SummaryTable) -> str:
    """Long format: one row per (column, norm), raw units (fractions as fractions)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUMMARY_CSV_COLUMNS)
    for index in range(len(table.columns)):
        for row in table.rows:
            writer.writerow(_row(table, row, index, row.cells[index]))
    return out.getvalue()
