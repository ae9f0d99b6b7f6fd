"""Run one training stage: fit (resuming inside the stage), then test the selected and the last checkpoint.

The last weights are tested first and reported under ``last/``; when the
stage's selection rule picked an earlier checkpoint, its weights are loaded and
tested again, and those metrics take the plain names. A rule of "last" reports
the same numbers under both.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint

from normlayers import auto_group_choices, group_norm_fields, set_normalization_batch

from .callbacks import CompileClock, LeaseGuard, LeaseLostError, RandomState, RunClock, SelectionTracker
from .compile_guard import compile_fallback_fails
from .config import RunConfig
from .diagnostics import NormDiagnostics, stats_file_name
from .layer_sync import NormSync
from .loggers import RunLoggers, build_loggers
from .outcomes import TestPasses, checkpoint_sets, write_outcomes
from .ramp import RampSchedule
from .rundir import CHECKPOINT_DIR, INTERRUPT_CHECKPOINT, LAST_CHECKPOINT, latest_checkpoint
from .task import Stage, StageResult, Task, finite_metrics
from .train_order import TrainOrderHash, seed_data_stream
from .world import resolve_devices, world_size_of

__all__ = ["StageContext", "run_stage", "stage_checkpoint_dir", "group_choice_fields", "PER_LAYER_FIELDS"]
# {layer: value} fields, merged over stages in the record
PER_LAYER_FIELDS = ("norm_groups_per_layer", "norm_elements_per_statistic", "norm_channels_per_group")

log = logging.getLogger("normbench")
BEST_CHECKPOINT = "best.ckpt"


@dataclass
class StageContext:
    """What every stage of one run shares."""

    cfg: RunConfig
    task: Task
    run_dir: Path
    identity: dict[str, Any]
    multi_stage: bool
    lease: Any = None
    trainer_overrides: dict[str, Any] | None = None
    use_wandb: bool | None = None


class _CheckpointOnInterrupt(OnExceptionCheckpoint):
    """Saves the state on Ctrl-C, kill or error, except when the lease was lost (another process owns the run)."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, LeaseLostError):
            super().on_exception(trainer, pl_module, exception)


def stage_checkpoint_dir(run_dir: Path, stage: Stage, multi_stage: bool) -> Path:
    return run_dir / CHECKPOINT_DIR / stage.name if multi_stage else run_dir / CHECKPOINT_DIR


def _checkpointers(ctx: StageContext, stage: Stage, ckpt_dir: Path) -> list[ModelCheckpoint]:
    """``last.ckpt`` at every epoch end (and every n steps), plus ``best.ckpt`` when the rule monitors a metric.

    Two callbacks, because one ModelCheckpoint with a monitor refreshes ``last.ckpt`` only when the
    monitored value improved (Lightning >= 2.5), which would resume a run from a stale epoch. The best
    one saves first: otherwise ``last.ckpt`` keeps its state from before this epoch's score, and a run
    resumed from it overwrites ``best.ckpt`` with the next epoch's weights whatever their score.
    """
    def last(**when: int) -> ModelCheckpoint:
        return ModelCheckpoint(dirpath=ckpt_dir, filename=Path(LAST_CHECKPOINT).stem, monitor=None, save_top_k=1,
                               save_last=False, enable_version_counter=False, **when)

    savers = []
    if stage.selection.monitor is not None:  # first: last.ckpt then holds its updated best score (exact resume)
        savers.append(ModelCheckpoint(dirpath=ckpt_dir, filename=Path(BEST_CHECKPOINT).stem,
                                      monitor=stage.selection.monitor, mode=stage.selection.mode, save_top_k=1,
                                      save_last=False, enable_version_counter=False))
    savers.append(last(every_n_epochs=1))
    if ctx.cfg.trainer.checkpoint_every_n_steps:  # Lightning wants step and epoch triggers in separate callbacks
        savers.append(last(every_n_train_steps=ctx.cfg.trainer.checkpoint_every_n_steps))
    return savers


