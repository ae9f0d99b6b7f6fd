"""A run's comparison key and its command-line overrides: which runs may share one table, and why a
``profile: quick`` record may not be the shipped quick profile.

``comparison`` is every resolved config value that changes what is computed, flat
(``{"data.fraction": 0.01, ...}``), plus the task, data set and model; two runs may sit in
one table cell-by-cell only when their comparisons are equal (``comparison_hash``, the
first 16 hex digits of the SHA-256 of its canonical JSON). Left out, because they may
differ inside one table: the norm, the seed, the table axis's config key (``batch_size``
where the axis is the batch or follows it) and the grid coordinates' keys (they are in the
record's ``coordinates``). Left out because they never change a result:
:data:`NOT_COMPUTATIONAL`, plus what a task declares in ``Task.non_computational_keys``.
Diagnostics are in that list: the probe passes run under a forked random state, in eval
copies, and leave the training bit-identical (tests/tasks/test_norm_diagnostics.py).

``overrides`` is every value the command line or a sweep set that differs from what the
``--config`` files alone give (norm, seed, batch size, out_dir included): a record then says
``profile: quick`` *and* ``{"data.fraction": 0.02}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Sequence

from .config import RunConfig, config_to_dict
from .errors import ConfigError
from .task import Task

__all__ = ["NOT_COMPUTATIONAL", "comparison_fields", "comparison_of", "comparison_hash", "config_overrides",
           "excluded_keys", "flatten", "config_only_args"]

# Dotted config keys (a key also covers everything under it) that never change what a run computes:
# where outputs go and how they are named, how often things are logged or checkpointed, W&B, CPU
# threads, the profile's name (its values are in the comparison themselves), where data is read from,
# the measurements of diagnostics, and the report's analysis declarations.
NOT_COMPUTATIONAL: tuple[str, ...] = (
    "out_dir", "sweep", "run_name", "coordinate_keys", "summary", "profile",
    "wandb",
    "trainer.threads", "trainer.log_every_n_steps", "trainer.checkpoint_every_n_steps",
    "diagnostics",
    "reference_norm", "hypotheses", "contrasts",
    "data.root", "data.download", "data.cache_dir",
)
# Always out of the key: they are the record's own table coordinates (norm row, seed replicate).
_ALWAYS_VARY = ("norm", "seed")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"epochs": 3}}`` -> ``{"trainer.epochs": 3}``; lists and scalars are leaves (JSON values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = config_to_dict(value)
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, Any] = {}
        for key in value:
            out.update(flatten(value[key], f"{prefix}{key}."))
        return out
    return {prefix[:-1]: _json_value(value)}


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def excluded_keys(cfg: RunConfig, task: Task) -> tuple[str, ...]:
    """The dotted keys left out of ``cfg``'s comparison (each covers the keys under it)."""
    keys = [*_ALWAYS_VARY, *NOT_COMPUTATIONAL, *getattr(task, "non_computational_keys", ())]
    keys += list(task.grid_coordinates.values()) + list(cfg.coordinate_keys)
    if task.table_axis.key == "batch_size" or task.table_axis.batch_size_follows:
        keys.append("batch_size")
    return tuple(dict.fromkeys(keys))


def _covered(key: str, excluded: Sequence[str]) -> bool:
    return any(key == e or key.startswith(e + ".") for e in excluded)


def comparison_of(cfg: RunConfig, task: Task) -> dict[str, Any]:
    """The flat comparison key of a prepared ``cfg``: task, data set, model, then config keys in sorted order."""
    dataset, model = task.identity(cfg)
    excluded = excluded_keys(cfg, task)
    values = {k: v for k, v in sorted(flatten(cfg).items()) if not _covered(k, excluded)}
    return {"task": task.name, "dataset": dataset, "model": model, **values}


def comparison_hash(comparison: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON (sorted keys, no spaces) of ``comparison``."""
    text = json.dumps(comparison, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_only_args(args: Sequence[str]) -> list[str]:
    """The ``--config FILE`` / ``--config=FILE`` arguments of ``args``, in order (what the YAML files alone give)."""
    out: list[str] = []
    items = list(args)
    for i, arg in enumerate(items):
        if arg == "--config" and i + 1 < len(items):
            out += [arg, items[i + 1]]
        elif arg.startswith("--config="):
            out.append(arg)
    return out


def config_overrides(cfg: RunConfig, task: Task, args: Sequence[str] | None) -> dict[str, Any]:
    """``{dotted key: value}`` of ``cfg`` (parsed from ``args``) that differ from the ``--config`` files alone.

    ``args`` None (a run started from Python with a config object): what differs from the config
    class's defaults, i.e. from a run without any ``--config`` file. Compared before
    :func:`~tasks.runner.prepare.prepare`, so ``--norm BN`` is an override even though prepare
    spells it ``bn``.
    """
    from .parse import parse_config

    base: RunConfig | None = None
    if args is not None:
        try:
            base = parse_config(task, config_only_args(args), raise_errors=True)
        except (ConfigError, SystemExit):
            base = None
    if base is None:
        base = task.config_class()
    full, alone = flatten(cfg), flatten(base)
    return {k: v for k, v in full.items() if k not in alone or alone[k] != v}


def comparison_fields(cfg: RunConfig, task: Task, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The record's ``comparison``, ``comparison_hash`` and ``overrides`` (``{}`` when None)."""
    comparison = comparison_of(cfg, task)
    return {"comparison": comparison, "comparison_hash": comparison_hash(comparison), "overrides": overrides or {}}
