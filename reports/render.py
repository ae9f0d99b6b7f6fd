"""Spell tables in Markdown (GitHub pipe tables), LaTeX (booktabs), HTML and CSV.

Every renderer reads the same :class:`~reports.tables.CellView` decisions, so a
bold cell or a significance mark is the same in the paper, on GitHub and in the
spreadsheet. The caption says what the columns are (the task's axis label),
what follows the ± (a sample std, or a 95% interval where the metric declares
one) and which context the table belongs to. Output is a pure function of the
tables: golden-file testable.
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import replace
from typing import Iterable

from .compare import MIN_SEEDS_FOR_TEST
from .family import CSV_COLUMNS as STAT_COLUMNS
from .family import csv_values, significance_sentence
from .record import format_scalar
from .tables import AVERAGE_LABEL, MISSING, CellView, Table

CSV_COLUMNS = (
    "task", "dataset", "model", "metric", "norm", "norm_label", "norm_num_groups", "batch_size",
    "n", "n_failed", "n_diverged", "mean", "std", "p_vs_bn", "beats_bn", "best",
    "coordinates", "axis", "axis_value", "axis_label", "context", "unit", "direction", "interval",
    "interval_half_width", "test", "seeds", "row", *STAT_COLUMNS,
)

# Per-format spelling of the symbols a caption and a cell use.
_MD = {"lt": "<", "pm": "±", "sig": "*", "dagger": "†", "dash": MISSING, "geq": "≥",
       "bold": lambda s: f"**{s}**", "sup": lambda s: f"<sup>{s}</sup>"}
_HTML = {**_MD, "lt": "&lt;", "bold": lambda s: f"<b>{s}</b>"}
_TEX = {"lt": "$<$", "pm": "$\\pm$", "sig": "*", "dagger": "\\dagger", "dash": "--", "geq": "$\\geq$",
        "bold": lambda s: f"\\textbf{{{s}}}", "sup": lambda s: f"$^{{{s}}}$"}

_TEX_ESCAPES = {
    "→": r"$\rightarrow$", "≥": r"$\geq$", "×": r"$\times$", "±": r"$\pm$", "<": r"\textless{}", ">": r"\textgreater{}",
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _spread_words(table: Table, sym: dict, esc) -> str:
    """What follows the ±: a sample std, or for an interval metric which 95% interval."""
    if table.decl.interval is None:
        return "sample std over seeds"
    counts = {c.n for row in table.rows for c in row.cells.values() if c.n > 0}
    over_seeds, over_episodes = esc("95% CI over seeds (Student's t)"), esc("95% CI over test episodes")
    if counts and all(n >= 2 for n in counts):
        return over_seeds
    if counts and all(n == 1 for n in counts):
        return over_episodes
    return f"{over_seeds}; with one seed, {sym['pm']} {over_episodes}"


def _caption(table: Table, sym: dict, esc) -> str:
    """What the cells are, what the marks mean and which test made them."""
    unit = f" ({esc(table.unit)})" if table.unit else ""  # escaped: a bare % starts a LaTeX comment
    direction = "higher" if table.mode == "max" else "lower"
    seeds = f"n={table.modal_n} unless marked" if table.modal_n else "no finished seeds"
    column = "batch size" if table.on_batch_axis else "column"
    same = "at the same batch size" if table.on_batch_axis else "in the same column"
    parts = [
        f"{esc(table.heading)}: {esc(table.metric)}{unit}, mean {sym['pm']} {_spread_words(table, sym, esc)} "
        f"({seeds}); rows: normalization, columns: {esc(table.axis_label)}.",
    ]
    if any(c.is_average for c in table.columns):
        parts.append(f"{AVERAGE_LABEL}: mean over the row's {esc(table.axis_label)} columns, "
                     f"shown only when all of them have a value.")
    parts.append(f"{sym['bold']('Bold')}: best mean per {column} ({direction} is better).")
    if table.has_bn:
        cells = [c for row in table.rows for c in row.cells.values()]
        reference = next((c.norm_label for c in cells if c.is_reference), "BN")
        sentence = significance_sentence((c.comparison for c in cells), reference, same)
        if sentence:
            parts.append(f"{sym['sup'](sym['sig'])}: {esc(sentence)}")
        else:
            parts.append(f"No significance claimed: a test needs {sym['geq']} {MIN_SEEDS_FOR_TEST} finished seeds "
                         "in both cells.")
    else:
        parts.append("No reference (BN) row, so no significance test.")
    parts.append(
        f"{sym['sup'](sym['dagger'])}: some seeds failed or diverged, mean over the finished seeds; "
        f"{sym['dash']}: not run."
    )
    return " ".join(parts)


def _cell_text(view: CellView, sym: dict) -> str:
    if view.kind == "missing":
        return sym["dash"]
    if view.kind != "value":
        return view.kind
    text = f"{view.mean} {sym['pm']} {view.spread}" if view.spread else view.mean
    if view.bold:
        text = sym["bold"](text)
    marks = (sym["sig"] if view.significant else "") + (sym["dagger"] if view.partial else "")
    if marks:
        text += sym["sup"](marks)
    if view.n_note is not None:
        text += f" (n={view.n_note})"
    return text


def render_markdown(table: Table) -> str:
    """Caption line, blank line, GitHub pipe table."""
    lines = [_caption(table, _MD, lambda s: s), ""]
    lines.append("| Norm | " + " | ".join(_md_escape(c.label) for c in table.columns) + " |")
    lines.append("|:--|" + "--:|" * len(table.columns))
    for row in table.rows:
        cells = [_cell_text(table.view(row, c), _MD) for c in table.columns]
        lines.append(f"| {_md_escape(row.label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def latex_label(table: Table) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9]+", "-", table.name).strip("-").lower()


def render_latex(table: Table) -> str:
    """A complete table environment (needs \\usepackage{booktabs})."""
    cols = "l" + "r" * len(table.columns)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_caption(table, _TEX, latex_escape)}}}",
        f"\\label{{{latex_label(table)}}}",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        "Norm & " + " & ".join(latex_escape(c.label) for c in table.columns) + " \\\\",
        "\\midrule",
    ]
    for row in table.rows:
        cells = [_cell_text(table.view(row, c), _TEX) for c in table.columns]
        lines.append(f"{latex_escape(row.label)} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def render_html(table: Table) -> str:
    """The caption, then the table in a box that scrolls sideways on its own (narrow screens)."""
    esc = html.escape
    head = "".join(f"<th>{esc(c.label)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for column in table.columns:
            view = table.view(row, column)
            safe = replace(view, mean=esc(view.mean), spread=esc(view.spread))
            cls = f' class="{view.kind.replace("/", "-")}"' if view.kind != "value" else ""
            cells.append(f"<td{cls}>{_cell_text(safe, _HTML)}</td>")
        body.append(f"<tr><th scope=\"row\">{esc(row.label)}</th>{''.join(cells)}</tr>")
    return (
        f"<p class=\"caption\" id=\"{esc(table.name)}__caption\">{_caption(table, _HTML, esc)}</p>\n"
        f"<div class=\"scroll\"><table id=\"{esc(table.name)}\" aria-describedby=\"{esc(table.name)}__caption\">\n"
        f"<thead><tr><th>Norm</th>{head}</tr></thead>\n"
        "<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table></div>\n"
    )


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _pairs(pairs) -> str:
    return ";".join(f"{k}={format_scalar(v)}" for k, v in pairs)


def render_csv(tables: Iterable[Table]) -> str:
    """Long format, one row per existing cell (not the average column), raw units (fractions as fractions).

    `context` is the table's context words (what tells it apart from the other
    tables of its task, dataset and model), `coordinates` every grid coordinate
    of the cell (`k=v;k=v`), `interval` the declared interval metric and
    `interval_half_width` the 95% half-width the table shows after the ±.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for table in tables:
        decl = table.decl
        for row in table.rows:
            for column in table.axis_columns:
                cell = row.cells.get(column.value)  # type: ignore[arg-type]
                if cell is None:
                    continue
                writer.writerow([
                    cell.task, cell.dataset, cell.model, cell.metric, cell.norm, row.label,
                    "" if cell.norm_num_groups is None else cell.norm_num_groups, cell.batch_size,
                    cell.n, cell.n_failed, cell.n_diverged, _num(cell.mean), _num(cell.std),
                    _num(cell.p_vs_bn), str(cell.beats_bn).lower(),
                    str((row.norm, column) in table.best).lower(),
                    _pairs(cell.coordinates), table.context.axis, format_scalar(cell.axis_value),
                    cell.axis_label, ";".join(table.parts), decl.unit, decl.direction, decl.interval or "",
                    _num(cell.half_width), cell.test, " ".join(map(str, cell.seeds)), row.norm,
                    *csv_values(cell.comparison),
                ])
    return out.getvalue()
