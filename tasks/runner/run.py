"""Execute one run end to end: validate, skip or resume, train, test, write the record.

The record is written last and atomically. A run that diverges (non-finite
loss) or fails ends with that status and a one-line error in its record (the
traceback goes to ``error.log``), so a sweep goes on. Ctrl-C or a kill leaves no
record: Lightning saves ``last.ckpt`` on the way out and the next attempt
resumes from it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint

from normlayers import NormSpecError, resolve_norm

from ..config import ConfigError, RunConfig
from ..data.errors import DataError
from .callbacks import BestMetric, DivergedError, RandomState, RunClock
from .csv_logger import ResumableCSVLogger
from .layer_sync import NormSync
from .provenance import provenance
from .record import RECORD_NAME, SCHEMA_VERSION, utc_now, write_json_atomic
from .rundir import CHECKPOINT_DIR, INTERRUPT_CHECKPOINT, check_config_matches, inspect_run_dir, run_id, save_config
from .task import TaskDefinition
from .world import is_rank_zero, world_size_of

__all__ = ["RunOutcome", "execute", "run_directory", "canonical_config"]

log = logging.getLogger("normbench")


@dataclass
class RunOutcome:
    status: str  # finished, diverged, failed, skipped
    run_dir: Path
    message: str = ""
    record: dict[str, Any] | None = None
    refused: bool = False  # failed before training: invalid configuration or missing data


def canonical_config(cfg: RunConfig, task: TaskDefinition) -> RunConfig:
    """Validate the config and return it with the norm spec in canonical string form."""
    if not isinstance(cfg, task.config_class):
        raise ConfigError(f"task {task.name} needs a {task.config_class.__name__}, got {type(cfg).__name__}")
    try:
        spec = str(resolve_norm(cfg.norm).spec)
    except NormSpecError as exc:
        raise ConfigError(str(exc)) from None
    cfg = dataclasses.replace(cfg, norm=spec)
    if "spawn" in cfg.trainer.strategy:
        raise ConfigError(
            f"trainer.strategy={cfg.trainer.strategy}: spawn-based strategies keep the training state in the child "
            "processes, so the run record would be incomplete; use ddp"
        )
    task.validate(cfg)
    return cfg


def run_directory(cfg: RunConfig, task: TaskDefinition) -> Path:
    dataset, model = task.identity(cfg)
    name = cfg.run_name or run_id(task.name, dataset, model, str(cfg.norm), cfg.batch_size, cfg.seed)
    base = Path(cfg.out_dir).expanduser()
    return (base / cfg.sweep / name) if cfg.sweep else (base / name)


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    # With OnExceptionCheckpoint, Lightning looks for last.ckpt on every fit; we pass it explicitly.
    warnings.filterwarnings("ignore", message=r".*ckpt_path=None\)` was called without a model.*")
    warnings.filterwarnings("ignore", message=r'.*ckpt_path="last"\) is set, but there is no last checkpoint.*')


def _trainer(cfg: RunConfig, task: TaskDefinition, run_dir: Path, clock: RunClock, best: BestMetric, loggers: list,
             overrides: dict[str, Any]) -> L.Trainer:
    t = cfg.trainer
    ckpt_dir = run_dir / CHECKPOINT_DIR
    callbacks: list[L.Callback] = [
        clock,
        best,
        RandomState(),
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor=task.monitor,
            mode=task.monitor_mode,
            save_last=True,
            save_top_k=1,
            enable_version_counter=False,
            every_n_train_steps=t.checkpoint_every_n_steps or None,
        ),
        OnExceptionCheckpoint(dirpath=ckpt_dir, filename=INTERRUPT_CHECKPOINT),
    ]
    return L.Trainer(
        default_root_dir=run_dir,
        max_epochs=t.epochs,
        max_steps=t.max_steps,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        plugins=[NormSync()] if t.sync_norm else None,
        logger=loggers,
        callbacks=callbacks,
        log_every_n_steps=t.log_every_n_steps,
        num_sanity_val_steps=0,
        enable_progress_bar=os.isatty(2),
        enable_model_summary=False,
        deterministic=t.deterministic,
        inference_mode=task.inference_mode,
        **overrides,
    )


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k and torch.as_tensor(v).numel() == 1}


def _record(cfg: RunConfig, task: TaskDefinition, run_dir: Path, status: str, error: str | None,
            metrics: dict[str, float], clock: RunClock | None, best: BestMetric | None, started: str,
            steps: int, epochs_done: int, extra: dict[str, Any]) -> dict[str, Any]:
    resolved = resolve_norm(cfg.norm)
    dataset, model = task.identity(cfg)
    world = world_size_of(cfg)
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "sweep": cfg.sweep,
        "task": task.name,
        "dataset": dataset,
        "model": model,
        "norm": str(resolved.spec),
        "norm_name": resolved.entry.name,
        "norm_label": resolved.label,
        "norm_num_groups": resolved.kwargs.get(resolved.entry.group_param) if resolved.entry.group_param else None,
        "norm_args": resolved.kwargs,
        "uses_batch_stats": resolved.entry.uses_batch_stats,
        "batch_size": cfg.batch_size,
        "world_size": world,
        "global_batch_size": cfg.batch_size * world,
        "sync_norm": cfg.trainer.sync_norm,
        "seed": cfg.seed,
        "profile": cfg.profile,
        "epochs": cfg.trainer.epochs,
        "precision": cfg.trainer.precision,
        "status": status,
        "error": error,
        "primary_metric": task.primary_metric,
        "primary_mode": task.primary_mode,
        "report_metrics": list(task.report_metrics),
    }
    record.update(sorted(metrics.items()))
    if best is not None and best.best is not None:
        record[f"best/{task.monitor}"] = best.best
        record["best/epoch"] = best.best_epoch
    record["epochs_completed"] = epochs_done
    record["steps"] = steps
    if clock is not None:
        record["wall_time_s"] = round(clock.wall_seconds, 3)
        if clock.images_per_second is not None:
            record["train_images_per_s"] = round(clock.images_per_second, 2)
    record["started_at"] = started
    record["finished_at"] = utc_now()
    record.update(provenance(cfg.trainer.accelerator))
    record.update(extra)
    return record


def execute(cfg: RunConfig, task: TaskDefinition, *, loggers_factory=None,
            trainer_overrides: dict[str, Any] | None = None) -> RunOutcome:
    """Run ``cfg`` (a ``task.config_class``) unless it finished before; see the module docstring.

    Raises ConfigError for configurations refused before anything is written.
    ``loggers_factory(cfg, run_dir, task, dataset, model) -> (loggers, extra record fields, close)``
    adds loggers such as W&B (``close`` is called when the run ends, whatever its outcome);
    ``trainer_overrides`` are extra Trainer arguments (benchmarks, tests).
    """
    cfg = canonical_config(cfg, task)
    run_dir = run_directory(cfg, task)
    check_config_matches(run_dir, cfg, task.name)
    state = inspect_run_dir(run_dir)
    if state.done:
        assert state.record is not None
        return RunOutcome("skipped", run_dir, f"already {state.record['status']}", state.record)
    rank_zero = is_rank_zero()
    if rank_zero:
        save_config(run_dir, cfg, task.name)
    _quiet_lightning()
    started = utc_now()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    clock = RunClock(images_per_step=cfg.batch_size * world_size_of(cfg))
    best = BestMetric(task.monitor, task.monitor_mode)
    metrics: dict[str, float] = {}
    trainer: L.Trainer | None = None
    status, error, refused = "finished", None, False
    extra: dict[str, Any] = {}
    close_loggers = lambda: None  # noqa: E731
    try:
        module, datamodule = task.build(cfg)
        task.check(module, datamodule)
        loggers: list = [ResumableCSVLogger(str(run_dir))]
        if loggers_factory is not None and rank_zero:
            more, extra, close_loggers = loggers_factory(cfg, run_dir, task.name, *task.identity(cfg))
            loggers += more
        trainer = _trainer(cfg, task, run_dir, clock, best, loggers, trainer_overrides or {})
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(state.last_checkpoint) if state.resumable else None)
        metrics.update(_metrics(trainer))
        trainer.test(module, datamodule=datamodule, verbose=False)
        metrics.update(_metrics(trainer))
    except DivergedError as exc:
        status, error = "diverged", str(exc)
    except (ConfigError, DataError) as exc:
        status, error, refused = "failed", str(exc), True
    except Exception as exc:  # a failed run must not stop a sweep; KeyboardInterrupt/SystemExit pass through
        status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        if rank_zero:
            (run_dir / "error.log").write_text(traceback.format_exc())
    finally:
        try:
            close_loggers()
        except Exception as exc:  # a logging service must not cost the run its record
            log.warning("closing loggers failed: %s", exc)
    if trainer is not None:
        metrics.update({k: v for k, v in _metrics(trainer).items() if k not in metrics})
    steps = trainer.global_step if trainer is not None else 0
    epochs_done = trainer.current_epoch if trainer is not None else 0
    record = _record(cfg, task, run_dir, status, error, metrics, clock, best, started, steps, epochs_done, extra)
    if rank_zero:
        write_json_atomic(run_dir / RECORD_NAME, record)
    return RunOutcome(status, run_dir, error or "", record, refused)
