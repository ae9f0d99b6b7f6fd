"""Typed run configuration shared by every task (dataclasses parsed by jsonargparse).

A task's config class subclasses :class:`RunConfig` and adds its own section, so
``normbench run <task> --config X.yaml --norm bgn:num_groups=2 --data.fraction 0.1``
and ``--print_config`` work the same way for every task. Field docstrings below
become the ``--help`` text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Union

__all__ = [
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainerConfig",
    "WandbConfig",
    "RunConfig",
    "ConfigError",
    "config_to_dict",
]


class ConfigError(ValueError):
    """An invalid configuration, refused before training; the message says what and why."""


@dataclass
class DataConfig:
    """Data set and input pipeline.

    Attributes:
        name: data set name (fashion_mnist, cifar10, cifar100, imagenet, ...).
        root: data root (default: $NORMBENCH_DATA, else ~/.cache/normbench/data); embedded data sets need none.
        download: let torchvision download a missing data set into the root (where it can).
        val_size: images held out from the training set for validation (fixed split).
        split_seed: seed of the train/validation split and of the subsets; the same for every run.
        fraction: fraction of the (remaining) training set used, for quick runs.
        test_fraction: fraction of the test set evaluated (1.0 = all; below 1 only for quick runs).
        augment: standard (the data set's usual augmentation), none, flip, crop, crop_flip.
        num_workers: data loader worker processes (0 = load in the training process).
        eval_batch_size: batch size of validation and test (eval mode: results do not depend on it).
    """

    name: str = "fashion_mnist"
    root: Optional[str] = None
    download: bool = False
    val_size: int = 5000
    split_seed: int = 0
    fraction: float = 1.0
    test_fraction: float = 1.0
    augment: str = "standard"
    num_workers: int = 0
    eval_batch_size: int = 256


@dataclass
class ModelConfig:
    """Network.

    Attributes:
        name: resnet8/14/20/32/44/56/110 (CIFAR-style) or resnet18/34/50 (torchvision, ImageNet).
        width: channels of the first stage of a CIFAR-style ResNet.
        zero_init_residual: start every residual branch's last norm with gamma = 0.
    """

    name: str = "resnet20"
    width: int = 16
    zero_init_residual: bool = False


@dataclass
class OptimConfig:
    """SGD with momentum and a learning-rate schedule.

    The learning rate is scaled linearly with the global batch size (Goyal et al., 2017):
    lr = base_lr * batch_size * world_size / base_batch_size.

    Attributes:
        base_lr: learning rate at base_batch_size.
        base_batch_size: batch size at which base_lr applies.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 weight decay.
        norm_weight_decay: apply weight decay to normalization parameters too (false excludes them).
        schedule: cosine or step.
        milestones: for the step schedule, fractions of training at which lr is multiplied by gamma.
        gamma: step schedule factor.
        warmup_epochs: linear warm-up from 0 over this many epochs (fractions allowed).
    """

    base_lr: float = 0.1
    base_batch_size: int = 128
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    norm_weight_decay: bool = True
    schedule: str = "cosine"
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.1
    warmup_epochs: float = 0.0


@dataclass
class TrainerConfig:
    """Training length, devices and precision (passed to Lightning's Trainer).

    Attributes:
        epochs: training epochs.
        max_steps: stop after this many optimizer steps (-1: no limit).
        accelerator: auto, cpu, gpu, ...
        devices: devices per node (batch_size is per device).
        num_nodes: nodes (SLURM).
        strategy: auto, ddp, ... (multi-device runs use DDP).
        precision: 32-true, 16-mixed, bf16-mixed, ...
        sync_norm: synchronize batch statistics across devices (SyncBN, synced BGN).
        threads: torch intra-op threads on CPU (0: torch's default).
        log_every_n_steps: how often per-step metrics are written.
        checkpoint_every_n_steps: also save last.ckpt every n steps (0: at epoch ends only).
        deterministic: ask torch for deterministic algorithms.
    """

    epochs: int = 30
    max_steps: int = -1
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    sync_norm: bool = False
    threads: int = 0
    log_every_n_steps: int = 50
    checkpoint_every_n_steps: int = 0
    deterministic: bool = False


@dataclass
class WandbConfig:
    """Weights & Biases logging (off by default; NORMBENCH_WANDB=1 turns it on).

    Attributes:
        enabled: log this run to W&B.
        project: W&B project.
        entity: W&B entity (user or team); default: the logged-in user's.
        mode: online, offline or auto (online with an API key, else offline into the run directory).
        tags: extra tags (the sweep name is always added).
    """

    enabled: bool = False
    project: str = "normbench"
    entity: Optional[str] = None
    mode: str = "auto"
    tags: list[str] = field(default_factory=list)


@dataclass
class RunConfig:
    """One run: a task, a normalization, a batch size and a seed.

    Attributes:
        norm: normalization spec, e.g. bn, gn, bgn:num_groups=4 (or a mapping {name: bgn, num_groups: 4}).
        batch_size: batch size per device, i.e. the normalization batch.
        seed: random seed of initialization, data order and augmentation.
        profile: quick, full, paper or custom (recorded; set by the shipped configs).
        out_dir: where run directories go.
        sweep: sweep name; runs then go to out_dir/<sweep>/<run_id>.
        run_name: directory name (default: derived from task, data set, model, norm, batch size and seed).
    """

    norm: Union[str, dict[str, Any]] = "bn"
    batch_size: int = 128
    seed: int = 0
    profile: str = "custom"
    out_dir: str = "runs"
    sweep: Optional[str] = None
    run_name: Optional[str] = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (for config.yaml and comparisons)."""
    return asdict(cfg)