def _trainer(ctx: StageContext, stage: Stage, callbacks: list[L.Callback], loggers: RunLoggers) -> L.Trainer:
    t = ctx.cfg.trainer
    max_steps = stage.max_steps * stage.optimizer_steps_per_batch if stage.max_steps > 0 else -1
    return L.Trainer(
        default_root_dir=ctx.run_dir,
        max_epochs=stage.epochs,
        max_steps=max_steps,
        accelerator=t.accelerator,
        devices=resolve_devices(t),
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        plugins=[NormSync()] if t.sync_norm else None,
        logger=loggers.loggers,
        callbacks=callbacks,
        log_every_n_steps=t.log_every_n_steps,
        num_sanity_val_steps=0,
        enable_progress_bar=os.isatty(2),
        enable_model_summary=False,
        deterministic=t.deterministic,
        inference_mode=not ctx.task.eval_needs_gradients,
        **(ctx.trainer_overrides or {}),
    )


def _test(trainer: L.Trainer, module: L.LightningModule, datamodule: L.LightningDataModule) -> dict[str, float]:
    outputs = trainer.test(module, datamodule=datamodule, verbose=False)
    merged: dict[str, Any] = {}
    for per_loader in outputs:
        merged.update(per_loader)
    return finite_metrics(merged)


def _load_weights(module: L.LightningModule, path: Path) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)


def run_stage(ctx: StageContext, stage: Stage, earlier: dict[str, StageResult], result: StageResult) -> None:
    """Fit ``stage`` (from its newest checkpoint if one exists), test, and fill ``result``.

    ``result`` is the caller's, so that a stage that fails or diverges still
    leaves its counters (steps, time) for the record.
    """
    ckpt_dir = stage_checkpoint_dir(ctx.run_dir, stage, ctx.multi_stage)
    resume = latest_checkpoint(ckpt_dir)
    module, datamodule = ctx.task.build(ctx.cfg, stage, earlier)
    seed_data_stream(ctx.cfg.seed, stage.name)  # data order and draws: the same for every norm (train_order.py)
    # bgn:num_groups=auto chooses G at each layer's first forward, for this stage's per-device batch (not the
    # batch of whatever forward comes first: a sanity check, an attack, a short last batch).
    set_normalization_batch(module, stage.norm_batch or ctx.task.normalization_batch(ctx.cfg))
    clock_class: type[RunClock] = RunClock
    compiled: dict[str, Any] = {}
    if ctx.cfg.trainer.compile:  # in place: checkpoints keep their keys; prepare() refused what cannot compile
        torch.compiler.reset()  # the stage compiles from scratch (its compile time is its own; fresh recompile limits)
        nets = ctx.task.compiled_networks(ctx.cfg, module)
        for net in nets:
            net.compile()
        clock_class = CompileClock
        compiled = {"compiled_networks": [name for name, m in module.named_modules() if any(m is n for n in nets)]}
    rule = stage.selection
    clock = clock_class(stage.images_per_step * world_size_of(ctx.cfg), stage.optimizer_steps_per_batch)
    tracker = SelectionTracker(rule)
    order = TrainOrderHash()
    callbacks = [clock, tracker, order, RandomState(), LeaseGuard(ctx.lease), RampSchedule(stage.optimizer_steps_per_batch),
                 *_checkpointers(ctx, stage, ckpt_dir),
                 _CheckpointOnInterrupt(dirpath=ckpt_dir, filename=INTERRUPT_CHECKPOINT)]
    test_passes = TestPasses()  # per-item outcomes of each test pass (outcomes.json)
    callbacks.append(test_passes)
    diagnostics = None
    if ctx.cfg.diagnostics.norm_stats:
        diagnostics = NormDiagnostics(ctx.cfg, ctx.task, stage, ctx.run_dir / stats_file_name(stage.name, ctx.multi_stage))
        callbacks.append(diagnostics)
    csv_name = f"metrics-{stage.name}.csv" if ctx.multi_stage else "metrics.csv"
    loggers = build_loggers(ctx.cfg, ctx.run_dir, ctx.identity, csv_name, ctx.use_wandb)
    trainer: L.Trainer | None = None
    try:
        with compile_fallback_fails(ctx.cfg.trainer.compile):
            trainer = _trainer(ctx, stage, callbacks, loggers)
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
            fit_metrics = finite_metrics(trainer.callback_metrics)
            last = dict(fit_metrics)
            if stage.test:
                last.update(_test(trainer, module, datamodule))
            selected = _selected_metrics(ctx, stage, trainer, module, datamodule, tracker, ckpt_dir, fit_metrics, last)
            result.metrics = {**selected, **{f"last/{k}": v for k, v in last.items()}}
            result.selected_epoch = tracker.best_epoch if rule.monitor and tracker.best_epoch is not None \
                else max(0, trainer.current_epoch - 1)
            result.outputs = {**ctx.task.stage_outputs(ctx.cfg, stage, module), **compiled,
                              **(diagnostics.record_fields() if diagnostics is not None else {}),
                              **order.record_fields(f"{stage.name}/" if ctx.multi_stage else ""),
                              **group_choice_fields(module, f"{stage.name}/" if ctx.multi_stage else "")}
            if trainer.is_global_zero:  # named like the metrics above: selected plainly, last under last/
                write_outcomes(ctx.run_dir, checkpoint_sets(test_passes.passes))
    finally:
        try:
            loggers.close()
        except Exception as exc:  # a logging service must not cost the run its record
            log.warning("closing loggers failed: %s", exc)
        if trainer is not None:
            result.epochs_completed = trainer.current_epoch
            result.steps = trainer.global_step // stage.optimizer_steps_per_batch
        result.train_seconds, result.train_images = clock.train_seconds, clock.train_images
        result.wall_time_s = clock.wall_seconds
        if isinstance(clock, CompileClock):
            result.compile_time_s = clock.compile_seconds


