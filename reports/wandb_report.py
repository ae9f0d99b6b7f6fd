"""A Weights & Biases Report that compares the norms per task, built offline.

The local tables are the reference; the W&B report is the interactive view of
the same runs (curves, per-run drill-down). It is built with
`wandb_workspaces.reports.v2` from the records alone, without a login or any
network call, so it can be inspected in tests and written as JSON; only
:func:`publish_wandb_report` talks to W&B, and it first checks for credentials
itself, because the library would otherwise fail deep inside a GraphQL call.

How runs are found in W&B (the contract with the run side): every run carries
its sweep name as a tag, its grid coordinates as flat config keys (task,
dataset, model, norm, norm_label, batch_size, seed, and the task's own
coordinates such as method or ways/shots), and a W&B group that holds every
coordinate but the seed, so grouping by group aggregates the seeds.

Which metrics the report shows and which direction is better come from the
records' metric declarations; the step curve is the metric the task declared
for checkpoint selection (none when it selects the last checkpoint). Each task
gets a bar chart of its primary metric per value of its table axis (a runset
filtered on the axis coordinates: the batch size, ways and shots, source and
target), and adversarial training its clean against robust accuracy
(:data:`reports.task_plots.CLEAN_VS_PRIMARY`). The cross-task summary table
comes first.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Iterable

from normbench.wandb_auth import wandb_login_available

from .layout import table_sets
from .record import MetricDeclaration, RunRecord, format_scalar, scalar_order
from .render import render_markdown
from .summary import SummaryTable
from .summary_render import render_summary_markdown
from .tables import Table, norm_order, task_order
from .task_plots import CLEAN_VS_PRIMARY

DEFAULT_TITLE = "normbench: normalization layers compared"


class WandbPublishError(RuntimeError):
    """Publishing the W&B report failed; the message says what to do (one line)."""


def _wr() -> Any:
    """The wandb_workspaces reports API, imported on first use (an optional dependency).

    The library declares its pydantic models with V1-style validators; the
    resulting deprecation warnings concern its maintainers, not our users.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import wandb_workspaces.reports.v2 as wr
    return wr


def _declared(records: list[RunRecord]) -> list[MetricDeclaration]:
    """The task's declared metrics, the first record's primary first, then in first-seen order."""
    declared: dict[str, MetricDeclaration] = {}
    for r in records:
        for d in r.declarations:
            declared.setdefault(d.name, d)
    primary = records[0].primary.name
    return [declared[primary], *(d for name, d in declared.items() if name != primary)]


def _axis_words(records: list[RunRecord]) -> str:
    """e.g. "batch sizes 2, 16" or "ways/shots 5-way 1-shot, 5-way 5-shot"."""
    axes: dict[str, dict[Any, tuple[float, str]]] = {}
    labels: dict[str, str] = {}
    for r in records:
        labels.setdefault(r.table_axis.key, r.table_axis.label)
        axes.setdefault(r.table_axis.key, {}).setdefault(r.axis_value, (r.axis_order, r.axis_label))
    words = []
    for key, values in axes.items():
        ordered = sorted(values.items(), key=lambda kv: (kv[1][0], scalar_order(kv[0])))
        if key == "batch_size":
            words.append("batch sizes " + ", ".join(format_scalar(v) for v, _ in ordered))
        else:
            words.append(f"{labels[key]} " + ", ".join(label for _, (_, label) in ordered))
    return "; ".join(words)


def _runset_filter(task: str, sweeps: list[str], axis: dict[str, Any] | None = None) -> Any:
    """Runs of this task in these sweeps (sweep names are W&B tags), at one axis value when given.

    The Runset turns this expression into the library's filter string.
    """
    from wandb_workspaces import expr

    conditions = [expr.Config("task") == task]
    conditions += [expr.Config(key) == value for key, value in (axis or {}).items()]
    if sweeps:
        conditions.insert(0, expr.Tags().isin(sweeps))
    return expr.And(*conditions)


def axis_points(records: list[RunRecord]) -> list[tuple[str, dict[str, Any]]]:
    """(column label, W&B config coordinates) per table-axis value, in axis order.

    On the batch-size axis the coordinate is ``batch_size``; otherwise the
    record's coordinates that its axis spans (``ways`` and ``shots``, ``source``
    and ``target``), which the run side logs as flat config keys.
    """
    points: dict[tuple[str, Any], tuple[float, str, dict[str, Any]]] = {}
    for r in records:
        if r.table_axis.is_batch_size:
            where: dict[str, Any] = {"batch_size": r.batch_size}
        else:
            where = {k: r.coordinates[k] for k in r.table_axis.coordinates}
        key = (r.table_axis.key, r.axis_value)
        points.setdefault(key, (r.axis_order, r.axis_label, where))
    ordered = sorted(points.items(), key=lambda kv: (kv[0][0], kv[1][0], scalar_order(kv[0][1])))
    return [(label, where) for _, (_, label, where) in ordered]


