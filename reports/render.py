"""Spell tables in Markdown (GitHub pipe tables), LaTeX (booktabs), HTML and CSV.

Every renderer reads the same :class:`~reports.tables.CellView` decisions, so a
bold cell or a significance mark is the same in the paper, on GitHub and in the
spreadsheet. Output is a pure function of the tables: golden-file testable.
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import replace
from typing import Iterable

from .stats import ALPHA, MIN_SEEDS_FOR_TEST
from .tables import MISSING, CellView, Table

CSV_COLUMNS = (
    "task", "dataset", "model", "metric", "norm", "norm_label", "norm_num_groups", "batch_size",
    "n", "n_failed", "n_diverged", "mean", "std", "p_vs_bn", "beats_bn", "best",
)

# Per-format spelling of the symbols a caption and a cell use.
_MD = {"lt": "<", "pm": "±", "sig": "*", "dagger": "†", "dash": MISSING, "geq": "≥",
       "bold": lambda s: f"**{s}**", "sup": lambda s: f"<sup>{s}</sup>"}
_HTML = {**_MD, "lt": "&lt;", "bold": lambda s: f"<b>{s}</b>"}
_TEX = {"lt": "$<$", "pm": "$\\pm$", "sig": "*", "dagger": "\\dagger", "dash": "--", "geq": "$\\geq$",
        "bold": lambda s: f"\\textbf{{{s}}}", "sup": lambda s: f"$^{{{s}}}$"}

_TEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _caption(table: Table, sym: dict, esc) -> str:
    """What the cells are, what the marks mean and which test made them."""
    unit = " (%)" if table.unit == "%" else ""
    direction = "higher" if table.mode == "max" else "lower"
    seeds = f"n={table.modal_n} unless marked" if table.modal_n else "no finished seeds"
    parts = [
        f"{esc(table.task)} / {esc(table.dataset)} / {esc(table.model)}: {esc(table.metric)}{unit}, "
        f"mean {sym['pm']} sample std over seeds ({seeds}); rows: normalization, "
        f"columns: batch size per device.",
        f"{sym['bold']('Bold')}: best mean per batch size ({direction} is better).",
    ]
    if table.has_bn:
        parts.append(
            f"{sym['sup'](sym['sig'])}: significantly better than BN at the same batch size "
            f"(one-sided Welch's t-test, p {sym['lt']} {ALPHA:g}, {sym['geq']} {MIN_SEEDS_FOR_TEST} "
            f"finished seeds in both cells)."
        )
    else:
        parts.append("No BN row, so no significance test.")
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
    text = f"{view.mean} {sym['pm']} {view.std}" if view.std else view.mean
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
    lines.append("| Norm | " + " | ".join(f"bs={bs}" for bs in table.batch_sizes) + " |")
    lines.append("|:--|" + "--:|" * len(table.batch_sizes))
    for row in table.rows:
        cells = [_cell_text(table.view(row, bs), _MD) for bs in table.batch_sizes]
        lines.append(f"| {_md_escape(row.label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def latex_label(table: Table) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9]+", "-", table.name).strip("-").lower()


def render_latex(table: Table) -> str:
    """A complete table environment (needs \\usepackage{booktabs})."""
    cols = "l" + "r" * len(table.batch_sizes)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_caption(table, _TEX, latex_escape)}}}",
        f"\\label{{{latex_label(table)}}}",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        "Norm & " + " & ".join(f"bs={bs}" for bs in table.batch_sizes) + " \\\\",
        "\\midrule",
    ]
    for row in table.rows:
        cells = [_cell_text(table.view(row, bs), _TEX) for bs in table.batch_sizes]
        lines.append(f"{latex_escape(row.label)} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def render_html(table: Table) -> str:
    """An HTML table with the caption inside; styling comes from the page."""
    esc = html.escape
    head = "".join(f"<th>bs={bs}</th>" for bs in table.batch_sizes)
    body = []
    for row in table.rows:
        cells = []
        for bs in table.batch_sizes:
            view = table.view(row, bs)
            safe = replace(view, mean=esc(view.mean), std=esc(view.std))
            cls = f' class="{view.kind.replace("/", "-")}"' if view.kind != "value" else ""
            cells.append(f"<td{cls}>{_cell_text(safe, _HTML)}</td>")
        body.append(f"<tr><th scope=\"row\">{esc(row.label)}</th>{''.join(cells)}</tr>")
    return (
        f"<table id=\"{esc(table.name)}\">\n"
        f"<caption>{_caption(table, _HTML, esc)}</caption>\n"
        f"<thead><tr><th>Norm</th>{head}</tr></thead>\n"
        "<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n"
    )


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_csv(tables: Iterable[Table]) -> str:
    """Long format, one row per existing cell, raw units (accuracies as fractions)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for table in tables:
        for row in table.rows:
            for bs in table.batch_sizes:
                cell = row.cells.get(bs)
                if cell is None:
                    continue
                writer.writerow([
                    cell.task, cell.dataset, cell.model, cell.metric, cell.norm, row.label,
                    "" if cell.norm_num_groups is None else cell.norm_num_groups, bs,
                    cell.n, cell.n_failed, cell.n_diverged, _num(cell.mean), _num(cell.std),
                    _num(cell.p_vs_bn), str(cell.beats_bn).lower(),
                    str((row.norm, bs) in table.best).lower(),
                ])
    return out.getvalue()
