"""The classification task definition: config, validation, construction."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch

from normlayers import NormSpecError, resolve_norm

from ..config import ConfigError, RunConfig
from ..data import DataError, ImageDataModule, get_dataset_info, resolve_data_root
from ..data.registry import UnknownDatasetError
from ..models import list_models
from ..runner.task import TaskDefinition
from ..runner.world import world_size_of
from .module import ClassificationModule


@dataclass
class ClassificationConfig(RunConfig):
    """Image classification run.

    Attributes:
        label_smoothing: label smoothing of the cross-entropy loss.
    """

    label_smoothing: float = 0.0


def identity(cfg: RunConfig) -> tuple[str, str]:
    return cfg.data.name, cfg.model.name


def validate(cfg: RunConfig) -> None:
    try:
        resolve_data_root(cfg.data.root, get_dataset_info(cfg.data.name))
    except (UnknownDatasetError, DataError) as exc:
        raise ConfigError(str(exc)) from None
    if cfg.model.name not in list_models():
        raise ConfigError(f"unknown model {cfg.model.name!r}; available: {', '.join(list_models())}")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size={cfg.batch_size}; it must be at least 1")
    resolved = resolve_norm(cfg.norm)
    if resolved.entry.uses_batch_stats and cfg.batch_size < 2:
        raise ConfigError(
            f"norm {resolved.label} uses batch statistics, which are undefined for a batch of 1 per device "
            f"(batch_size={cfg.batch_size}); use batch_size >= 2 or a batch-independent norm (in, ln, gn, pn)"
        )
    if cfg.trainer.sync_norm and resolved.entry.name == "bn" and cfg.trainer.accelerator == "cpu" and world_size_of(cfg) > 1:
        raise ConfigError("sync_norm with bn needs GPUs (torch's SyncBatchNorm refuses CPU tensors); synced bgn works on CPU")


def build(cfg: RunConfig) -> tuple[L.LightningModule, L.LightningDataModule]:
    assert isinstance(cfg, ClassificationConfig)
    datamodule = ImageDataModule(cfg.data, cfg.batch_size)
    module = ClassificationModule(
        norm=str(resolve_norm(cfg.norm).spec),
        model=cfg.model,
        optim=cfg.optim,
        num_classes=datamodule.num_classes,
        in_channels=datamodule.input_shape[0],
        global_batch_size=cfg.batch_size * world_size_of(cfg),
        label_smoothing=cfg.label_smoothing,
    )
    return module, datamodule


def check(module: L.LightningModule, datamodule: L.LightningDataModule) -> None:
    """One eval-mode forward pass on zeros of the data's shape: every layer sees its real input shape."""
    assert isinstance(module, ClassificationModule) and isinstance(datamodule, ImageDataModule)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(2, *datamodule.input_shape))
    except NormSpecError as exc:
        c, h, w = datamodule.input_shape
        raise ConfigError(f"model {module.model_name} on {c}x{h}x{w} {datamodule.cfg.name} inputs: {exc}") from None
    finally:
        module.train(was_training)


CLASSIFICATION = TaskDefinition(
    name="classification",
    config_class=ClassificationConfig,
    identity=identity,
    validate=validate,
    build=build,
    check=check,
    monitor="val/acc",
    monitor_mode="max",
    primary_metric="test/acc",
    primary_mode="max",
    report_metrics=("test/acc", "test/acc5"),
    description="Image classification with CIFAR-style or torchvision ResNets.",
)
