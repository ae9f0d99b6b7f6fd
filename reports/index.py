"""The pages a person opens first: index.md, and index.html with one HTML page per task.

They say what was collected (finished, failed, diverged, incomplete, skipped),
show the cross-task summary first, then every task's tables and figures, and
link the LaTeX and CSV files. The HTML pages (:mod:`reports.html_pages`) inline
their CSS and embed their figures, so they open offline, from an e-mail
attachment or a copied folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .collect import Collection
from .layout import TableSet
from .render import render_markdown
from .summary import SummaryTable
from .summary_render import render_summary_markdown
from .tables import Table, task_order

TITLE = "normbench report"
_MAX_LISTED = 20  # incomplete runs / problems listed by name; the rest are counted


@dataclass
class ReportFiles:
    """Paths of everything the report wrote, for links (all inside out_dir)."""

    out_dir: Path
    tables_md: Path
    tables_tex: Path
    tables_csv: Path
    manifest: Path | None = None  # tables/manifest.json: what each printed table file holds
    table_tex: dict[str, Path] = field(default_factory=dict)  # per table name: its printed table's file
    figures: dict[str, list[Path]] = field(default_factory=dict)  # per table name: png, svg, ...
    figure_titles: dict[Path, str] = field(default_factory=dict)  # titles of figures not named by a suffix
    summary_md: Path | None = None
    summary_tex: Path | None = None
    summary_csv: Path | None = None
    wandb_spec: Path | None = None
    notes: list[str] = field(default_factory=list)  # things the reader should know (episode pairing refused, ...)


def rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


_SUFFIX_TITLES = {
    "__bgn_vs_groups": "metric vs G (BGN)",
    "__clean_vs_robust": "clean vs robust accuracy, one point per norm",
    "__by_norm": "per norm, with 95% CI",
    "__bars": "per column, bars per norm",
    "__noise_vs_batch_size": "noise of batch statistics vs batch size (diagnostics)",
    "__confusion_vs_groups": "confusion of pooled statistics vs G (diagnostics)",
    "__metric_vs_elements": "metric vs elements per statistic (diagnostics)",
}


def figure_title(path: Path, table: Table, files: ReportFiles | None = None) -> str:
    if files is not None and path.with_suffix(".png") in files.figure_titles:
        return files.figure_titles[path.with_suffix(".png")]
    for suffix, title in _SUFFIX_TITLES.items():
        if path.stem.endswith(suffix):
            return title
    return "metric vs batch size" if table.on_batch_axis else f"metric vs {table.axis_label}"


def counts(collection: Collection) -> list[tuple[str, int]]:
    return [
        ("finished", collection.count("finished")),
        ("failed", collection.count("failed")),
        ("diverged", collection.count("diverged")),
        ("incomplete", len(collection.incomplete)),
        ("skipped (malformed)", len(collection.problems)),
    ]


def notes(collection: Collection, files: ReportFiles) -> list[str]:
    """Plain-text lines about incomplete runs, skipped records and what the report could not use."""
    lines = []
    root = collection.root
    if collection.incomplete:
        names = ", ".join(rel(p, root) for p in collection.incomplete[:_MAX_LISTED])
        more = len(collection.incomplete) - _MAX_LISTED
        tail = f" and {more} more" if more > 0 else ""
        count = len(collection.incomplete)
        runs = f"{count} run is" if count == 1 else f"{count} runs are"
        lines.append(f"{runs} still incomplete (no result.json yet): {names}{tail}")
    for name, items in (("skipped records", collection.problems), ("warnings", collection.warnings),
                        ("notes", files.notes)):
        lines += items[:_MAX_LISTED]
        if len(items) > _MAX_LISTED:
            lines.append(f"... and {len(items) - _MAX_LISTED} more {name}")
    return lines


def file_links(files: ReportFiles) -> list[tuple[str, Path]]:
    links = []
    if files.summary_tex is not None and files.summary_csv is not None:
        links += [("summary (LaTeX)", files.summary_tex), ("summary (CSV)", files.summary_csv)]
    links += [("all tables (Markdown)", files.tables_md), ("all tables (LaTeX)", files.tables_tex),
              ("all cells (CSV)", files.tables_csv)]
    if files.manifest is not None:
        links.append(("table files (manifest)", files.manifest))
    if files.wandb_spec is not None:
        links.append(("W&B report specification (JSON)", files.wandb_spec))
    return links


def tasks_of(tables: list[Table] | list[TableSet]) -> list[str]:
    return sorted({t.first.task if isinstance(t, TableSet) else t.task for t in tables}, key=task_order)


def set_title(ts: TableSet) -> str:
    """A printed table's heading on the pages: its file stem and what it shows."""
    shown = ts.group if ts.grouped else ts.first.metric
    return f"{ts.file}: {shown}"


def render_index_md(collection: Collection, sets: list[TableSet], files: ReportFiles,
                    summary: SummaryTable | None = None) -> str:
    out = files.out_dir
    lines = [f"# {TITLE}", "", f"Runs folder: `{collection.root}`", ""]
    found = counts(collection)
    lines += ["| " + " | ".join(name for name, _ in found) + " |", "|" + "--:|" * len(found),
              "| " + " | ".join(str(n) for _, n in found) + " |", ""]
    listed = notes(collection, files)
    lines += [f"- {note}" for note in listed] + ([""] if listed else [])
    lines.append("Files: " + " · ".join(f"[{name}]({rel(p, out)})" for name, p in file_links(files)))
    if summary is not None and summary.columns:
        lines += ["", "## Cross-task summary", "", render_summary_markdown(summary).rstrip("\n")]
    for task in tasks_of(sets):
        lines += ["", f"## {task}"]
        last_heading = None
        for ts in (s for s in sets if s.first.task == task):
            if ts.first.heading != last_heading:
                last_heading = ts.first.heading
                lines += ["", f"### {last_heading}"]
            lines += ["", f"#### {set_title(ts)}", "", render_markdown(ts).rstrip("\n"), ""]
            extra = []
            if ts.first.name in files.table_tex:
                extra.append(f"[LaTeX]({rel(files.table_tex[ts.first.name], out)})")
            for table in ts.tables:
                for path in files.figures.get(table.name, []):
                    title = figure_title(path, table, files)
                    if path.suffix == ".png":
                        lines += [f"![{table.metric}: {title}]({rel(path, out)})", ""]
                    extra.append(f"[{title} ({path.suffix[1:].upper()})]({rel(path, out)})")
            if extra:
                lines.append("Files: " + " · ".join(extra))
    if not sets:
        lines += ["", "No finished runs to tabulate yet."]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_index(collection: Collection, sets: list[TableSet], files: ReportFiles,
                summary: SummaryTable | None = None) -> tuple[Path, Path]:
    """Write index.md, index.html and one HTML page per task into files.out_dir; returns the two index paths."""
    from .html_pages import write_html_pages

    md_path = files.out_dir / "index.md"
    md_path.write_text(render_index_md(collection, sets, files, summary), encoding="utf-8")
    html_path = write_html_pages(collection, sets, files, summary)
    return md_path, html_path
