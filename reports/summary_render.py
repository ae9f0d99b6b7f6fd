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
from .render import _HTML, _MD, _TEX, _md_escape, latex_escape, latex_notes, tex_stack
from .summary import DIVERGED, FAILED, MISSING_CELL, NOT_RUN, SummaryCell, SummaryRow, SummaryTable
from .summary_rank import Ranking, rank_rows, without_repeats
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
    """(label, setting) of a column header: the declared label, then the axis value(s).

    The metric is named only where the task declared a short header for it or it is not the task's primary
    metric; its full label and unit are in the column notes under the table.
    """
    if column.metric is None:
        return column.label, column.declaration.metric or "(no metric)"
    axis = f"avg. of {len(column.axis_values)}" if column.average else column.axis_words
    decl = column.metric
    metric = decl.short or ("" if decl.primary else decl.label)
    return column.label, f"{metric}, {axis}" if metric else axis


def is_best(table: SummaryTable, row: SummaryRow, index: int) -> bool:
    """Bold: best in its column, among at least two values, and not a cost."""
    decl = table.columns[index].metric
    if (row.norm, index) not in table.best or decl is None or decl.is_cost:
        return False
    return sum(r.cells[index].kind == "value" for r in table.rows) > 1


def cell_text(table: SummaryTable, row: SummaryRow, index: int, sym: dict, modal: int | None,
              stack=None) -> str:
    """The cell; `stack(top, bottom)` puts the spread and seed count under the mean (LaTeX)."""
    cell = row.cells[index]
    if cell.kind != "value":
        return cell.kind
    decl = table.columns[index].metric
    assert decl is not None and cell.mean is not None
    top = format_value(decl, cell.mean)
    spread = f"{sym['pm']} {format_value(decl, cell.std)}" if cell.std is not None else ""
    if stack is None and spread:
        top, spread = f"{top} {spread}", ""
    if is_best(table, row, index):
        top = sym["bold"](top)
    marks = (sym["sig"] if cell.beats_bn else "") + (sym["dagger"] if cell.n_failed or cell.n_diverged else "")
    if marks:
        top += sym["sup"](marks)
    n_note = f"(n={cell.n})" if cell.n == 1 or cell.n != modal else ""
    if stack is None:
        return f"{top} {n_note}" if n_note else top
    return stack(top, " ".join(w for w in (spread, n_note) if w))


def rank_text(table: SummaryTable, row: SummaryRow, sym: dict, ranking: Ranking | None = None) -> str:
    ranking = ranking or rank_rows(table)
    coverage = f"({ranking.coverage[row.norm]}/{len(table.tasks)} tasks)"
    if row.norm not in ranking.ranks:
        return f"{sym['dash']} {coverage}" if ranking.coverage[row.norm] < len(table.tasks) else sym["dash"]
    text = f"{ranking.ranks[row.norm]:.2f}"
    return sym["bold"](text) if row.norm in ranking.best else text


def caption(table: SummaryTable, sym: dict, esc) -> str:
    """Two sentences: what the table is, and what a cell holds."""
    modal = _modal_n(table)
    seeds = f"n={modal} seed{'s' if modal != 1 else ''} unless marked" if modal else "no finished seeds"
    return (f"Cross-task summary: one column per task setting declared before the runs, one row per "
            f"normalization, and the average rank. Mean {sym['pm']} sample std over seeds ({seeds}).")


def notes(table: SummaryTable, sym: dict, esc) -> list[str]:
    """What the caption leaves out: the marks, the test, the rank rule and the words in the cells."""
    comparisons = [c.comparison for row in table.rows for c in row.cells if c.comparison]
    reference = next((c.reference for c in comparisons), "bn")
    label = next((r.label for r in table.rows if r.norm == reference), reference)
    sentence = significance_sentence(comparisons, label, "in that column")
    lines = [f"{sym['bold']('Bold')}: best per column in the direction its metric declares; none in a column "
             "with a single value or of a cost (time, parameters).", "(n=1): one seed, no ± and no test."]
    if sentence:
        lines.append(f"{sym['sup'](sym['sig'])}: {esc(sentence)}")
    else:
        lines.append(f"No significance claimed: a test needs {sym['geq']} {MIN_SEEDS_FOR_TEST} finished seeds "
                     "of BN and the norm in a column.")
    lines.append(
        f"{RANK_LABEL}: only for norms with a result in every task, ranked among themselves: per column 1 = best, "
        "ties share the mean rank, a norm whose every seed diverged ranks after the others; averaged within each "
        f"task first (a task counts once), then over tasks. A norm that ran fewer tasks shows its coverage "
        f"({sym['dash']} (k/K tasks)) and no rank.")
    lines.append(f"{NOT_RUN}: the norm has no run of this task; {MISSING_CELL}: it ran the task but not this "
                 f"column; {FAILED} / {DIVERGED}: every seed did; {sym['sup'](sym['dagger'])}: some seeds failed "
                 "or diverged.")
    return lines


