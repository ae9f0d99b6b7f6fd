"""What the run machinery needs to know about a task (one instance per task)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import lightning as L

from ..config import RunConfig


@dataclass(frozen=True)
class TaskDefinition:
    """A task: its config class, how to build it, and how its results are reported.

    ``identity(cfg)`` returns the data set and model names that, with the norm,
    batch size and seed, name a run. ``validate(cfg)`` refuses bad configs
    cheaply (raise ConfigError); ``build(cfg)`` returns the LightningModule and
    DataModule; ``check(module, datamodule)`` runs a dry forward pass that
    catches shape problems (a BGN G that does not fit a feature map) before
    training.
    """

    name: str
    config_class: type[RunConfig]
    identity: Callable[[RunConfig], tuple[str, str]]
    validate: Callable[[RunConfig], None]
    build: Callable[[RunConfig], tuple[L.LightningModule, L.LightningDataModule]]
    check: Callable[[L.LightningModule, L.LightningDataModule], None]
    monitor: str = "val/acc"
    monitor_mode: str = "max"
    primary_metric: str = "test/acc"
    primary_mode: str = "max"
    report_metrics: tuple[str, ...] = ("test/acc",)
    inference_mode: bool = True  # False for tasks whose evaluation needs gradients (PGD, MAML)
    description: str = ""
