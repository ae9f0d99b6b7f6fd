"""A Weights & Biases Report that compares the norms per task, built offline.

The local tables are the reference; the W&B report is the interactive view of
the same runs (curves, per-run drill-down). It is built with
`wandb_workspaces.reports.v2` from the records alone, without a login or any
network call, so it can be inspected in tests and written as JSON; only
:func:`publish_wandb_report` talks to W&B, and it first checks for credentials
itself, because the library would otherwise fail deep inside a GraphQL call.

How runs are found in W&B (the contract with the run side): every run carries
its sweep name as a tag, its grid coordinates as flat config keys (task,
dataset, model, norm, norm_label, batch_size, seed, ...), and the W&B group
(task, norm, batch size), so grouping by group aggregates the seeds.
"""

from __future__ import annotations

import dataclasses
import netrc
import os
import warnings
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

from .collect import RunRecord
from .render import render_markdown
from .tables import TASK_ORDER, Table, norm_order

DEFAULT_TITLE = "normbench: normalization layers compared"
DEFAULT_BASE_URL = "https://api.wandb.ai"
STEP_METRIC = "val/acc"  # the curve every task logs per step


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


def _task_key(task: str) -> tuple[int, str]:
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)


def _runset_filter(task: str, sweeps: list[str]) -> Any:
    """Runs of this task in these sweeps (sweep names are W&B tags).

    The Runset turns this expression into the library's filter string.
    """
    from wandb_workspaces import expr

    conditions = [expr.Config("task") == task]
    if sweeps:
        conditions.insert(0, expr.Tags().isin(sweeps))
    return expr.And(*conditions)


def _task_blocks(
    task: str, records: list[RunRecord], tables: list[Table], entity: str, project: str
) -> list[Any]:
    wr = _wr()
    sweeps = sorted({r.sweep for r in records if r.sweep})
    primary = records[0].primary_metric
    metrics = list(dict.fromkeys([primary, *(m for r in records for m in r.report_metrics)]))
    rank = {name: i for i, name in enumerate(norm_order())}
    in_table_order = sorted(records, key=lambda r: (
        rank.get(r.norm_name, len(rank)), r.norm_name, r.norm_num_groups or 0, r.norm_label))
    norms = list(dict.fromkeys(r.norm_label for r in in_table_order))
    batch_sizes = sorted({r.batch_size for r in records})
    intro = (
        f"Runs of task `{task}` from sweep(s) {', '.join(f'`{s}`' for s in sweeps) or '(none recorded)'}: "
        f"{len(records)} runs, norms {', '.join(norms)}, batch sizes {', '.join(map(str, batch_sizes))}. "
        "Runs are grouped by their W&B group (task, norm, batch size), so each bar and curve is "
        "the mean over seeds with a standard-deviation band."
    )
    blocks: list[Any] = [wr.H1(text=task), wr.MarkdownBlock(text=intro)]
    main_tables = [t for t in tables if t.task == task and t.primary]
    if main_tables:
        blocks.append(wr.MarkdownBlock(text="\n".join(render_markdown(t) for t in main_tables)))
    columns = ["config:norm_label.value", "config:batch_size.value", "config:seed.value"]
    if len({(r.dataset, r.model) for r in records}) > 1:
        columns = ["config:dataset.value", "config:model.value", *columns]
    runset = wr.Runset(
        entity=entity, project=project, name=f"{task} runs",
        filters=_runset_filter(task, sweeps),
        groupby=["group"],
        pinned_columns=columns[:-1],
        visible_columns=[*columns, *(f"summary:{m}" for m in metrics)],
    )
    panels = [
        wr.BarPlot(
            title=f"{task}: {primary} by norm and batch size (mean ± std over seeds)",
            metrics=[primary], orientation="v", groupby="Group", groupby_aggfunc="mean",
            groupby_rangefunc="stddev", layout=wr.Layout(x=0, y=0, w=12, h=8),
        ),
        wr.LinePlot(
            title=f"{task}: {STEP_METRIC} over training steps", x="Step", y=[STEP_METRIC],
            groupby="Group", groupby_aggfunc="mean", groupby_rangefunc="stddev",
            layout=wr.Layout(x=12, y=0, w=12, h=8),
        ),
    ]
    blocks.append(wr.PanelGrid(runsets=[runset], panels=panels))
    return blocks


def build_wandb_report(
    records: Iterable[RunRecord], entity: str, project: str, title: str = DEFAULT_TITLE,
    tables: list[Table] | None = None,
) -> Any:
    """Build (not save) a `wandb_workspaces.reports.v2.Report` for these records.

    One section per task: its main table (from `tables`, when given), and a panel
    grid whose runset selects the task's runs in the records' sweeps, with a bar
    chart of the primary metric, a `val/acc` curve and the runs table. Needs no
    login and makes no network call.
    """
    wr = _wr()
    by_task: dict[str, list[RunRecord]] = {}
    for r in sorted(records, key=lambda r: str(r.path)):
        by_task.setdefault(r.task, []).append(r)
    sweeps = sorted({r.sweep for rs in by_task.values() for r in rs if r.sweep})
    description = (
        f"Normalization layers compared per task ({', '.join(sorted(by_task, key=_task_key))}); "
        f"sweep(s): {', '.join(sweeps) or 'none recorded'}. Built by `normbench report`."
    )
    blocks: list[Any] = [
        wr.MarkdownBlock(text=(
            "Tables: mean ± sample std over seeds; bold is the best norm per batch size; `*` marks a "
            "norm significantly better than BN at that batch size (one-sided Welch's t-test, p < 0.05)."
        )),
        wr.TableOfContents(),
    ]
    for task in sorted(by_task, key=_task_key):
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


def _netrc_has_login(host: str) -> bool:
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if not path.is_file():
        return False
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError):
        return False
    return bool(entry and entry[2])


def wandb_login_available() -> bool:
    """Credentials W&B would use: WANDB_API_KEY, or a netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE", "").strip():
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).hostname or ""
    return _netrc_has_login(host)


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