def _axis_panels(task: str, primary: MetricDeclaration, metrics: list[MetricDeclaration], label: str) -> list[Any]:
    """A bar chart of the primary per group (norm); for adversarial training, clean vs robust too."""
    wr = _wr()
    better = "higher" if primary.direction == "max" else "lower"
    panels = [wr.BarPlot(
        title=f"{task}, {label}: {primary.name} by norm ({primary.label}, {better} is better; mean ± std over seeds)",
        metrics=[primary.name], orientation="v", groupby="Group", groupby_aggfunc="mean",
        groupby_rangefunc="stddev", layout=wr.Layout(x=0, y=0, w=8, h=8))]
    clean = CLEAN_VS_PRIMARY.get(task)
    declared = {m.name: m for m in metrics}
    if clean in declared and clean != primary.name:
        panels += [
            wr.BarPlot(title=f"{task}, {label}: {declared[clean].label} and {primary.label} by norm",
                       metrics=[clean, primary.name], orientation="v", groupby="Group", groupby_aggfunc="mean",
                       groupby_rangefunc="stddev", layout=wr.Layout(x=8, y=0, w=8, h=8)),
            wr.ScatterPlot(title=f"{task}, {label}: {declared[clean].label} (x) vs {primary.label} (y), one point "
                                 "per run", x=wr.SummaryMetric(clean), y=wr.SummaryMetric(primary.name),
                           layout=wr.Layout(x=16, y=0, w=8, h=8)),
        ]
    return panels


def _task_blocks(
    task: str, records: list[RunRecord], tables: list[Table], entity: str, project: str
) -> list[Any]:
    wr = _wr()
    sweeps = sorted({r.sweep for r in records if r.sweep})
    metrics = _declared(records)
    primary = metrics[0]
    rank = {name: i for i, name in enumerate(norm_order())}
    in_table_order = sorted(records, key=lambda r: (
        rank.get(r.norm_name, len(rank)), r.norm_name, r.norm_num_groups or 0, r.norm_label))
    norms = list(dict.fromkeys(r.norm_label for r in in_table_order))
    intro = (
        f"Runs of task `{task}` from sweep(s) {', '.join(f'`{s}`' for s in sweeps) or '(none recorded)'}: "
        f"{len(records)} runs, norms {', '.join(norms)}, {_axis_words(records)}. "
        "Runs are grouped by their W&B group (every grid coordinate but the seed), so each bar and "
        "curve is the mean over seeds with a standard-deviation band."
    )
    blocks: list[Any] = [wr.H1(text=task), wr.MarkdownBlock(text=intro)]
    main_tables = [ts for ts in table_sets([t for t in tables if t.task == task], records)
                   if any(t.primary for t in ts.tables)]  # a declared group (adversarial) prints as one table
    if main_tables:
        blocks.append(wr.MarkdownBlock(text="\n".join(render_markdown(ts) for ts in main_tables)))
    coordinates = sorted({k for r in records for k in r.coordinates})
    columns = [*(f"config:{k}.value" for k in coordinates),
               "config:norm_label.value", "config:batch_size.value", "config:seed.value"]
    if len({(r.dataset, r.model) for r in records}) > 1:
        columns = ["config:dataset.value", "config:model.value", *columns]
    def runset(name: str, axis: dict[str, Any] | None = None) -> Any:
        return wr.Runset(entity=entity, project=project, name=name, filters=_runset_filter(task, sweeps, axis),
                         groupby=["group"], pinned_columns=columns[:-1],
                         visible_columns=[*columns, *(f"summary:{m.name}" for m in metrics)])

    panels = []
    monitor = next((r.selection_monitor for r in records if r.selection_monitor), None)
    if monitor is not None:
        panels.append(wr.LinePlot(
            title=f"{task}: {monitor} over training steps", x="Step", y=[monitor],
            groupby="Group", groupby_aggfunc="mean", groupby_rangefunc="stddev",
            layout=wr.Layout(x=0, y=0, w=12, h=8),
        ))
    blocks.append(wr.PanelGrid(runsets=[runset(f"{task} runs")], panels=panels))
    for label, where in axis_points(records):
        blocks += [wr.H2(text=f"{task}: {label}"),
                   wr.PanelGrid(runsets=[runset(f"{task} runs, {label}", where)],
                                panels=_axis_panels(task, primary, metrics, label))]
    return blocks


