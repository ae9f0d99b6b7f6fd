"""Extra loggers for a run (W&B when enabled); the CSV logger is always on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import RunConfig


def loggers_factory(cfg: RunConfig, run_dir: Path) -> tuple[list, dict[str, Any]]:
    if not cfg.wandb.enabled:
        return [], {"wandb_run_id": None, "wandb_group": None}
    from .wandb_logging import wandb_logger

    return wandb_logger(cfg, run_dir)