def column_lines(table: SummaryTable) -> list[str]:
    """What each column read: task, data set, model, context, metric (label, unit) and the resolved axis columns."""
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
        decl = column.metric
        metric = f"{decl.name} ({decl.label}{', ' + decl.symbol if decl.symbol else ''})" if decl else "no metric"
        line = f"{column.label}: {where}, {metric}, {column.axis_words} [declared: {declared}]"
        if column.problem:
            line += f"; {column.problem}"
        lines.append(line)
    return lines


def scorecard_lines(table: SummaryTable) -> list[str]:
    """Per norm: the columns where it is best, where it is not (and who is), and where it has no value."""
    labels = {r.norm: r.label for r in table.rows}
    best_in = {i: [r.norm for r in table.rows if is_best(table, r, i)] for i in range(len(table.columns))}
    lines = []
    for row in table.rows:
        wins, losses, alone, absent = [], [], [], []
        for i, (column, cell) in enumerate(zip(table.columns, row.cells)):
            if cell.kind != "value":
                absent.append(f"{column.label} ({cell.kind}{', ranked last' if cell.ranks_last else ''})")
            elif row.norm in best_in[i]:
                wins.append(column.label)
            elif not best_in[i]:
                alone.append(column.label)
            else:
                losses.append(f"{column.label} (best: {', '.join(labels[n] for n in best_in[i])})")
        valued = len(wins) + len(losses)
        text = f"{row.label}: best in {len(wins)} of {valued} compared columns"
        if wins:
            text += f" ({'; '.join(wins)})"
        text += f"; not best in: {'; '.join(losses)}" if losses else ("; best in every one" if wins else "")
        if alone:
            text += f"; nothing to compare with: {'; '.join(alone)}"
        if absent:
            text += f"; no value: {'; '.join(absent)}"
        lines.append(text + ".")
    return lines


def render_summary_markdown(table: SummaryTable) -> str:
    """Caption, the table, the notes, the column definitions and the per-norm scorecard."""
    table, dropped = without_repeats(table)
    modal = _modal_n(table)
    ranking = rank_rows(table)
    heads = [_md_escape(f"{a}: {b}") for a, b in map(header_words, table.columns)]
    lines = [caption(table, _MD, lambda s: s), "", "| Norm | " + " | ".join(heads) + f" | {RANK_LABEL} |",
             "|:--|" + "--:|" * (len(table.columns) + 1)]
    for row in table.rows:
        cells = [cell_text(table, row, i, _MD, modal) for i in range(len(table.columns))]
        lines.append(f"| {_md_escape(row.label)} | " + " | ".join(cells) + f" | {rank_text(table, row, _MD, ranking)} |")
    lines += [""] + [f"- {line}" for line in notes(table, _MD, lambda s: s) + dropped]
    lines += ["", "Columns:"] + [f"- {_md_escape(line)}" for line in column_lines(table)]
    lines += ["", "Where each norm is best, and where it is not:"] + [f"- {line}" for line in scorecard_lines(table)]
    if table.problems:
        lines += ["", "Problems:"] + [f"- {p}" for p in table.problems]
    return "\n".join(lines) + "\n"


def _tex_stack(*lines: str) -> str:
    """Lines stacked in one cell (right-aligned), so a wide summary still fits a page."""
    kept = [line for line in lines if line]
    return kept[0] if len(kept) == 1 else tex_stack(*kept)


