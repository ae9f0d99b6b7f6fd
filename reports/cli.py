"""`normbench report RUNS_DIR`: tables, plots, an index page and a W&B report.

Exit codes: 0 written; 1 written locally but publishing the W&B report (or
another output step) failed; 2 bad input (missing folder, no records, bad
arguments). Every failure is one line on stderr, never a traceback: the report
is often run at the end of a long sweep, where a clear sentence matters more
than a stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cells import plot_genotypes
from .collect import Collection, collect_runs
from .contrasts import compute_contrasts, render_contrasts_csv
from .diagnostics_plots import plot_diagnostics
from .family import parse_hypotheses
from .index import ReportFiles, write_index
from .layout import TableSet, manifest_json, table_sets
from .plots import plot_tables
from .render import render_csv, render_latex, render_markdown
from .summary import SummaryTable, build_summary
from .summary_render import render_summary_csv, render_summary_latex, render_summary_markdown
from .tables import Table, tables_from_records
from .task_plots import plot_task_figures

PROG = "normbench report"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Turn a folder of run records (result.json) into paper-style tables "
        "(Markdown, LaTeX, CSV), plots, an index page and optionally a W&B report.",
    )
    parser.add_argument("runs_dir", metavar="RUNS_DIR", type=Path,
                        help="folder searched recursively for result.json, e.g. runs/quick")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: RUNS_DIR/report)")
    parser.add_argument("--wandb", default=None, metavar="ENTITY/PROJECT",
                        help="also build a W&B report for this project and publish it")
    parser.add_argument("--wandb-build-only", action="store_true",
                        help="with --wandb: build the report and write its JSON, do not publish")
    parser.add_argument("--title", default=None, help="title of the W&B report")
    parser.add_argument("--reference", default=None, metavar="NORM",
                        help="norm spec every other norm is compared with (default: the records' reference_norm, "
                             "else bn)")
    parser.add_argument("--print", dest="show", choices=("all", "summary", "none"), default="all",
                        help="what to print: the main table of every task and the cross-task summary (all, the "
                             "default), only the summary, or nothing but the paths")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _write_tables(tables: list[Table], sets: list[TableSet], out: Path) -> ReportFiles:
    """All tables in one file per format, one LaTeX file per printed table, and the manifest of those files."""
    table_dir = out / "tables"
    table_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out_dir=out, tables_md=table_dir / "tables.md",
                        tables_tex=table_dir / "tables.tex", tables_csv=table_dir / "tables.csv",
                        manifest=table_dir / "manifest.json")
    files.tables_md.write_text("\n".join(render_markdown(ts) for ts in sets), encoding="utf-8")
    files.tables_tex.write_text(
        "% needs \\usepackage{booktabs}\n" + "\n".join(render_latex(ts) for ts in sets), encoding="utf-8")
    files.tables_csv.write_text(render_csv(tables, sets), encoding="utf-8")
    assert files.manifest is not None
    files.manifest.write_text(manifest_json(sets), encoding="utf-8")
    for ts in sets:
        path = table_dir / f"{ts.file}.tex"
        path.write_text(render_latex(ts), encoding="utf-8")
        for table in ts.tables:
            files.table_tex[table.name] = path
    return files


def _write_summary(summary: SummaryTable, files: ReportFiles) -> None:
    out = files.out_dir
    files.summary_md, files.summary_tex, files.summary_csv = out / "summary.md", out / "summary.tex", out / "summary.csv"
    files.summary_md.write_text(render_summary_markdown(summary), encoding="utf-8")
    files.summary_tex.write_text("% needs \\usepackage{booktabs}\n" + render_summary_latex(summary), encoding="utf-8")
    files.summary_csv.write_text(render_summary_csv(summary), encoding="utf-8")


def _figures(collection: Collection, tables: list[Table], files: ReportFiles) -> None:
    """Every figure, keyed by the table it illustrates; NAS cells go with their context's primary table."""
    plots = files.out_dir / "plots"
    files.figures = plot_tables(tables, plots)
    for name, paths in plot_task_figures(tables, plots).items():
        files.figures.setdefault(name, []).extend(paths)
    for name, paths in plot_diagnostics(collection.records, tables, plots).items():  # --diagnostics.norm_stats runs
        files.figures.setdefault(name, []).extend(paths)
    cells, problems = plot_genotypes(collection.records, plots)
    files.notes += problems
    primary = {t.context: t.name for t in tables if t.primary}
    for figure in cells:
        name = primary.get(figure.runs[0].context)
        if name is not None and figure.paths:
            files.figures.setdefault(name, []).extend(figure.paths)
            files.figure_titles[figure.paths[0]] = figure.title


