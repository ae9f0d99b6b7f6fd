"""The part of a run's configuration that every task shares (dataclasses parsed by jsonargparse).

A task's config class subclasses :class:`RunConfig` and adds its own sections
(classification: ``data``, ``model``, ``optim``; NAS: a search and a retrain
optimizer; few-shot: ways and shots; ...). Everything here is what the run
machinery itself needs: the norm, the batch, the seed, where outputs go, the
trainer and W&B. Field docstrings become the ``--help`` text; ``Literal`` types
and :func:`~tasks.runner.checks.checked` rules refuse bad values before anything
runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional, Union

from .checks import Rule, at_least, checked, non_negative_int, positive_int
from .errors import ConfigError

__all__ = ["ConfigError", "TrainerConfig", "WandbConfig", "DiagnosticsConfig", "SummaryColumn", "HypothesisDecl",
           "ContrastDecl", "RunConfig", "config_to_dict", "PRECISIONS"]

PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
_DEVICES = Rule(lambda v: v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and (v == -1 or v >= 1)),
                "an integer >= 1, -1 (every visible GPU) or auto")
_MAX_STEPS = Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == -1 or v >= 1),
                  "-1 (no limit) or an integer >= 1")


@dataclass
class TrainerConfig:
    """Training length, devices and precision (passed to Lightning's Trainer).

    Attributes:
        epochs: training epochs (of the task's main training stage).
        max_steps: stop after this many training steps (batches); -1: no limit.
        accelerator: auto, cpu, gpu (cuda) or mps.
        devices: devices per node (batch_size is per device); -1 or auto: every visible GPU.
        num_nodes: nodes (SLURM).
        strategy: auto or ddp (multi-device runs use DDP; spawn-based strategies are refused).
        precision: 32-true, 16-mixed, bf16-mixed, ...
        sync_norm: synchronize batch statistics across devices (SyncBN, synced BGN).
        threads: torch intra-op threads on CPU (0: torch's default).
        log_every_n_steps: how often per-step metrics are written.
        checkpoint_every_n_steps: also save last.ckpt every n steps (0: at epoch ends only).
        deterministic: ask torch for deterministic algorithms.
        compile: compile the task's network(s) with torch.compile (inductor: C++ on CPU, Triton on GPU); the first
            training step's extra time is recorded as compile_time_s, apart from throughput; refused where a task
            cannot run compiled (see docs/tasks.md).
    """

    epochs: int = checked(30, positive_int)
    max_steps: int = checked(-1, _MAX_STEPS)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: Union[int, Literal["auto"]] = checked(1, _DEVICES)
    num_nodes: int = checked(1, positive_int)
    strategy: str = "auto"
    precision: Literal["32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true"] = "32-true"
    sync_norm: bool = False
    threads: int = checked(0, non_negative_int)
    log_every_n_steps: int = checked(50, positive_int)
    checkpoint_every_n_steps: int = checked(0, non_negative_int)
    deterministic: bool = False
    compile: bool = False


@dataclass
class WandbConfig:
    """Weights & Biases logging (off by default; NORMBENCH_WANDB=1 turns it on).

    Attributes:
        enabled: log this run to W&B.
        project: W&B project.
        entity: W&B entity (user or team); default: the logged-in user's.
        mode: online, offline, disabled or auto (online with an API key, else offline into the run directory).
        tags: extra tags (the sweep name is always added).
    """

    enabled: bool = False
    project: str = "normbench"
    entity: Optional[str] = None
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    tags: list[str] = field(default_factory=list)


@dataclass
class DiagnosticsConfig:
    """Measurements of the norm layers during training (off by default; docs/diagnostics.md).

    Attributes:
        norm_stats: measure each registry norm layer's statistics (noise of batch statistics, confusion of
            pooled channels, elements per statistic) with a probe pass; writes norm_stats.json and
            diagnostics/... record fields.
        points: when steps is empty, measure after 1/points, 2/points, ..., all of the training steps.
        steps: training steps (batches) after which to measure; empty: spread by points. 0 is before training.
        probe_size: fixed training images of the probe pass (at least two normalization batches).
        probe_seed: which images: the first probe_size of a permutation drawn with this seed (the same for
            every norm, batch size and run seed).
    """

    norm_stats: bool = False
    points: int = checked(4, positive_int)
    steps: list[int] = checked(default_factory=list, rule=non_negative_int)
    probe_size: int = checked(2048, positive_int)
    probe_seed: int = checked(0, non_negative_int)


@dataclass
class SummaryColumn:
    """One column this run's task contributes to the cross-task summary table.

    Declared before the runs (in a task's config or a sweep's overrides), never
    picked after seeing the results.

    Attributes:
        label: column header (default: the task's name and the axis setting).
        axis: which column of the task's own table: min, max (the smallest or largest axis value, e.g.
            batch size), average (the mean over the axis, e.g. domain pairs) or one axis value's label.
        where: grid coordinates the column's runs must have (e.g. {method: pgd_at}).
        metric: the metric shown (default: the task's primary metric).
    """

    label: str = ""
    axis: str = "max"
    where: dict[str, Any] = field(default_factory=dict)
    metric: str = ""


@dataclass
class HypothesisDecl:
    """One pre-registered comparison of the report's Holm family (docs/reporting.md, *Statistics*).

    A sweep declares its hypotheses before any run (``overrides: {hypotheses: [...]}``); every record carries
    them unchanged, and the reporter adjusts the p-values of exactly these comparisons together.

    Attributes:
        id: short name, e.g. H1-classification.
        norm: the norm spec under test, e.g. bgn:num_groups=auto.
        task: the task it is about ("" : any task).
        reference: the norm it is compared with ("" : the report's reference, BN by default).
        metric: the metric ("" : the primary metric).
        axis: the table column, as an axis value or label ("" : every column).
        where: grid coordinates the compared runs must have.
        expect: better or worse (null: no direction stated).
    """

    id: str = ""
    norm: str = ""
    task: str = ""
    reference: str = ""
    metric: str = ""
    axis: Union[int, str] = ""
    where: dict[str, Any] = field(default_factory=dict)
    expect: Optional[Literal["better", "worse"]] = None


@dataclass
class ContrastDecl:
    """A difference-in-differences across the table axis: (norm - reference) at between[0] minus at between[1].

    Attributes:
        norm: the norm spec, e.g. bgn:num_groups=auto.
        between: two axis values or labels, e.g. [2, 128].
        reference: the norm it is compared with ("" : the report's reference).
        metric: the metric ("" : the primary metric).
        task: the task ("" : any task).
    """

    norm: str = ""
    between: list[Union[int, str]] = field(default_factory=list)
    reference: str = ""
    metric: str = ""
    task: str = ""


@dataclass
class RunConfig:
    """One run: a task, a normalization, a batch size and a seed.

    Attributes:
        norm: normalization spec, e.g. bn, gn, bgn:num_groups=4 (or a mapping {name: bgn, num_groups: 4}).
        batch_size: batch size per device; what it counts is the task's to say (see docs/tasks.md).
        seed: random seed of initialization, data order and augmentation.
        profile: quick, medium, full, paper or custom (recorded; set by the shipped configs).
        out_dir: where run directories go.
        sweep: sweep name; runs then go to out_dir/<sweep>/<run_id>.
        run_name: directory name (default: derived from the task, its grid coordinates, norm, batch size and seed).
        coordinate_keys: dotted config keys that also identify the run (run id, W&B group, report tables), beyond
            the task's own coordinates; a sweep's grid sets this for the keys it varies.
        summary: the cross-task summary table's columns for this task (default: the task's own declaration).
        diagnostics: optional measurements of the norm layers (``--diagnostics.norm_stats true``).
        reference_norm: the norm every other norm is compared with in the report (null: bn).
        hypotheses: the sweep's pre-registered comparisons (one Holm family in the report); analysis only.
        contrasts: declared difference-in-differences across the table axis; analysis only.
    """

    norm: Union[str, dict[str, Any]] = "bn"
    batch_size: int = checked(128, positive_int)
    seed: int = checked(0, at_least(0))
    profile: Literal["quick", "medium", "full", "paper", "custom"] = "custom"
    out_dir: str = "runs"
    sweep: Optional[str] = None
    run_name: Optional[str] = None
    coordinate_keys: list[str] = field(default_factory=list)
    summary: list[SummaryColumn] = field(default_factory=list)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    reference_norm: Optional[str] = None
    hypotheses: list[HypothesisDecl] = field(default_factory=list)
    contrasts: list[ContrastDecl] = field(default_factory=list)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (for config.yaml and comparisons)."""
    return asdict(cfg)

