"""Spell printed tables in Markdown (GitHub pipe tables), LaTeX (booktabs), HTML and CSV.

Every renderer reads the same :class:`~reports.tables.CellView` decisions, so a
bold cell or a significance mark is the same in the paper, on GitHub and in the
spreadsheet. A printed table (:class:`~reports.layout.TableSet`) is one metric,
or a declared group of metrics under a two-level header; its caption is two
sentences and the rest are notes under it (:mod:`reports.captions`). LaTeX is
sized to fit a 6.5 in text width: ``\\small`` and narrow column gaps, and a
``table*`` in ``\footnotesize`` for a group over several axis values. Output is
a pure function of the tables: golden-file testable.
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import replace
from typing import Iterable

from .captions import caption, notes
from .family import CSV_COLUMNS as STAT_COLUMNS
from .family import csv_values
from .layout import SetColumn, TableSet
from .record import format_scalar
from .tables import MISSING, CellView, Table

CSV_COLUMNS = (
    "task", "dataset", "model", "metric", "norm", "norm_label", "norm_num_groups", "batch_size",
    "n", "n_failed", "n_diverged", "mean", "std", "p_vs_bn", "beats_bn", "best",
    "coordinates", "axis", "axis_value", "axis_label", "context", "unit", "direction", "interval",
    "interval_half_width", "test", "seeds", "row", *STAT_COLUMNS, "table",
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


def _cell_text(view: CellView, sym: dict, stacked: bool = False) -> str:
    """The cell in one line, or (`stacked`, LaTeX) the spread and seed count in small type under the mean."""
    if view.kind == "missing":
        return sym["dash"]
    if view.kind != "value":
        return view.kind
    spread = f"{sym['pm']} {view.spread}" if view.spread else ""
    text = view.mean if stacked else " ".join(w for w in (view.mean, spread) if w)
    if view.bold:
        text = sym["bold"](text)
    marks = (sym["sig"] if view.significant else "") + (sym["dagger"] if view.partial else "")
    if marks:
        text += sym["sup"](marks)
    n_note = f"(n={view.n_note})" if view.n_note is not None else ""
    if not stacked:
        return f"{text} {n_note}" if n_note else text
    under = " ".join(w for w in (spread, n_note) if w)
    return tex_stack(text, f"\\scriptsize {under}") if under else text


def tex_stack(*lines: str) -> str:
    """Lines stacked right-aligned in one cell, the first on the row's baseline (so it lines up with the label)."""
    return "\\begin{tabular}[t]{@{}r@{}}" + "\\\\".join(lines) + "\\end{tabular}"


def as_set(table: Table | TableSet) -> TableSet:
    """A lone Table prints as a set of one, named after its internal key."""
    return table if isinstance(table, TableSet) else TableSet((table,), None, table.name)


def _view(ts: TableSet, rows: dict, column: SetColumn) -> CellView:
    row = rows.get(column.metric)
    return CellView("missing") if row is None else column.table.view(row, column.column)


def render_markdown(table: Table | TableSet) -> str:
    """Caption line, blank line, GitHub pipe table (one header level: `bs=2: FGSM`), notes as a list."""
    ts = as_set(table)
    lines = [caption(ts, _MD, lambda s: s), ""]
    lines.append("| Norm | " + " | ".join(_md_escape(ts.flat_header(c)) for c in ts.columns) + " |")
    lines.append("|:--|" + "--:|" * len(ts.columns))
    for _, label, rows in ts.rows():
        cells = [_cell_text(_view(ts, rows, c), _MD) for c in ts.columns]
        lines.append(f"| {_md_escape(label)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {note}" for note in notes(ts, _MD, lambda s: s)]
    return "\n".join(lines) + "\n"


def latex_label(table: Table | TableSet) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9]+", "-", as_set(table).file).strip("-").lower()


def latex_wide(ts: TableSet) -> bool:
    """A group over several axis values: a table* whose cells stack the ± under the mean to fit 6.5 in."""
    return ts.grouped and not ts.single_value


def _latex_header(ts: TableSet) -> list[str]:
    rows = ts.header_rows()
    if len(rows) == 1:
        return ["Norm & " + " & ".join(latex_escape(h.text) for h in rows[0]) + " \\\\"]
    top, rules, start = [], [], 2
    for h in rows[0]:
        top.append(f"\\multicolumn{{{h.span}}}{{c}}{{{latex_escape(h.text)}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + h.span - 1}}}")
        start += h.span
    return [" & " + " & ".join(top) + " \\\\", "".join(rules),
            "Norm & " + " & ".join(latex_escape(h.text) for h in rows[1]) + " \\\\"]


