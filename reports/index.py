"""The page a person opens first: index.md and a self-contained index.html.

It says what was collected (finished, failed, diverged, incomplete, skipped),
shows every table and plot, and links the LaTeX and CSV files. The HTML page
inlines its CSS and embeds the plots as base64 PNG, so it opens offline, from an
e-mail attachment or a copied folder, without the files next to it.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from .collect import Collection
from .render import render_html, render_markdown
from .tables import Table

TITLE = "normbench report"
_MAX_LISTED = 20  # incomplete runs / problems listed by name; the rest are counted

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
caption{caption-side:top;text-align:left;font-size:.85em;color:#444;padding-bottom:.5em;max-width:60em}
th,td{padding:.25em .7em;border-top:1px solid #e3e3e3;text-align:right;white-space:nowrap}
thead th{border-bottom:2px solid #333;border-top:2px solid #333}
tbody tr:last-child th,tbody tr:last-child td{border-bottom:2px solid #333}
th[scope=row]{text-align:left;font-weight:normal}
td.missing,td.failed,td.diverged,td.failed-diverged{color:#999}
.counts td{text-align:center}.figs{display:flex;flex-wrap:wrap;gap:1em}
.figs figure{margin:0}.figs img{width:340px;height:auto;border:1px solid #eee}
code{background:#f4f4f4;padding:0 .2em}.warn{color:#8a4b00}
"""


@dataclass
class ReportFiles:
    """Paths of everything the report wrote, for links (all inside out_dir)."""

    out_dir: Path
    tables_md: Path
    tables_tex: Path
    tables_csv: Path
    table_tex: dict[str, Path] = field(default_factory=dict)  # per table name
    figures: dict[str, list[Path]] = field(default_factory=dict)  # per table name: png, svg, ...
    wandb_spec: Path | None = None


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _figure_title(path: Path, table: Table) -> str:
    if path.stem.endswith("__bgn_vs_groups"):
        return "metric vs G (BGN)"
    return "metric vs batch size" if table.on_batch_axis else f"metric vs {table.axis_label}"


def _counts(collection: Collection) -> list[tuple[str, int]]:
    return [
        ("finished", collection.count("finished")),
        ("failed", collection.count("failed")),
        ("diverged", collection.count("diverged")),
        ("incomplete", len(collection.incomplete)),
        ("skipped (malformed)", len(collection.problems)),
    ]


def _notes(collection: Collection) -> list[str]:
    """Plain-text lines about incomplete runs and skipped records."""
    notes = []
    root = collection.root
    if collection.incomplete:
        names = ", ".join(_rel(p, root) for p in collection.incomplete[:_MAX_LISTED])
        more = len(collection.incomplete) - _MAX_LISTED
        tail = f" and {more} more" if more > 0 else ""
        count = len(collection.incomplete)
        runs = f"{count} run is" if count == 1 else f"{count} runs are"
        notes.append(f"{runs} still incomplete (no result.json yet): {names}{tail}")
    for problem in collection.problems[:_MAX_LISTED]:
        notes.append(problem)
    if len(collection.problems) > _MAX_LISTED:
        notes.append(f"... and {len(collection.problems) - _MAX_LISTED} more skipped records")
    for warning in collection.warnings[:_MAX_LISTED]:
        notes.append(warning)
    if len(collection.warnings) > _MAX_LISTED:
        notes.append(f"... and {len(collection.warnings) - _MAX_LISTED} more warnings")
    return notes


def _file_links(files: ReportFiles) -> list[tuple[str, Path]]:
    links = [("all tables (Markdown)", files.tables_md), ("all tables (LaTeX)", files.tables_tex),
             ("all cells (CSV)", files.tables_csv)]
    if files.wandb_spec is not None:
        links.append(("W&B report specification (JSON)", files.wandb_spec))
    return links


def _heading(table: Table) -> str:
    """task / dataset / model and the table's context (coordinates, protocol, settings that vary)."""
    return table.heading


def render_index_md(collection: Collection, tables: list[Table], files: ReportFiles) -> str:
    out = files.out_dir
    lines = [f"# {TITLE}", "", f"Runs folder: `{collection.root}`", ""]
    counts = _counts(collection)
    lines += ["| " + " | ".join(name for name, _ in counts) + " |",
              "|" + "--:|" * len(counts),
              "| " + " | ".join(str(n) for _, n in counts) + " |", ""]
    for note in _notes(collection):
        lines += [f"- {note}"]
    if _notes(collection):
        lines.append("")
    lines.append("Files: " + " · ".join(f"[{name}]({_rel(p, out)})" for name, p in _file_links(files)))
    last_heading = None
    for table in tables:
        if _heading(table) != last_heading:
            last_heading = _heading(table)
            lines += ["", f"## {last_heading}"]
        lines += ["", f"### {table.metric}", "", render_markdown(table).rstrip("\n"), ""]
        extra = []
        if table.name in files.table_tex:
            extra.append(f"[LaTeX]({_rel(files.table_tex[table.name], out)})")
        for path in files.figures.get(table.name, []):
            if path.suffix == ".png":
                lines += [f"![{table.metric}: {_figure_title(path, table)}]({_rel(path, out)})", ""]
            extra.append(f"[{_figure_title(path, table)} ({path.suffix[1:].upper()})]({_rel(path, out)})")
        if extra:
            lines.append("Files: " + " · ".join(extra))
    if not tables:
        lines += ["", "No finished runs to tabulate yet."]
    return "\n".join(lines).rstrip("\n") + "\n"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_index_html(collection: Collection, tables: list[Table], files: ReportFiles) -> str:
    out, esc = files.out_dir, html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{esc(TITLE)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{esc(TITLE)}</h1>", f"<p>Runs folder: <code>{esc(str(collection.root))}</code></p>",
    ]
    counts = _counts(collection)
    parts.append('<table class="counts"><thead><tr>' + "".join(f"<th>{esc(n)}</th>" for n, _ in counts)
                 + "</tr></thead><tbody><tr>" + "".join(f"<td>{k}</td>" for _, k in counts)
                 + "</tr></tbody></table>")
    notes = _notes(collection)
    if notes:
        parts.append('<ul class="warn">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    parts.append("<p>Files: " + " · ".join(
        f'<a href="{esc(_rel(p, out))}">{esc(name)}</a>' for name, p in _file_links(files)) + "</p>")
    last_heading = None
    for table in tables:
        if _heading(table) != last_heading:
            last_heading = _heading(table)
            parts.append(f"<h2>{esc(last_heading)}</h2>")
        parts += [f"<h3>{esc(table.metric)}</h3>", render_html(table)]
        figures = [p for p in files.figures.get(table.name, []) if p.suffix == ".png"]
        if figures:
            images = (_img(p, f"{table.metric}: {_figure_title(p, table)}") for p in figures)
            parts.append('<div class="figs">' + "".join(f"<figure>{i}</figure>" for i in images) + "</div>")
    if not tables:
        parts.append("<p>No finished runs to tabulate yet.</p>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_index(collection: Collection, tables: list[Table], files: ReportFiles) -> tuple[Path, Path]:
    """Write index.md and index.html into files.out_dir; returns their paths."""
    md_path, html_path = files.out_dir / "index.md", files.out_dir / "index.html"
    md_path.write_text(render_index_md(collection, tables, files), encoding="utf-8")
    html_path.write_text(render_index_html(collection, tables, files), encoding="utf-8")
    return md_path, html_path
