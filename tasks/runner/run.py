"""Execute one run end to end: check, skip or resume, take the lease, train each stage, write the record.

Everything that can be refused is refused before the run directory exists
(:func:`~tasks.runner.prepare.prepare`, then the data's presence): exit code 2,
no directory, no record. Then the run takes its lease (a run another process
holds is reported as running elsewhere), trains its stages (a stage finished in
an earlier attempt is not trained again; an interrupted one resumes from its
newest checkpoint), and writes ``result.json`` last and atomically. A run that
diverges (non-finite loss) or fails ends with that status and a one-line error
in its record (the traceback goes to ``error.log``), so a sweep goes on. Ctrl-C
or a kill leaves no record: the checkpoint saved on the way out resumes it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch

from normlayers import group_norm_label

from ..data.errors import DataError
from .callbacks import DivergedError, LeaseLostError
from .comparison import comparison_fields, config_overrides
from .config import RunConfig
from .identity import declaration_fields, identity_fields, weight_standardization_of
from .lease import RunLease, lease_holder
from .loggers import logger_record_fields
from .outcomes import outcome_record_fields
from .prepare import coordinates_of, prepare
from .provenance import provenance
from .record import RECORD_NAME, SCHEMA_VERSION, utc_now, write_json_atomic
from .rundir import check_config_matches, inspect_run_dir, run_id, save_config
from .stage import PER_LAYER_FIELDS, StageContext, run_stage
from .task import StageResult, Task
from .world import is_rank_zero

__all__ = ["RunOutcome", "execute", "run_directory", "prepare"]

log = logging.getLogger("normbench")
STAGES_DIR = "stages"


@dataclass
class RunOutcome:
    status: str  # finished, diverged, failed, skipped, running_elsewhere
    run_dir: Path
    message: str = ""
    record: dict[str, Any] | None = None


def run_directory(cfg: RunConfig, task: Task) -> Path:
    dataset, model = task.identity(cfg)
    norm = str(cfg.norm) + ("+ws" if weight_standardization_of(cfg) else "")  # GN + WS runs beside GN's
    name = cfg.run_name or run_id(task.name, dataset, model, norm, task.normalization_batch(cfg), cfg.seed,
                                  coordinates_of(cfg, task))
    base = Path(cfg.out_dir).expanduser()
    return (base / cfg.sweep / name) if cfg.sweep else (base / name)


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # trainer.compile: BGN's group_layout is an lru_cache of a pure function of (shape, groups); tracing through it is exact
    warnings.filterwarnings("ignore", message=r"(?s).*lru_cache`-wrapped function at 'bgn\.py.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    # With OnExceptionCheckpoint, Lightning looks for last.ckpt on every fit; we pass it explicitly.
    warnings.filterwarnings("ignore", message=r".*ckpt_path=None\)` was called without a model.*")
    warnings.filterwarnings("ignore", message=r'.*ckpt_path="last"\) is set, but there is no last checkpoint.*')


def _stage_file(run_dir: Path, name: str) -> Path:
    return run_dir / STAGES_DIR / f"{name}.json"


def _load_stage(run_dir: Path, name: str) -> StageResult | None:
    try:
        data = json.loads(_stage_file(run_dir, name).read_text())
        return StageResult(**data)
    except (OSError, ValueError, TypeError):
        return None


def _record(cfg: RunConfig, task: Task, run_dir: Path, status: str, error: str | None, results: list[StageResult],
            started: str, extra: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"schema": SCHEMA_VERSION, "run_id": run_dir.name, "sweep": cfg.sweep}
    record.update(identity_fields(cfg, task))
    record.update({"status": status, "error": error})
    record.update(declaration_fields(cfg, task))
    record.update(comparison_fields(cfg, task, overrides))
    final = results[-1] if results else StageResult("train")
    for result in results:
        record.update(sorted(result.metrics.items()))
        record.update(result.outputs)
    for key in PER_LAYER_FIELDS:  # {layer: value} per stage, layer names stage-prefixed: one mapping for the run
        merged = {k: v for r in results for k, v in r.outputs.get(key, {}).items()}
        if merged:
            record[key] = merged
    if "norm_channels_per_group" in record:  # GN: the label says what ran where layers differ from the request
        record["norm_label"] = group_norm_label(record["norm_label"], record["norm_args"], record["norm_groups_per_layer"],
                                                record["norm_channels_per_group"])
    record["selected_epoch"] = final.selected_epoch
    record["epochs_completed"] = final.epochs_completed
    record["steps"] = final.steps
    if len(results) > 1:
        record["stages"] = [r.name for r in results]
        for r in results:
            record[f"{r.name}/wall_time_s"] = round(r.wall_time_s, 3)
            record[f"{r.name}/steps"] = r.steps
    record["wall_time_s"] = round(sum(r.wall_time_s for r in results), 3)
    seconds, images = sum(r.train_seconds for r in results), sum(r.train_images for r in results)
    if seconds > 0:
        record["train_images_per_s"] = round(images / seconds, 2)
    if cfg.trainer.compile:  # throughput above leaves out each attempt's first (compiling) step
        record["compile_time_s"] = round(sum(r.compile_time_s for r in results), 3)
    if status == "finished":
        record.update(task.record_extras(cfg, results))
    record["started_at"] = started
    record["finished_at"] = utc_now()
    record.update(outcome_record_fields(run_dir))  # outcome_file, eval_items_hash
    record.update(provenance(cfg.trainer.accelerator))
    record.update(extra)
    return record


def execute(cfg: RunConfig, task: Task, *, trainer_overrides: dict[str, Any] | None = None,
            use_wandb: bool | None = None, lease_ttl: float | None = None,
            argv: Sequence[str] | None = None) -> RunOutcome:
    """Run ``cfg`` (a ``task.config_class``) unless it finished before; see the module docstring.

    Raises ConfigError or DataError for a run refused before anything is written.
    ``trainer_overrides`` are extra Trainer arguments (benchmarks, tests);
    ``use_wandb`` overrides the config's W&B switch (None: the config decides);
    ``argv`` the arguments ``cfg`` was parsed from, for the record's ``overrides`` (None: compared
    with the config class's defaults).
    """
    overrides = config_overrides(cfg, task, argv) if is_rank_zero() else {}
    cfg = prepare(cfg, task)
    task.locate_data(cfg)
    run_dir = run_directory(cfg, task)
    check_config_matches(run_dir, cfg, task.name)
    state = inspect_run_dir(run_dir)
    if state.done:
        assert state.record is not None
        return RunOutcome("skipped", run_dir, f"already {state.record['status']}", state.record)
    rank_zero = is_rank_zero()
    lease = RunLease.acquire(run_dir, lease_ttl) if rank_zero else None
    if rank_zero and lease is None:
        holder = lease_holder(run_dir, lease_ttl) or {}
        return RunOutcome("running_elsewhere", run_dir, f"held by {holder.get('host', '?')} pid {holder.get('pid', '?')}")
    threads = torch.get_num_threads()
    try:
        return _train(cfg, task, run_dir, lease, rank_zero, trainer_overrides, use_wandb, overrides)
    finally:
        torch.set_num_threads(threads)  # trainer.threads is this run's, not the process's
        if lease is not None:
            lease.release()


def _train(cfg: RunConfig, task: Task, run_dir: Path, lease: RunLease | None, rank_zero: bool,
           trainer_overrides: dict[str, Any] | None, use_wandb: bool | None, overrides: dict[str, Any]) -> RunOutcome:
    if rank_zero:
        save_config(run_dir, cfg, task.name)
    _quiet_lightning()
    started = utc_now()
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    stages = task.stages(cfg)
    ctx = StageContext(cfg, task, run_dir, identity_fields(cfg, task), len(stages) > 1, lease,
                       trainer_overrides, use_wandb)
    results: list[StageResult] = []
    status, error = "finished", None
    try:
        for index, stage in enumerate(stages):
            done = _load_stage(run_dir, stage.name) if ctx.multi_stage else None
            if done is not None:
                results.append(done)
                continue
            L.seed_everything(cfg.seed + index, workers=True, verbose=False)
            results.append(StageResult(stage.name))
            run_stage(ctx, stage, {r.name: r for r in results[:-1]}, results[-1])
            if ctx.multi_stage and rank_zero:
                write_json_atomic(_stage_file(run_dir, stage.name), dataclasses.asdict(results[-1]))
    except LeaseLostError as exc:
        return RunOutcome("running_elsewhere", run_dir, str(exc))
    except DivergedError as exc:
        status, error = "diverged", str(exc)
    except DataError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # a failed run must not stop a sweep; KeyboardInterrupt/SystemExit pass through
        status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        if rank_zero:
            (run_dir / "error.log").write_text(traceback.format_exc())
    extra = logger_record_fields(cfg, run_dir, ctx.identity, use_wandb)
    record = _record(cfg, task, run_dir, status, error, results, started, extra, overrides)
    if rank_zero:
        write_json_atomic(run_dir / RECORD_NAME, record)
    return RunOutcome(status, run_dir, error or "", record)