def render_latex(table: Table | TableSet) -> str:
    """A complete table environment (needs \\usepackage{booktabs}); the notes under the tabular."""
    ts = as_set(table)
    env = "table*" if latex_wide(ts) else "table"
    size = "\\footnotesize" if latex_wide(ts) else "\\small"
    lines = [
        f"\\begin{{{env}}}[t]", "\\centering", size, "\\setlength{\\tabcolsep}{4pt}",
        f"\\caption{{{caption(ts, _TEX, latex_escape)}}}",
        f"\\label{{{latex_label(ts)}}}",
        f"\\begin{{tabular}}{{l{'r' * len(ts.columns)}}}",
        "\\toprule", *_latex_header(ts), "\\midrule",
    ]
    for _, label, rows in ts.rows():
        cells = [_cell_text(_view(ts, rows, c), _TEX, stacked=latex_wide(ts)) for c in ts.columns]
        lines.append(f"{latex_escape(label)} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", *latex_notes(notes(ts, _TEX, latex_escape)), f"\\end{{{env}}}"]
    return "\n".join(lines) + "\n"


def latex_notes(lines: list[str]) -> list[str]:
    """Notes under a tabular, full width, small and ragged right."""
    return ["\\par\\smallskip", "\\begin{minipage}{\\linewidth}\\scriptsize\\raggedright",
            *(f"{line}\\par" for line in lines), "\\end{minipage}"]


def _html_header(ts: TableSet) -> str:
    esc = html.escape
    rows = ts.header_rows()
    if len(rows) == 1:
        return "<tr><th>Norm</th>" + "".join(f"<th>{esc(h.text)}</th>" for h in rows[0]) + "</tr>"
    top = "".join(f'<th colspan="{h.span}" scope="colgroup">{esc(h.text)}</th>' for h in rows[0])
    return (f'<tr><th rowspan="2">Norm</th>{top}</tr>\n'
            "<tr>" + "".join(f"<th>{esc(h.text)}</th>" for h in rows[1]) + "</tr>")


def render_html(table: Table | TableSet) -> str:
    """The caption, the table in a box that scrolls sideways on its own (narrow screens), the notes."""
    ts = as_set(table)
    esc = html.escape
    body = []
    for _, label, rows in ts.rows():
        cells = []
        for column in ts.columns:
            view = _view(ts, rows, column)
            safe = replace(view, mean=esc(view.mean), spread=esc(view.spread))
            cls = f' class="{view.kind.replace("/", "-")}"' if view.kind != "value" else ""
            cells.append(f"<td{cls}>{_cell_text(safe, _HTML)}</td>")
        body.append(f"<tr><th scope=\"row\">{esc(label)}</th>{''.join(cells)}</tr>")
    name = esc(ts.file)
    listed = "".join(f"<li>{n}</li>" for n in notes(ts, _HTML, esc))
    return (
        f"<p class=\"caption\" id=\"{name}__caption\">{caption(ts, _HTML, esc)}</p>\n"
        f"<div class=\"scroll\"><table id=\"{name}\" aria-describedby=\"{name}__caption\">\n"
        f"<thead>{_html_header(ts)}</thead>\n"
        "<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table></div>\n"
        f"<ul class=\"notes\">{listed}</ul>\n"
    )


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _pairs(pairs) -> str:
    return ";".join(f"{k}={format_scalar(v)}" for k, v in pairs)


def render_csv(tables: Iterable[Table], sets: Iterable[TableSet] = ()) -> str:
    """Long format, one row per existing cell (not the average column), raw units (fractions as fractions).

    `context` is the table's context words (what tells it apart from the other
    tables of its task, dataset and model), `coordinates` every grid coordinate
    of the cell (`k=v;k=v`), `interval` the declared interval metric and
    `interval_half_width` the 95% half-width the table shows after the ±; `table` the
    printed table's file stem (from `sets`; the internal key without them).
    """
    printed = {t.name: ts.file for ts in sets for t in ts.tables}
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
                    *csv_values(cell.comparison), printed.get(table.name, table.name),
                ])
    return out.getvalue()