# The one account of the tests, as docs/reporting.md (Statistics) and the README give it: keep them in step.
INTRO = (
    "Tables: mean ± sample std over seeds (or a 95% interval where the caption says so); bold is the best "
    "norm per column (never in a column with one value, nor for a cost such as wall time); `*` marks a norm "
    "significantly better than BN in that column: a two-sided test over seeds (hierarchical bootstrap over "
    "seeds and shared test items, paired t-test over seeds whose runs saw the same batches, or Welch's t-test "
    "where they cannot be paired), Holm-adjusted p < 0.05 over the table's comparisons (or the sweep's "
    "declared hypotheses), never with fewer than 3 seeds; each caption names the test and the family size."
)


def build_wandb_report(
    records: Iterable[RunRecord], entity: str, project: str, title: str = DEFAULT_TITLE,
    tables: list[Table] | None = None, summary: SummaryTable | None = None,
) -> Any:
    """Build (not save) a `wandb_workspaces.reports.v2.Report` for these records.

    First the cross-task summary (when `summary` is given), then one section per
    task: its main tables (from `tables`, when given); a panel grid whose runset
    selects the task's runs in the records' sweeps, with the curve of the
    declared selection monitor (when the task selects on one) and the runs
    table; and per table-axis value a grid of runs at that value with a bar
    chart of the declared primary metric by norm (adversarial training: clean
    and robust accuracy side by side, and clean against robust). Needs no login
    and makes no network call.

    Example::

        report = build_wandb_report(collect_runs("runs/quick").records, "my-team", "normbench")
        json.dumps(report_spec(report))
    """
    wr = _wr()
    by_task: dict[str, list[RunRecord]] = {}
    for r in sorted(records, key=lambda r: str(r.path)):
        by_task.setdefault(r.task, []).append(r)
    sweeps = sorted({r.sweep for rs in by_task.values() for r in rs if r.sweep})
    description = (
        f"Normalization layers compared per task ({', '.join(sorted(by_task, key=task_order))}); "
        f"sweep(s): {', '.join(sweeps) or 'none recorded'}. Built by `normbench report`."
    )
    blocks: list[Any] = [
        wr.MarkdownBlock(text=(
            INTRO
        )),
        wr.TableOfContents(),
    ]
    if summary is not None and summary.columns:
        blocks += [wr.H1(text="Cross-task summary"), wr.MarkdownBlock(text=render_summary_markdown(summary))]
    for task in sorted(by_task, key=task_order):
        blocks += _task_blocks(task, by_task[task], tables or [], entity, project)
    return wr.Report(entity=entity, project=project, title=title[:128], description=description,
                     blocks=blocks, width="fluid")


def _to_jsonable(obj: Any) -> Any:
    """Public fields of the report's dataclasses, with their class names.

    The library's own serialisation (`Report._to_model`) resolves each runset's
    project id over the network, so the offline specification is the public
    object tree instead; private fields (random panel ids) are left out, which
    keeps the JSON deterministic.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        body = {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_")}
        return {"type": type(obj).__name__, **body}
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def report_spec(report: Any) -> dict[str, Any]:
    """A JSON-serialisable, deterministic description of a built report."""
    return {"format": "wandb_workspaces.reports.v2", **_to_jsonable(report)}


def publish_wandb_report(report: Any) -> str:
    """Save the report to W&B and return its URL.

    Raises WandbPublishError, with one line that says what to do, when there is
    no login (checked before any network call), when W&B is switched off by
    WANDB_MODE, or when saving fails.
    """
    if not wandb_login_available():
        raise WandbPublishError(
            "not logged in to W&B: run `wandb login` or set WANDB_API_KEY, then publish again "
            "(or use --wandb-build-only to only build the report)"
        )
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode in ("offline", "disabled", "dryrun"):
        raise WandbPublishError(f"W&B is switched off (WANDB_MODE={mode}): unset WANDB_MODE to publish")
    try:
        report.save()
        return str(report.url)
    except Exception as exc:  # noqa: BLE001 - any library/network failure becomes one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WandbPublishError(
            f"publishing the W&B report to {report.entity}/{report.project} failed: {first}"
        ) from None