def _tex_header(text: str, width: int = 12, size: str = "") -> str:
    """A header split into lines of about `width` characters at spaces, stacked and centred (in `size`)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    body = "\\\\".join(latex_escape(line) for line in lines)
    stacked = body if len(lines) == 1 else f"\\shortstack{{{body}}}"
    return f"{{{size}{stacked}}}" if size else stacked


def render_summary_latex(table: SummaryTable) -> str:
    """A table* (needs \\usepackage{booktabs}) sized for a 6.5 in text width; notes and column lines under it."""
    table, dropped = without_repeats(table)
    modal = _modal_n(table)
    ranking = rank_rows(table)
    heads = list(map(header_words, table.columns))
    small = lambda top, bottom: _tex_stack(top, f"\\scriptsize {bottom}" if bottom else "")  # noqa: E731
    lines = ["\\begin{table*}[t]", "\\centering", "\\footnotesize", "\\setlength{\\tabcolsep}{3pt}",
             f"\\caption{{{caption(table, _TEX, latex_escape)}}}", "\\label{tab:cross-task-summary}",
             f"\\begin{{tabular}}{{l{'r' * (len(table.columns) + 1)}}}", "\\toprule",
             "Norm & " + " & ".join(_tex_header(a) for a, _ in heads) + f" & {_tex_header(RANK_LABEL)} \\\\",
             " & " + " & ".join(_tex_header(b, 16, "\\scriptsize ") for _, b in heads) + " & \\\\", "\\midrule"]
    for row in table.rows:
        cells = [cell_text(table, row, i, _TEX, modal, small) for i in range(len(table.columns))]
        rank = rank_text(table, row, _TEX, ranking)  # "– (3/5 tasks)": the coverage under the dash
        rank = small(*rank.split(" ", 1)) if " " in rank else rank
        lines.append(f"{latex_escape(row.label)} & " + " & ".join(cells) + f" & {rank} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    lines += latex_notes(notes(table, _TEX, latex_escape) + [latex_escape(d) for d in dropped]
                         + [f"Column {latex_escape(line)}" for line in column_lines(table)])
    lines += ["\\end{table*}"] + [f"% {line}" for line in scorecard_lines(table)]
    return "\n".join(lines) + "\n"


def render_summary_html(table: SummaryTable) -> str:
    """The table (with its caption), the notes and the two lists, for the index page."""
    esc = html.escape
    table, dropped = without_repeats(table)
    modal = _modal_n(table)
    ranking = rank_rows(table)
    heads = "".join(f"<th>{esc(a)}<br><small>{esc(b)}</small></th>" for a, b in map(header_words, table.columns))
    body = []
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row.cells):
            cls = "" if cell.kind == "value" else f' class="{cell.kind.replace("/", "-")}"'
            cells.append(f"<td{cls}>{cell_text(table, row, i, _HTML, modal)}</td>")
        body.append(f'<tr><th scope="row">{esc(row.label)}</th>{"".join(cells)}'
                    f"<td>{rank_text(table, row, _HTML, ranking)}</td></tr>")
    parts = [
        f'<p class="caption" id="cross-task-summary__caption">{caption(table, _HTML, esc)}</p>',
        '<div class="scroll"><table id="cross-task-summary" aria-describedby="cross-task-summary__caption">',
        f"<thead><tr><th>Norm</th>{heads}<th>{RANK_LABEL}</th></tr></thead>",
        "<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>",
        '<ul class="notes">' + "".join(f"<li>{line}</li>" for line in notes(table, _HTML, esc)
                                       + [esc(d) for d in dropped]) + "</ul>",
        "<h3>Columns</h3><ul>" + "".join(f"<li>{esc(line)}</li>" for line in column_lines(table)) + "</ul>",
        "<h3>Where each norm is best, and where it is not</h3><ul>"
        + "".join(f"<li>{esc(line)}</li>" for line in scorecard_lines(table)) + "</ul>",
    ]
    if table.problems:
        parts.append('<ul class="warn">' + "".join(f"<li>{esc(p)}</li>" for p in table.problems) + "</ul>")
    return "\n".join(parts) + "\n"


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _row(table: SummaryTable, row: SummaryRow, index: int, cell: SummaryCell, ranking: Ranking) -> list[object]:
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
        _num(row.task_ranks.get(column.task)), _num(ranking.ranks.get(row.norm)),
        str(is_best(table, row, index)).lower(),
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
    table, _ = without_repeats(table)
    ranking = rank_rows(table)
    for index in range(len(table.columns)):
        for row in table.rows:
            writer.writerow(_row(table, row, index, row.cells[index], ranking))
    return out.getvalue()
