"""The task contract: what a task tells the run machinery, and nothing more (docs/tasks.md).

A task is a :class:`Task` subclass with a config class. It *declares* what its
results mean (metrics with direction and unit, the table axis, the grid
coordinates, the checkpoint-selection rule, the norm-protocol choices) and
*builds* a LightningModule and a LightningDataModule per training stage. The
machinery in :mod:`tasks.runner.run` does everything else the same way for
every task: validation, the dry forward pass, run directories and leases,
checkpoints and resume, selected-vs-last evaluation and the run record.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from torch import nn

from normlayers import NormSpecError

from .config import RunConfig, SummaryColumn
from .errors import ConfigError

__all__ = [
    "MetricSpec", "TableAxis", "AxisPoint", "SelectionRule", "Stage", "StageResult", "Task",
    "BATCH_SIZE_AXIS", "LAST", "best_on",
]

Unit = Literal["fraction", "percent", "count", "seconds", ""]


@dataclass(frozen=True)
class MetricSpec:
    """One metric a task reports: what it is called, which way is better, how to show it.

    Attributes:
        name: the key in the record, ``split/name`` (``test/robust_acc``).
        label: words for a table caption or plot axis ("AutoAttack accuracy").
        direction: ``max`` when higher is better, ``min`` when lower is.
        unit: ``fraction`` (stored in [0, 1], shown in percent), ``percent``, ``count``, ``seconds`` or ``""``.
        primary: the metric of the main table (exactly one per task).
        interval: name of a metric holding this one's 95% half-width for the run (few-shot episodes), or None.
        group: metrics of one task with the same group share one table (adversarial: "robustness", few-shot's two
            norm modes: "norm_mode"), the metric a second column level under each axis value; None: its own table.
        short: a short header for that table and the summary ("FGSM"); the label when None.
        kind: ``result`` or ``cost`` (wall time, parameters, throughput: shown, never marked best).
    """

    name: str
    label: str
    direction: Literal["max", "min"] = "max"
    unit: Unit = "fraction"
    primary: bool = False
    interval: str | None = None
    group: str | None = None
    short: str | None = None
    kind: Literal["result", "cost"] = "result"

    def declaration(self) -> dict[str, Any]:
        """The record's entry; the optional fields only when set, so older readers keep working."""
        out: dict[str, Any] = {"name": self.name, "label": self.label, "direction": self.direction,
                               "unit": self.unit, "primary": self.primary, "interval": self.interval}
        optional = {"group": self.group, "short": self.short, "kind": None if self.kind == "result" else self.kind}
        return out | {k: v for k, v in optional.items() if v is not None}


@dataclass(frozen=True)
class TableAxis:
    """The coordinate a results table's columns run over.

    Attributes:
        key: ``batch_size`` or a name of the task's own (``ways_shots``, ``pair``).
        label: the columns' title ("batch size per device", "source -> target").
        coordinates: the grid coordinates the axis spans (``("ways", "shots")``); empty for batch size.
        average: add a column averaging the row over the axis (domain-adaptation pairs).
        batch_size_follows: the normalization batch is a function of the axis (few-shot: ways x (shots +
            queries)), so runs at different batch sizes still share a table.
    """

    key: str
    label: str
    coordinates: tuple[str, ...] = ()
    average: bool = False
    batch_size_follows: bool = False

    def declaration(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "coordinates": list(self.coordinates),
                "batch_size_follows": self.batch_size_follows}


BATCH_SIZE_AXIS = TableAxis("batch_size", "batch size per device")


@dataclass(frozen=True)
class AxisPoint:
    """A run's place on its task's table axis: the value, the column header, the column order."""

    value: int | float | str
    label: str
    order: float


@dataclass(frozen=True)
class SelectionRule:
    """Which checkpoint's metrics the record reports under the plain names.

    The last checkpoint's are always reported too, under ``last/``. ``monitor``
    is a validation metric the module logs at every validation; None selects
    the last checkpoint. Selection never reads test data (or, in domain
    adaptation, target labels): the rule's name says what it reads.
    """

    name: str
    monitor: str | None = None
    mode: Literal["max", "min"] = "max"

    def declaration(self) -> dict[str, Any]:
        return {"rule": self.name, "monitor": self.monitor, "mode": self.mode}


LAST = SelectionRule("last")


def best_on(monitor: str, mode: Literal["max", "min"] = "max", name: str | None = None) -> SelectionRule:
    """The checkpoint with the best ``monitor`` over validations (``best val/acc``)."""
    return SelectionRule(name or f"best {monitor}", monitor, mode)