def _table_notes(tables: list[Table]) -> list[str]:
    """Why outcome files were not used, and why a comparison fell back to a coarser test, once each."""
    found: list[str] = []
    for table in tables:
        for row in table.rows:
            for cell in row.cells.values():
                found += cell.notes
                if cell.comparison is not None:
                    found += cell.comparison.notes
                    if cell.comparison.made and cell.comparison.fallback:
                        found.append(f"{table.name}: {row.label} at {cell.axis_label}: {cell.comparison.fallback}")
    return list(dict.fromkeys(found))


def _write_contrasts(collection: Collection, tables: list[Table], files: ReportFiles) -> None:
    """tables/contrasts.csv when the records declare difference-in-differences contrasts."""
    cells = [c for t in tables for row in t.rows for c in row.cells.values()]
    contrasts, problems = compute_contrasts(cells, collection.records)
    files.notes += problems + parse_hypotheses(collection.records)[1]
    if contrasts:
        (files.out_dir / "tables" / "contrasts.csv").write_text(render_contrasts_csv(contrasts), encoding="utf-8")


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _no_records_message(collection: Collection) -> str:
    extra = []
    if collection.incomplete:
        extra.append(f"{_runs(len(collection.incomplete))} still incomplete")
    if collection.problems:
        extra.append(f"{len(collection.problems)} malformed records skipped")
    tail = f" ({'; '.join(extra)})" if extra else ""
    return f"no run records (result.json) found under {collection.root}{tail}"


def _wandb(args: argparse.Namespace, collection: Collection, tables: list[Table], files: ReportFiles,
           summary: SummaryTable):
    """Build the W&B report and write its JSON; returns the report (None on failure)."""
    try:
        from .wandb_report import DEFAULT_TITLE, build_wandb_report, report_spec
    except ImportError as exc:
        print(f"{PROG}: error: the W&B report needs the optional packages "
              f"(pip install 'normbench[wandb]'): {exc}", file=sys.stderr)
        return None
    entity, project = args.wandb.split("/", 1)
    try:
        report = build_wandb_report(collection.records, entity, project,
                                    title=args.title or DEFAULT_TITLE, tables=tables, summary=summary)
    except Exception as exc:  # noqa: BLE001 - a library validation error must not hide the local report
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"{PROG}: error: building the W&B report failed: {first}", file=sys.stderr)
        return None
    files.wandb_spec = files.out_dir / "wandb_report.json"
    files.wandb_spec.write_text(json.dumps(report_spec(report), indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point of `normbench report` and `python -m reports`; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage and the reason
        return int(exc.code or 0)
    if args.wandb is not None:
        entity, _, project = args.wandb.partition("/")
        if not entity or not project or "/" in project:
            return _fail(f"--wandb wants ENTITY/PROJECT, got {args.wandb!r}", 2)
    elif args.wandb_build_only:
        return _fail("--wandb-build-only needs --wandb ENTITY/PROJECT", 2)

    runs_dir: Path = args.runs_dir
    if not runs_dir.exists():
        return _fail(f"runs folder not found: {runs_dir}", 2)
    if not runs_dir.is_dir():
        return _fail(f"not a folder: {runs_dir}", 2)
    out: Path = args.out if args.out is not None else runs_dir / "report"

    collection = collect_runs(runs_dir, exclude=[out])
    for problem in collection.problems + collection.warnings:
        print(f"{PROG}: warning: {problem}", file=sys.stderr)
    if not collection.records:
        return _fail(_no_records_message(collection), 2)

    code = 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        tables = tables_from_records(collection.records, args.reference)
        summary = build_summary(collection.records, args.reference)
        sets = table_sets(tables, collection.records)
        files = _write_tables(tables, sets, out)
        files.notes += _table_notes(tables) + list(summary.problems)
        _write_contrasts(collection, tables, files)
        _write_summary(summary, files)
        _figures(collection, tables, files)
        report = _wandb(args, collection, tables, files, summary) if args.wandb else None
        if args.wandb and report is None:
            code = 1
        md_path, html_path = write_index(collection, sets, files, summary)
    except OSError as exc:
        return _fail(f"cannot write the report to {out}: {exc}", 1)

    for note in files.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    if args.show == "all":
        for ts in sets:
            if any(t.primary for t in ts.tables):
                print(render_markdown(ts))
    if args.show != "none" and summary.columns:
        print(render_summary_markdown(summary))
    if collection.incomplete:
        print(f"{_runs(len(collection.incomplete))} still incomplete.")
    print(f"Report: {md_path}")
    print(f"        {html_path}")
    if report is not None and not args.wandb_build_only:
        from .wandb_report import WandbPublishError, publish_wandb_report

        sys.stdout.flush()  # the publish line comes last, after the local results
        try:
            print(f"W&B report: {publish_wandb_report(report)}")
        except WandbPublishError as exc:
            code = _fail(str(exc), 1)
    return code
