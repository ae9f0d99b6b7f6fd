"""Everything that can be checked before a run touches the disk: one place, the same for every task.

:func:`prepare` is what ``normbench run`` and a sweep's expansion call, so a
grid point that would be refused at run time is listed as invalid by
``normbench sweep --dry-run`` already. Order: field rules, the norm spec,
shared rules (batch statistics, devices, strategy, synchronization), the task's
own checks, ``trainer.compile`` (shared rules, then the task's ``compile_support``),
then the dry forward pass, whose verdict is cached per model
configuration (a sweep's seeds and batch sizes share it). The dry pass also refuses
a GN spec that is IN on every layer it built (1 channel per group: "it is IN, use
`in`"), unless the spec says ``allow_instance=true``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from normlayers import NormSpecError, ResolvedNorm, collect_group_norms, instance_only_reason, normalization_batch, resolve_norm

from .checks import check_fields, suggest
from .config import RunConfig, config_to_dict
from .diagnostics import check_diagnostics
from .errors import ConfigError
from .task import Task
from .world import gpu_count, resolve_devices, uses_gpus

__all__ = ["prepare", "check_batch_statistics", "check_trainer", "check_compile", "coordinates_of"]

# Config entries that never change a network's shapes: left out of the dry-run cache key (the dry
# pass always runs at batch 2, so the batch size is left out too, except with an automatic G).
_NOT_SHAPE = ("seed", "batch_size", "out_dir", "sweep", "run_name", "trainer", "wandb", "coordinate_keys", "profile")
_dry_run_verdicts: dict[tuple[str, str], str | None] = {}
_gn_layouts: dict[tuple[str, str, str], list[tuple[int, int, bool]]] = {}  # GN layers a dry pass built, per model


def check_batch_statistics(resolved: ResolvedNorm, per_device_batch: int) -> None:
    """Batch statistics of one sample are undefined (BN's variance is 0/0): refuse them."""
    if resolved.entry.uses_batch_stats and per_device_batch < 2:
        raise ConfigError(
            f"norm {resolved.label} uses batch statistics, which are undefined for a batch of 1 per device "
            f"(batch_size={per_device_batch}); use batch_size >= 2 or a batch-independent norm (in, ln, gn, pn, frn, evonorm_s0)"
        )


def _check_strategy(strategy: str) -> None:
    if "spawn" in strategy:
        raise ConfigError(
            f"trainer.strategy={strategy}: spawn-based strategies keep the training state in the child "
            "processes, so the run record would be incomplete; use ddp"
        )
    from lightning.pytorch.strategies import StrategyRegistry

    known = ["auto", *StrategyRegistry.available_strategies()]
    if strategy not in known:
        choices = ", ".join(s for s in known if "spawn" not in s)
        raise ConfigError(f"trainer.strategy={strategy!r} is unknown{suggest(strategy, known)}; choose one of {choices}")


def check_trainer(cfg: RunConfig, resolved: ResolvedNorm) -> None:
    """Devices, strategy and synchronized statistics: rules that hold for every task."""
    trainer = cfg.trainer
    _check_strategy(trainer.strategy)
    if trainer.accelerator in ("gpu", "cuda") and gpu_count() == 0:
        raise ConfigError(f"trainer.accelerator={trainer.accelerator} but no GPU is visible; use cpu or auto")
    world = resolve_devices(trainer) * trainer.num_nodes
    if trainer.sync_norm:
        if not resolved.entry.syncable:
            why = ("its batch statistics have no synchronized implementation" if resolved.entry.uses_batch_stats
                   else "it has no batch statistics to synchronize")
            raise ConfigError(
                f"trainer.sync_norm=true with norm {resolved.label}: {why} "
                "(syncable norms: those whose registry entry says syncable, e.g. bn, bgn)")
        if world > 1 and not uses_gpus(trainer) and not _syncs_on_cpu(resolved):
            raise ConfigError(
                f"trainer.sync_norm with {resolved.label} needs GPUs (torch's SyncBatchNorm refuses CPU tensors); "
                "synced bgn works on CPU")


def check_compile(cfg: RunConfig, task: Task) -> None:
    """``trainer.compile``: refused where it would not give the eager run's results (never silently ignored)."""
    trainer = cfg.trainer
    if not trainer.compile:
        return
    if trainer.sync_norm:
        raise ConfigError("trainer.compile=true with trainer.sync_norm=true: synchronized statistics run collectives "
                          "inside the forward pass, which normbench has not verified under torch.compile; "
                          "use one or the other")
    if _chooses_groups(resolve_norm(cfg.norm)):
        raise ConfigError(f"trainer.compile=true with norm {cfg.norm}: an automatic G is chosen inside the first forward "
                          "pass (it resizes the layer's running statistics), which normbench has not verified under "
                          "torch.compile; use a fixed num_groups to compile")
    reason = task.compile_support(cfg)
    if reason:
        raise ConfigError(f"trainer.compile=true: {reason}")
    problem = None if uses_gpus(trainer) else _cpp_compiler_problem()
    if problem:
        raise ConfigError(f"trainer.compile=true on CPU needs a C++ compiler for inductor ({problem}); "
                          "install g++ (or set CXX), or run without compile")


def _cpp_compiler_problem() -> str | None:
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception as exc:  # inductor's InvalidCxxCompiler (or an import problem): say what it said
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def _chooses_groups(resolved: ResolvedNorm) -> bool:
    """True for a norm whose group count is chosen per layer at run time (bgn:num_groups=auto)."""
    group = resolved.entry.group_param
    return group is not None and resolved.kwargs.get(group) == "auto"


def _syncs_on_cpu(resolved: ResolvedNorm) -> bool:
    # BGN synchronizes with its own collectives (gloo works); BN, and any other syncable entry unless it is
    # known to do the same, relies on torch's SyncBatchNorm (NCCL only).
    return resolved.entry.name == "bgn"


def _lookup(cfg: Any, dotted: str) -> Any:
    value = cfg
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(value) or part not in {f.name for f in dataclasses.fields(value)}:
            names = [f.name for f in dataclasses.fields(value)] if dataclasses.is_dataclass(value) else []
            raise ConfigError(f"coordinate_keys: {dotted!r} is not a config key{suggest(part, names)}")
        value = getattr(value, part)
    return value


def coordinates_of(cfg: RunConfig, task: Task) -> dict[str, Any]:
    """The task's grid coordinates plus the values of ``cfg.coordinate_keys`` (scalars only)."""
    coords = dict(task.coordinates(cfg))
    for key in cfg.coordinate_keys:
        value = _lookup(cfg, key)
        if not isinstance(value, (str, int, float, bool)) or value is None:
            raise ConfigError(f"coordinate_keys: {key} has the non-scalar value {value!r}; only scalar keys can be coordinates")
        coords.setdefault(key, value)
    return coords


def _dry_run_cached(cfg: RunConfig, task: Task) -> None:
    batch = task.normalization_batch(cfg)
    # An automatic G (bgn:num_groups=auto) depends on the batch: then the batch is part of the key.
    automatic = _chooses_groups(resolve_norm(cfg.norm))
    shape_config = {k: v for k, v in config_to_dict(cfg).items() if k not in _NOT_SHAPE or (automatic and k == "batch_size")}
    key = (task.name, json.dumps(shape_config, sort_keys=True, default=str))
    if key not in _dry_run_verdicts:
        try:
            with normalization_batch(batch), collect_group_norms() as built:  # auto G for the configured batch
                task.dry_run(cfg)
            # A task that caches its own dry pass (UDA) builds nothing on a hit: reuse the layout seen for this model.
            layout_key = (task.name, cfg.norm, json.dumps(config_to_dict(cfg).get("model"), sort_keys=True, default=str))
            built = _gn_layouts.setdefault(layout_key, built) if built else _gn_layouts.get(layout_key, [])
            _dry_run_verdicts[key] = instance_only_reason(cfg.norm, built)  # a GN that is IN on every layer
        except ConfigError as exc:
            _dry_run_verdicts[key] = str(exc)
        except NormSpecError as exc:  # a task whose own dry pass builds outside Task.dry_run's guard
            _dry_run_verdicts[key] = f"norm {cfg.norm}: {exc}"
    verdict = _dry_run_verdicts[key]
    if verdict is not None:
        raise ConfigError(verdict)


def check_analysis(cfg: RunConfig) -> None:
    """The analysis declarations name real norm specs and well-formed contrasts (refused before the run, not at
    the record after it)."""
    specs = [("reference_norm", cfg.reference_norm)] if cfg.reference_norm else []
    for i, h in enumerate(cfg.hypotheses):
        if not h.id or not h.norm:
            raise ConfigError(f"hypotheses[{i}]: id and norm are required, got id={h.id!r}, norm={h.norm!r}")
        specs += [(f"hypotheses[{i}] ({h.id}).norm", h.norm), (f"hypotheses[{i}] ({h.id}).reference", h.reference)]
    for i, c in enumerate(cfg.contrasts):
        if not c.norm or len(c.between) != 2:
            raise ConfigError(f"contrasts[{i}]: norm and two axis values in between are required, "
                              f"got norm={c.norm!r}, between={c.between!r}")
        specs += [(f"contrasts[{i}].norm", c.norm), (f"contrasts[{i}].reference", c.reference)]
    for where, spec in specs:
        if spec:
            try:
                resolve_norm(spec)
            except NormSpecError as exc:
                raise ConfigError(f"{where}: {exc}") from None


def prepare(cfg: RunConfig, task: Task, *, dry_run: bool = True) -> RunConfig:
    """Check ``cfg`` for ``task`` and return it with the norm in canonical form; ConfigError if refused."""
    if not isinstance(cfg, task.config_class):
        raise ConfigError(f"task {task.name} needs a {task.config_class.__name__}, got {type(cfg).__name__}")
    check_fields(cfg)
    try:
        resolved = resolve_norm(cfg.norm)
    except NormSpecError as exc:
        raise ConfigError(str(exc)) from None
    cfg = dataclasses.replace(cfg, norm=str(resolved.spec))
    check_trainer(cfg, resolved)
    task.validate(cfg)
    check_compile(cfg, task)
    check_batch_statistics(resolved, task.normalization_batch(cfg))
    check_diagnostics(cfg, task.normalization_batch(cfg), task.diagnostics_support(cfg))
    coordinates_of(cfg, task)
    check_analysis(cfg)
    if dry_run:
        _dry_run_cached(cfg, task)
    return cfg
