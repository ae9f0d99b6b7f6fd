"""Run directories: stable names, the saved config, and what a rerun should do.

A run's directory name is derived from the grid coordinates (task, data set,
model, the task's own coordinates such as the method, norm, batch size, seed),
so a sweep relaunched later finds its runs again. The resolved config is saved next to them; a rerun with a different
config for the same directory is refused instead of silently mixing results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from normbench.naming import file_safe

from .config import RunConfig, config_to_dict
from .errors import ConfigError
from .record import TERMINAL_STATUSES, read_record

CONFIG_NAME = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"  # ModelCheckpoint, at epoch ends (and every n steps if configured)
INTERRUPT_CHECKPOINT = "interrupted"  # OnExceptionCheckpoint, on Ctrl-C, SIGTERM or an error

# Keys that do not change what a run computes: they may differ between attempts.
OPERATIONAL_KEYS = {
    "coordinate_keys",
    "summary",
    "out_dir",
    "sweep",
    "run_name",
    "wandb",
    "trainer.threads",
    "trainer.log_every_n_steps",
    "trainer.checkpoint_every_n_steps",
    "data.num_workers",
    "data.root",
    "data.download",
    "data.eval_batch_size",
}
# Keys added after runs were written: a config.yaml without one means its default (resuming is not refused).
ADDED_KEYS = {"trainer.compile": False, "model.weight_standardization": False, "diagnostics.norm_stats": False,
              "diagnostics.points": 4, "diagnostics.steps": [], "diagnostics.probe_size": 2048, "diagnostics.probe_seed": 0}


def slug(text: str) -> str:
    """A file-system-safe version of a norm spec or name (``bgn:num_groups=2`` -> ``bgn_num_groups=2``)."""
    return file_safe(text)


def _coordinate_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run_id(task: str, dataset: str, model: str, norm: str, batch_size: int, seed: int,
           coordinates: dict[str, Any] | None = None) -> str:
    """``<task>-<dataset>-<model>[-<key>=<value>...]-<norm>-bs<B>-s<seed>``, file-system safe."""
    coords = "".join(f"-{slug(k)}={slug(_coordinate_text(v))}" for k, v in (coordinates or {}).items())
    return f"{task}-{dataset}-{model}{coords}-{slug(norm)}-bs{batch_size}-s{seed}"


def flatten(d: dict[str, Any], prefix: str = "", keep: tuple[str, ...] = ("norm",)) -> dict[str, Any]:
    """Nested config dict -> dotted keys (``optim.base_lr``); the keys in ``keep`` stay whole."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in keep:
            out.update(flatten(value, f"{name}.", keep))
        else:
            out[name] = value
    return out


def semantic_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Config keys whose values differ, ignoring operational settings."""
    a, b = {**ADDED_KEYS, **flatten(old)}, {**ADDED_KEYS, **flatten(new)}
    keys = sorted(set(a) | set(b))
    ignored = lambda k: any(k == op or k.startswith(op + ".") for op in OPERATIONAL_KEYS)  # noqa: E731
    return [k for k in keys if not ignored(k) and a.get(k) != b.get(k)]


@dataclass(frozen=True)
class RunState:
    """What is on disk for a run directory."""

    directory: Path
    record: dict[str, Any] | None
    last_checkpoint: Path | None

    @property
    def done(self) -> bool:
        return self.record is not None and self.record.get("status") in TERMINAL_STATUSES

    @property
    def resumable(self) -> bool:
        return not self.done and self.last_checkpoint is not None


def latest_checkpoint(directory: Path) -> Path | None:
    """The newer of last.ckpt and interrupted.ckpt, the state to resume from."""
    folder = directory / CHECKPOINT_DIR
    found = [p for p in (folder / LAST_CHECKPOINT, folder / f"{INTERRUPT_CHECKPOINT}.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def inspect_run_dir(directory: Path) -> RunState:
    return RunState(directory, read_record(directory), latest_checkpoint(directory))


def _config_dict(cfg: RunConfig, task: str) -> dict[str, Any]:
    return {"task": task, **config_to_dict(cfg)}


def check_config_matches(directory: Path, cfg: RunConfig, task: str) -> None:
    """Refuse to reuse a run directory that holds a run of a different config."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        return
    with open(path) as fh:
        old = yaml.safe_load(fh) or {}
    new = _config_dict(cfg, task)
    diff = semantic_differences(old, new)
    if diff:
        flat_old, flat_new = flatten(old), flatten(new)
        shown = ", ".join(f"{k}: {flat_old.get(k)!r} -> {flat_new.get(k)!r}" for k in diff[:6])
        raise ConfigError(
            f"{directory} holds a run with a different config ({shown}); "
            "pass --run_name or --out_dir to keep both, or delete the directory to start over"
        )


def save_config(directory: Path, cfg: RunConfig, task: str) -> None:
    """Write the resolved config as config.yaml (atomically)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_NAME
    tmp = path.with_suffix(".yaml.tmp")
    with open(tmp, "w") as fh:
        yaml.safe_dump(_config_dict(cfg, task), fh, sort_keys=False)
    tmp.replace(path)