def group_choice_fields(module: L.LightningModule, prefix: str) -> dict[str, Any]:
    """Record fields of the G each auto BGN layer chose and each GN layer got (none without such layers)."""
    fields: dict[str, Any] = group_norm_fields(module, prefix)  # GN: groups and channels per group per layer
    choices = auto_group_choices(module, prefix)
    if not choices:
        return fields
    return {**fields,
            "norm_groups_per_layer": {**fields.get("norm_groups_per_layer", {}),
                                      **{name: c["num_groups"] for name, c in choices.items()}},
            "norm_elements_per_statistic": {name: c["batch"] * c["features"] // c["num_groups"]
                                            for name, c in choices.items() if c["num_groups"]}}


def _selected_metrics(ctx: StageContext, stage: Stage, trainer: L.Trainer, module: L.LightningModule,
                      datamodule: L.LightningDataModule, tracker: SelectionTracker, ckpt_dir: Path,
                      fit_metrics: dict[str, float], last: dict[str, float]) -> dict[str, float]:
    """The metrics of the checkpoint the rule selects (the last one's when it is the last one)."""
    best_path = ckpt_dir / BEST_CHECKPOINT
    if stage.selection.monitor is None or tracker.best_step is None or not best_path.is_file():
        return dict(last)
    selected = dict(tracker.best_metrics)  # validation metrics at the selected epoch
    if not stage.test:
        return selected
    if tracker.best_step == trainer.global_step:  # the best checkpoint is the last one
        selected.update({k: v for k, v in last.items() if k not in fit_metrics})
        return selected
    started = time.perf_counter()
    _load_weights(module, best_path)
    selected.update(_test(trainer, module, datamodule))
    log.debug("selected checkpoint tested in %.1fs", time.perf_counter() - started)
    return selected
