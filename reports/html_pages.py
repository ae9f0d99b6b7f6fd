"""index.html (counts, notes, the cross-task summary) and one page per task, readable on a phone.

Each page is self-contained: inline CSS, figures embedded as base64 PNG (the
SVGs are linked for papers), no script and nothing fetched, so a page opens
offline and from a copied folder; pages link each other by relative paths. On a
narrow screen the page never scrolls sideways: text wraps, figures shrink to
the width, and a wide table scrolls inside its own box
(``.scroll{overflow-x:auto}``), which the browser test checks at 390 px.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .collect import Collection
from .index import TITLE, ReportFiles, counts, figure_title, file_links, notes, rel, set_title, tasks_of
from .layout import TableSet
from .render import render_html
from .summary import SummaryTable
from .summary_render import render_summary_html
from .tables import Table

CSS = """
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;margin:0 auto;
padding:1em;color:#1b1b1b;line-height:1.45;overflow-wrap:anywhere}
h1{font-size:1.6em;margin:.4em 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin-top:1.4em}h4{margin:1.2em 0 .3em}
nav{display:flex;flex-wrap:wrap;gap:.3em .9em;padding:.5em 0;border-bottom:1px solid #ddd}
nav a{text-decoration:none}nav a[aria-current]{font-weight:bold;color:#1b1b1b}
.scroll{overflow-x:auto;max-width:100%;margin:.4em 0 1em}
table{border-collapse:collapse;font-size:.92em}
.caption{font-size:.85em;color:#444;max-width:60em;margin:.3em 0}
ul.notes{font-size:.8em;color:#444;max-width:60em;margin:.2em 0 1em}
thead th[colspan]{text-align:center;border-bottom:1px solid #333}thead th[rowspan]{text-align:left}
th,td{padding:.25em .7em;border-top:1px solid #e3e3e3;text-align:right;white-space:nowrap}
thead th{border-bottom:2px solid #333;border-top:2px solid #333;vertical-align:bottom}
thead th small{font-weight:normal;color:#555}
#cross-task-summary{font-size:.86em}#cross-task-summary td,#cross-task-summary th{padding:.25em .5em}
#cross-task-summary thead th{white-space:normal;overflow-wrap:normal;min-width:6em;max-width:10em}
tbody tr:last-child th,tbody tr:last-child td{border-bottom:2px solid #333}
th[scope=row]{text-align:left;font-weight:normal}
.scroll th[scope=row],.scroll thead th:first-child{position:sticky;left:0;background:#fff}
td.missing,td.failed,td.diverged,td.failed-diverged,td.n-a{color:#888}
.counts td{text-align:center}
.figs{display:flex;flex-wrap:wrap;gap:1em}
.figs figure{margin:0;flex:1 1 300px;max-width:560px}.figs figure.wide{flex-basis:100%;max-width:900px}
.figs img{display:block;width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.8em;color:#444}
code{background:#f4f4f4;padding:0 .2em}.warn{color:#8a4b00}
ul{padding-left:1.2em}
@media (max-width:600px){body{padding:.6em}h1{font-size:1.3em}table{font-size:.85em}}
"""


def task_page_name(task: str) -> str:
    return f"task-{task}.html"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _page(title: str, nav: str, body: list[str]) -> str:
    esc = html.escape
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>", nav, *body,
        "</body>", "</html>",
    ]) + "\n"


def _nav(tasks: list[str], current: str | None) -> str:
    links = [("index.html", "Summary", current is None)]
    links += [(task_page_name(t), t, t == current) for t in tasks]
    current_mark = ' aria-current="page"'
    items = "".join(f'<a href="{html.escape(href)}"{current_mark if here else ""}>{html.escape(label)}</a>'
                    for href, label, here in links)
    return f'<nav aria-label="report pages">{items}</nav>'


def _figures(table: Table, files: ReportFiles) -> str:
    out = files.out_dir
    figures = []
    for png in (p for p in files.figures.get(table.name, []) if p.suffix == ".png"):
        title = figure_title(png, table, files)
        svg = png.with_suffix(".svg")
        link = f' <a href="{html.escape(rel(svg, out))}">SVG</a>' if svg in files.figures[table.name] else ""
        wide = ' class="wide"' if png in files.figure_titles else ""
        figures.append(f"<figure{wide}>{_img(png, f'{table.metric}: {title}')}"
                       f"<figcaption>{html.escape(title)}{link}</figcaption></figure>")
    return f'<div class="figs">{"".join(figures)}</div>' if figures else ""


def render_task_page(task: str, sets: list[TableSet], files: ReportFiles, tasks: list[str]) -> str:
    esc = html.escape
    body = [f"<h1>{esc(TITLE)}: {esc(task)}</h1>"]
    last_heading = None
    for ts in (s for s in sets if s.first.task == task):
        if ts.first.heading != last_heading:
            last_heading = ts.first.heading
            body.append(f"<h2>{esc(last_heading)}</h2>")
        body += [f"<h3>{esc(set_title(ts))}</h3>", render_html(ts)]
        if ts.first.name in files.table_tex:
            body.append(f'<p><a href="{esc(rel(files.table_tex[ts.first.name], files.out_dir))}">LaTeX</a></p>')
        body += [_figures(table, files) for table in ts.tables]
    return _page(f"{TITLE}: {task}", _nav(tasks, task), body)


def render_index_page(collection: Collection, sets: list[TableSet], files: ReportFiles,
                      summary: SummaryTable | None) -> str:
    esc = html.escape
    tasks = tasks_of(sets)
    body = [f"<h1>{esc(TITLE)}</h1>", f"<p>Runs folder: <code>{esc(str(collection.root))}</code></p>"]
    found = counts(collection)
    body.append('<div class="scroll"><table class="counts"><thead><tr>'
                + "".join(f"<th>{esc(n)}</th>" for n, _ in found) + "</tr></thead><tbody><tr>"
                + "".join(f"<td>{k}</td>" for _, k in found) + "</tr></tbody></table></div>")
    listed = notes(collection, files)
    if listed:
        body.append('<ul class="warn">' + "".join(f"<li>{esc(n)}</li>" for n in listed) + "</ul>")
    body.append("<p>Files: " + " · ".join(
        f'<a href="{esc(rel(p, files.out_dir))}">{esc(name)}</a>' for name, p in file_links(files)) + "</p>")
    if summary is not None and summary.columns:
        body += ['<h2 id="summary">Cross-task summary</h2>', render_summary_html(summary)]
    if tasks:
        count = {t: sum(ts.first.task == t for ts in sets) for t in tasks}
        body.append("<h2>Tasks</h2><ul>" + "".join(
            f'<li><a href="{task_page_name(t)}">{esc(t)}</a>: {count[t]} table{"s" if count[t] != 1 else ""}</li>'
            for t in tasks) + "</ul>")
    else:
        body.append("<p>No finished runs to tabulate yet.</p>")
    return _page(TITLE, _nav(tasks, None), body)


def write_html_pages(collection: Collection, sets: list[TableSet], files: ReportFiles,
                     summary: SummaryTable | None) -> Path:
    """index.html and task-<task>.html for every task; returns the index's path."""
    tasks = tasks_of(sets)
    for task in tasks:
        (files.out_dir / task_page_name(task)).write_text(render_task_page(task, sets, files, tasks),
                                                          encoding="utf-8")
    index = files.out_dir / "index.html"
    index.write_text(render_index_page(collection, sets, files, summary), encoding="utf-8")
    return index
