"""The loggers of a run: the CSV file always, Weights & Biases when enabled.

W&B is enabled by ``wandb.enabled`` or ``NORMBENCH_WANDB=1`` (handy for sweeps
and clusters without editing configs). Seeds of one grid cell share a W&B group
(task, data set, model, the task's coordinates, norm, batch size) so W&B
aggregates them, and every run of a sweep carries the sweep name as a tag, which
is what the W&B comparison report filters on. Config keys are flat. Without
credentials the run is logged offline into ``<run_dir>/wandb`` (upload later
with ``wandb sync <run_dir>/wandb/offline-run-*``). The W&B run id is derived
from the sweep and run id, so a resumed run continues the same W&B run.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from normbench.wandb_auth import wandb_login_available
from normlayers import resolve_norm

from .config import RunConfig
from .csv_logger import ResumableCSVLogger
from .rundir import flatten

__all__ = ["RunLoggers", "build_loggers", "logger_record_fields", "wandb_enabled", "wandb_group", "flat_run_config"]

WANDB_ENV = "NORMBENCH_WANDB"


class RunLoggers:
    """The Lightning loggers of a run, the record fields they add, and how to close them."""

    def __init__(self, loggers: list, record_fields: dict[str, Any], close: Callable[[], None]) -> None:
        self.loggers = loggers
        self.record_fields = record_fields
        self.close = close


def wandb_enabled(cfg: RunConfig) -> bool:
    return cfg.wandb.enabled or os.environ.get(WANDB_ENV, "").lower() in ("1", "true", "yes", "on")


def wandb_mode(requested: str) -> str:
    """``auto`` becomes online with credentials and offline without (the other modes are kept)."""
    if requested != "auto":
        return requested
    return "online" if wandb_login_available() else "offline"


def wandb_group(task: str, dataset: str, model: str, coordinates: dict[str, Any], norm: str, batch_size: int) -> str:
    """``<task>-<dataset>-<model>[-<key>=<value>...]-<norm>-bs<B>``: one group per grid cell, seeds together."""
    coords = "".join(f"-{k}={v}" for k, v in coordinates.items())
    return f"{task}-{dataset}-{model}{coords}-{norm}-bs{batch_size}"


def flat_run_config(cfg: RunConfig, identity: dict[str, Any]) -> dict[str, Any]:
    """Flat W&B config: grid coordinates first (``identity``), then every config key in dotted form."""
    resolved = resolve_norm(cfg.norm)
    flat = dict(identity)
    flat.update({f"norm.{k}": v for k, v in resolved.kwargs.items()})
    body = {k: v for k, v in asdict(cfg).items() if k not in ("norm", "wandb")}
    flat.update({k: v for k, v in flatten(body, keep=()).items() if k not in flat})
    return flat


def logger_record_fields(cfg: RunConfig, run_dir: Path, identity: dict[str, Any],
                         use_wandb: bool | None = None) -> dict[str, Any]:
    """The record's W&B fields: run id, group and mode (nulls when W&B is off)."""
    if not (wandb_enabled(cfg) if use_wandb is None else use_wandb):
        return {"wandb_run_id": None, "wandb_group": None}
    group = wandb_group(identity["task"], identity["dataset"], identity["model"], identity["coordinates"],
                        identity["norm"], identity["batch_size"])
    run_id = hashlib.sha1(f"{cfg.sweep or ''}/{run_dir.name}".encode()).hexdigest()[:16]
    return {"wandb_run_id": run_id, "wandb_group": group, "wandb_mode": wandb_mode(cfg.wandb.mode)}


def _wandb_logger(cfg: RunConfig, run_dir: Path, identity: dict[str, Any]) -> RunLoggers:
    from lightning.pytorch.loggers import WandbLogger

    fields = logger_record_fields(cfg, run_dir, identity, use_wandb=True)
    run_id, group, mode = fields["wandb_run_id"], fields["wandb_group"], fields["wandb_mode"]
    tags = [t for t in ([cfg.sweep] if cfg.sweep else []) + list(cfg.wandb.tags) if t]
    # grid coordinates first and flat, under their own names (the W&B report pins them as columns)
    config = flat_run_config(cfg, {**identity["coordinates"], **{k: v for k, v in identity.items() if k != "coordinates"}})
    logger = WandbLogger(name=run_dir.name, save_dir=str(run_dir), id=run_id, project=cfg.wandb.project,
                         entity=cfg.wandb.entity, group=group, tags=tags, config=config, mode=mode,
                         resume="allow", log_model=False)

    def close() -> None:
        import wandb

        if wandb.run is not None:
            wandb.finish()

    return RunLoggers([logger], fields, close)


def build_loggers(cfg: RunConfig, run_dir: Path, identity: dict[str, Any], csv_name: str = "metrics.csv",
                  use_wandb: bool | None = None) -> RunLoggers:
    """CSV (appending across attempts) plus W&B when enabled; ``identity`` holds the record's grid fields."""
    csv = ResumableCSVLogger(str(run_dir), csv_name)
    if not (wandb_enabled(cfg) if use_wandb is None else use_wandb):
        return RunLoggers([csv], {"wandb_run_id": None, "wandb_group": None}, lambda: None)
    wandb = _wandb_logger(cfg, run_dir, identity)
    return RunLoggers([csv, *wandb.loggers], wandb.record_fields, wandb.close)

