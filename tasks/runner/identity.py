"""The fields that identify a run and place it in a table: one function, used by the record and W&B.

Everything here is computed from the config and the task's declarations alone,
before training, so a record written for a failed run has them too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from normlayers import ResolvedNorm, resolve_norm

from .config import RunConfig
from .prepare import coordinates_of
from .task import Task
from .world import world_size_of

__all__ = ["identity_fields", "declaration_fields", "summary_declarations", "weight_standardization_of",
           "analysis_fields"]


def weight_standardization_of(cfg: RunConfig) -> bool:
    """``model.weight_standardization`` of the task's config (False for a task without the option)."""
    return bool(getattr(getattr(cfg, "model", None), "weight_standardization", False))


def _fixed_groups(resolved: ResolvedNorm) -> int | None:
    """The entry's group parameter when it is one number (null for ``num_groups=auto``: see norm_groups_per_layer)."""
    group = resolved.entry.group_param
    value = resolved.kwargs.get(group) if group else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def identity_fields(cfg: RunConfig, task: Task) -> dict[str, Any]:
    """Grid coordinates, norm metadata, batch and process topology of a run (record order)."""
    resolved = resolve_norm(cfg.norm)
    dataset, model = task.identity(cfg)
    world = world_size_of(cfg)
    batch = task.normalization_batch(cfg)
    coordinates = coordinates_of(cfg, task)
    return {
        "task": task.name,
        "dataset": dataset,
        "model": model,
        "coordinates": coordinates,
        "row_coordinates": [key for key in task.row_coordinates if key in coordinates],  # row variants, not tables
        "norm": str(resolved.spec),
        "norm_name": resolved.entry.name,
        "norm_label": resolved.label,
        "norm_num_groups": _fixed_groups(resolved),
        "norm_args": resolved.kwargs,
        "uses_batch_stats": resolved.entry.uses_batch_stats,
        "batch_size": batch,
        "batch_size_meaning": task.batch_size_meaning,
        "world_size": world,
        "global_batch_size": batch * world,
        "sync_norm": cfg.trainer.sync_norm,
        "seed": cfg.seed,
        "profile": cfg.profile,
        "epochs": cfg.trainer.epochs,
        "precision": cfg.trainer.precision,
        "compile": cfg.trainer.compile,
        "weight_standardization": weight_standardization_of(cfg),
    }


def summary_declarations(cfg: RunConfig, task: Task, primary: str) -> list[dict[str, Any]]:
    """The run's summary-table columns, with defaults filled in (label, metric)."""
    columns = cfg.summary or list(task.summary_columns(cfg))
    out = []
    for column in columns:
        label = column.label or f"{task.name} ({column.axis})"
        out.append({"label": label, "axis": column.axis, "where": dict(column.where), "metric": column.metric or primary})
    return out


def declaration_fields(cfg: RunConfig, task: Task) -> dict[str, Any]:
    """What the results mean: metric declarations, table axis, selection rule, norm protocol."""
    metrics = task.metrics(cfg)
    primary = [m for m in metrics if m.primary]
    if len(primary) != 1:
        raise ValueError(f"task {task.name} must declare exactly one primary metric, got {len(primary)}")
    point = task.axis_point(cfg)
    return {
        "primary_metric": primary[0].name,
        "primary_mode": primary[0].direction,
        "report_metrics": [m.name for m in metrics],
        "metric_declarations": [m.declaration() for m in metrics],
        "table_axis": task.table_axis.declaration(),
        "axis_value": point.value,
        "axis_label": point.label,
        "axis_order": point.order,
        "axis_average": task.table_axis.average,
        "selection": task.selection(cfg).declaration(),
        "summary_columns": summary_declarations(cfg, task, primary[0].name),
        "protocol": task.protocol(cfg),
        "images_per_step": task.stages(cfg)[-1].images_per_step,
        **analysis_fields(cfg),
    }


def _canonical(spec: str) -> str:
    return str(resolve_norm(spec).spec) if spec else ""


def analysis_fields(cfg: RunConfig) -> dict[str, Any]:
    """The report's analysis declarations (reference norm, hypotheses, contrasts), norm specs canonical.

    They never change what a run computes (they are out of the comparison key); they ride in every
    record so that the reporter's Holm family is the one declared before the runs, not chosen after.
    Empty fields of a declaration are left out (the reporter reads absence as "any" or "the default").
    """
    out: dict[str, Any] = {}
    if cfg.reference_norm:
        out["reference_norm"] = _canonical(cfg.reference_norm)
    if cfg.hypotheses:
        out["hypotheses"] = [{k: v for k, v in {**dataclasses.asdict(h), "norm": _canonical(h.norm),
                                                "reference": _canonical(h.reference)}.items() if v not in ("", {}, None)}
                             for h in cfg.hypotheses]
    if cfg.contrasts:
        out["contrasts"] = [{k: v for k, v in {**dataclasses.asdict(c), "norm": _canonical(c.norm),
                                               "reference": _canonical(c.reference)}.items() if v not in ("", [], None)}
                            for c in cfg.contrasts]
    return out
