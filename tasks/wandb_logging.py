"""Weights & Biases logging of a run: flat config, one group per (task, norm, batch size), offline fallback.

Seeds of the same grid cell share a W&B group so W&B aggregates them, and every
run of a sweep carries the sweep name as a tag, which is what the W&B
comparison report filters on. Without credentials the run is logged offline into
``<run_dir>/wandb`` (upload later with ``wandb sync <run_dir>/wandb/offline-run-*``).
The W&B run id is derived from the sweep and run id, so a resumed run continues
the same W&B run.
"""

from __future__ import annotations

import hashlib
import netrc
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from normlayers import resolve_norm

from .config import RunConfig
from .logging_setup import RunLoggers


def has_wandb_credentials() -> bool:
    """An API key in the environment or a netrc entry for the W&B host (no network call)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str) -> str:
    if requested not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"wandb.mode={requested!r}; choose auto, online, offline or disabled")
    if requested != "auto":
        return requested
    return "online" if has_wandb_credentials() else "offline"


def _flatten(prefix: str, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(f"{prefix}{key}.", value))
        else:
            out[f"{prefix}{key}"] = value
    return out


def flat_run_config(cfg: RunConfig, task: str, dataset: str, model: str) -> dict[str, Any]:
    """Flat W&B config: grid coordinates first, then every config key in dotted form."""
    resolved = resolve_norm(cfg.norm)
    group = resolved.entry.group_param
    flat = {
        "task": task,
        "dataset": dataset,
        "model": model,
        "norm": str(resolved.spec),
        "norm_name": resolved.entry.name,
        "norm_label": resolved.label,
        "norm_num_groups": resolved.kwargs.get(group) if group else None,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "sweep": cfg.sweep,
        "profile": cfg.profile,
    }
    flat.update({f"norm.{k}": v for k, v in resolved.kwargs.items()})
    body = {k: v for k, v in asdict(cfg).items() if k not in ("norm", "wandb")}
    flat.update(_flatten("", body))
    return flat


def wandb_logger(cfg: RunConfig, run_dir: Path, task: str, dataset: str, model: str) -> RunLoggers:
    """The Lightning WandbLogger for this run, the record fields it adds, and a closer."""
    from lightning.pytorch.loggers import WandbLogger

    mode = wandb_mode(cfg.wandb.mode)
    group = f"{task}-{dataset}-{model}-{resolve_norm(cfg.norm).spec}-bs{cfg.batch_size}"
    run_key = f"{cfg.sweep or ''}/{run_dir.name}"
    run_id = hashlib.sha1(run_key.encode()).hexdigest()[:16]
    tags = [t for t in ([cfg.sweep] if cfg.sweep else []) + list(cfg.wandb.tags) if t]
    logger = WandbLogger(
        name=run_dir.name,
        save_dir=str(run_dir),
        id=run_id,
        project=cfg.wandb.project,
        entity=cfg.wandb.entity,
        group=group,
        tags=tags,
        config=flat_run_config(cfg, task, dataset, model),
        mode=mode,
        resume="allow",
        log_model=False,
    )

    def close() -> None:
        import wandb

        if wandb.run is not None:
            wandb.finish()

    return [logger], {"wandb_run_id": run_id, "wandb_group": group, "wandb_mode": mode}, close