@dataclass(frozen=True)
class Stage:
    """One training stage (most tasks have one; NAS has search, then retrain).

    Attributes:
        name: stage name; with several stages it names the checkpoint folder and prefixes its record entries.
        selection: the checkpoint whose test metrics the stage reports.
        epochs: training epochs of the stage.
        max_steps: stop after this many training steps (batches), -1 for no limit.
        images_per_step: images one training step processes on one device (throughput counts these).
        optimizer_steps_per_batch: optimizer steps Lightning counts per batch (2 for DARTS' bilevel step).
        test: run the test loop at the end (the last stage's test metrics are the record's).
        norm_batch: images per device in one normalizing training forward of this stage (what
            ``bgn:num_groups=auto`` chooses G for); None: the task's ``normalization_batch``.

    The record takes every stage's metrics under the names its module logs, so
    an earlier stage logs names of its own (``search/val_acc``).
    """

    name: str
    selection: SelectionRule
    epochs: int
    images_per_step: int
    max_steps: int = -1
    optimizer_steps_per_batch: int = 1
    test: bool = True
    norm_batch: int | None = None


@dataclass
class StageResult:
    """What a finished stage leaves for the record and for later stages (saved in ``stages/<name>.json``)."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)  # plain: selected checkpoint; last/...: last one
    outputs: dict[str, Any] = field(default_factory=dict)  # JSON values a later stage or the record needs
    selected_epoch: int | None = None
    epochs_completed: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    train_images: int = 0
    wall_time_s: float = 0.0
    compile_time_s: float = 0.0  # trainer.compile: the first training steps' time beyond steady state


class Task:
    """Base class of every task; override what differs from the defaults (classification overrides little).

    Class attributes: ``name``, ``config_class``, ``description``, ``table_axis``,
    ``grid_coordinates`` (coordinate name -> the dotted config key it reads, e.g.
    ``{"method": "method"}``), ``eval_needs_gradients`` (adversarial attacks,
    MAML: test and validation run outside inference mode), ``batch_size_meaning``
    (what ``batch_size`` counts), ``non_computational_keys`` (dotted config keys of the
    task's own that never change a result, left out of the record's ``comparison`` beside
    :data:`tasks.runner.comparison.NOT_COMPUTATIONAL`).
    """

    name: ClassVar[str]
    config_class: ClassVar[type[RunConfig]]
    description: ClassVar[str] = ""
    table_axis: ClassVar[TableAxis] = BATCH_SIZE_AXIS
    grid_coordinates: ClassVar[dict[str, str]] = {}
    eval_needs_gradients: ClassVar[bool] = False
    batch_size_meaning: ClassVar[str] = "images per device per training step"
    non_computational_keys: ClassVar[tuple[str, ...]] = ()
    # Coordinates that name a row variant (adversarial attack_mode, few-shot norm_mode) instead of splitting
    # tables: the record lists those the run has (``row_coordinates``) and the reporter puts them in the row label.
    row_coordinates: ClassVar[tuple[str, ...]] = ()

    # --- identity: what names a run and its place in the tables -----------------------------
    def identity(self, cfg: RunConfig) -> tuple[str, str]:
        """(data set, model) names of the run."""
        raise NotImplementedError

    def coordinates(self, cfg: RunConfig) -> dict[str, Any]:
        """Grid coordinates beyond norm, batch size and seed (method, ways, shots, pair...), in run-id order.

        By default the values of the config keys named in ``grid_coordinates``.
        """
        out: dict[str, Any] = {}
        for name, key in self.grid_coordinates.items():
            value: Any = cfg
            for part in key.split("."):
                value = getattr(value, part)
            out[name] = value
        return out

    def training_steps(self, cfg: RunConfig) -> int | None:
        """Optimizer steps the run will take, for the sweep dry run's time estimate; None when unknown."""
        return None

    def normalization_batch(self, cfg: RunConfig) -> int:
        """Images in one normalizing forward pass per device during training (the record's batch_size)."""
        return cfg.batch_size

    def axis_point(self, cfg: RunConfig) -> AxisPoint:
        batch = self.normalization_batch(cfg)
        return AxisPoint(batch, f"bs={batch}", batch)

    # --- declarations --------------------------------------------------------------------------
    def metrics(self, cfg: RunConfig) -> tuple[MetricSpec, ...]:
        raise NotImplementedError

    def selection(self, cfg: RunConfig) -> SelectionRule:
        return LAST

    def summary_columns(self, cfg: RunConfig) -> tuple[SummaryColumn, ...]:
        """The task's column(s) in the cross-task summary table (``cfg.summary`` overrides them).

        Default: the primary metric at the largest value of the table axis.
        """
        return (SummaryColumn(label=self.name, axis="max"),)

    def protocol(self, cfg: RunConfig) -> dict[str, Any]:
        """Choices that change what a norm sees (kept the same for every norm, and recorded)."""
        return {}

    def stages(self, cfg: RunConfig) -> tuple[Stage, ...]:
        return (Stage("train", self.selection(cfg), cfg.trainer.epochs, self.normalization_batch(cfg),
                      max_steps=cfg.trainer.max_steps),)

    # --- checks before anything runs -------------------------------------------------------------
    def validate(self, cfg: RunConfig) -> None:
        """Refuse bad values with ConfigError; no disk access and no model (cheap, runs for every grid point)."""

    def locate_data(self, cfg: RunConfig) -> None:
        """Raise DataError when the data is neither on disk nor allowed to be downloaded (no loading)."""

    def input_shape(self, cfg: RunConfig) -> tuple[int, ...]:
        """Shape of one input sample, for the dry forward pass."""
        raise NotImplementedError

    def build_network(self, cfg: RunConfig) -> nn.Module:
        """The network the dry forward pass checks (every norm slot sees its real input shape)."""
        raise NotImplementedError

    def dry_run(self, cfg: RunConfig) -> None:
        """One eval-mode forward pass of zeros at batch 2: shape problems (a BGN G that does not divide a
        layer's C*H*W) are refused here, before a run directory exists."""
        shape = self.input_shape(cfg)
        try:  # building can refuse too (a GN channels_per_group that does not divide a layer's C)
            net = self.build_network(cfg).eval()
            with torch.no_grad():
                net(torch.zeros(2, *shape))
        except NormSpecError as exc:
            dataset, model = self.identity(cfg)
            dims = "x".join(str(d) for d in shape)
            raise ConfigError(f"model {model} on {dims} {dataset} inputs: {exc}") from None

    def diagnostics_support(self, cfg: RunConfig) -> str | None:
        """None when ``diagnostics.norm_stats`` can measure this run (:meth:`diagnostics_probe` has a probe for it);
        else why not, one line, refused before the run as ``diagnostics.norm_stats=true: <reason>``."""
        return None

    def compile_support(self, cfg: RunConfig) -> str | None:
        """None when ``trainer.compile`` gives this run the same results compiled; else why not (one line,
        refused before the run as ``trainer.compile=true: <reason>``)."""
        return None

    # --- building and running ---------------------------------------------------------------------
    def compiled_networks(self, cfg: RunConfig, module: L.LightningModule) -> tuple[nn.Module, ...]:
        """The networks ``trainer.compile`` compiles in place (``nn.Module.compile``: state_dict keys unchanged).

        Every call of these modules then runs compiled; a call that bypasses them (``net.features(x)``) does
        not, so list what the training step really calls. Default: ``module.net``.
        """
        net = getattr(module, "net", None)
        if not isinstance(net, nn.Module):
            raise NotImplementedError(f"task {self.name}: its module has no .net; override compiled_networks")
        return (net,)

    def diagnostics_probe(self, cfg: RunConfig, module: L.LightningModule, datamodule: L.LightningDataModule,
                          size: int, seed: int) -> tuple[nn.Module, torch.Tensor]:
        """The network the norm diagnostics measure and ``size`` fixed training inputs it takes (no augmentation).

        Fed in chunks of :meth:`normalization_batch` in training's modes (docs/diagnostics.md). Default:
        ``module.net`` and images of ``datamodule.train_set`` picked with ``seed``
        (:func:`tasks.runner.diagnostics.default_probe`); a task whose data or network differ overrides this.
        """
        from .diagnostics import default_probe

        return default_probe(module, datamodule, size, seed)

    def build(self, cfg: RunConfig, stage: Stage, earlier: dict[str, StageResult]
              ) -> tuple[L.LightningModule, L.LightningDataModule]:
        """The module and data of ``stage``; ``earlier`` holds the results of the stages before it."""
        raise NotImplementedError

    def stage_outputs(self, cfg: RunConfig, stage: Stage, module: L.LightningModule) -> dict[str, Any]:
        """JSON values a finished stage passes on (a NAS genotype); they also go into the record."""
        return {}

    def record_extras(self, cfg: RunConfig, results: list[StageResult]) -> dict[str, Any]:
        """Task-specific record fields computed from the finished stages (default: none)."""
        return {}

    # --- tests --------------------------------------------------------------------------------------
    def shrink(self, cfg: RunConfig) -> RunConfig:
        """A seconds-long version of ``cfg`` for tests: the same code paths on tiny data, model and schedule.

        The default shortens training only; tasks shrink their data and model too.
        """
        trainer = dataclasses.replace(cfg.trainer, epochs=min(cfg.trainer.epochs, 2), log_every_n_steps=5)
        return dataclasses.replace(cfg, trainer=trainer)


def finite_metrics(values: dict[str, Any]) -> dict[str, float]:
    """Scalar, finite entries of a metrics mapping (Lightning's callback_metrics) as floats."""
    out: dict[str, float] = {}
    for key, value in values.items():
        tensor = torch.as_tensor(value)
        if "/" in key and tensor.numel() == 1:
            number = float(tensor)
            if math.isfinite(number):
                out[key] = number
    return out
