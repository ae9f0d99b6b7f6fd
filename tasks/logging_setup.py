"""Extra loggers for a run (W&B when enabled); the CSV logger is always on.

W&B is enabled by ``wandb.enabled`` in the config or ``NORMBENCH_WANDB=1`` in the
environment (handy for sweeps and clusters without editing configs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from .config import RunConfig

# (loggers, fields added to the run record, function closing the loggers when the run ends)
RunLoggers = tuple[list, dict[str, Any], Callable[[], None]]


def wandb_enabled(cfg: RunConfig) -> bool:
    return cfg.wandb.enabled or os.environ.get("NORMBENCH_WANDB", "").lower() in ("1", "true", "yes", "on")


def loggers_factory(cfg: RunConfig, run_dir: Path, task: str, dataset: str, model: str) -> RunLoggers:
    if not wandb_enabled(cfg):
        return [], {"wandb_run_id": None, "wandb_group": None}, lambda: None
    from .wandb_logging import wandb_logger

    return wandb_logger(cfg, run_dir, task, dataset, model)
