"""The classification task: what it declares and how it builds its module and data (docs/tasks.md's example)."""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning as L
from torch import nn

from ..data import ImageDataModule, get_dataset_info
from ..data.registry import DATASETS, UnknownDatasetError, locate_dataset
from ..models import build_model, list_models
from ..runner.checks import suggest
from ..runner.config import RunConfig, SummaryColumn
from ..runner.errors import ConfigError
from ..runner.task import LAST, MetricSpec, SelectionRule, Stage, StageResult, Task, best_on
from ..runner.world import world_size_of
from .config import ClassificationConfig
from .module import MEDIAN_EPOCHS, ClassificationModule, median_of_last

__all__ = ["ClassificationTask", "CLASSIFICATION", "MEDIAN_METRIC"]

MEDIAN_METRIC = f"val/acc_median_last{MEDIAN_EPOCHS}"


class ClassificationTask(Task):
    name = "classification"
    config_class = ClassificationConfig
    description = "Image classification with CIFAR-style or torchvision ResNets."

    def identity(self, cfg: RunConfig) -> tuple[str, str]:
        assert isinstance(cfg, ClassificationConfig)
        return cfg.data.name, cfg.model.name

    def metrics(self, cfg: RunConfig) -> tuple[MetricSpec, ...]:
        assert isinstance(cfg, ClassificationConfig)
        median = cfg.selection == "median_last5"  # GN's rule: the median is the reported number
        return ((MetricSpec(MEDIAN_METRIC, f"median validation accuracy of the last {MEDIAN_EPOCHS} epochs",
                            primary=True),) if median else ()) + (
            MetricSpec("test/acc", "test accuracy", primary=not median),
            MetricSpec("test/acc5", "top-5 test accuracy"))

    def selection(self, cfg: RunConfig) -> SelectionRule:
        assert isinstance(cfg, ClassificationConfig)
        if cfg.selection == "best_val":
            return best_on("val/acc", "max", "best validation accuracy")
        if cfg.selection == "median_last5":  # the last checkpoint's test metrics; the median is a metric of its own
            return SelectionRule(f"last; median of the last {MEDIAN_EPOCHS} epochs' val/acc")
        return LAST

    def protocol(self, cfg: RunConfig) -> dict[str, Any]:
        """Weight decay on the norm's affine changes what a norm learns (the GN recipe applies it; many don't)."""
        assert isinstance(cfg, ClassificationConfig)
        return {"norm_weight_decay": cfg.optim.norm_weight_decay, "selection": cfg.selection}

    def summary_columns(self, cfg: RunConfig) -> tuple[SummaryColumn, ...]:
        return (SummaryColumn("classification, smallest batch", axis="min"),
                SummaryColumn("classification, largest batch", axis="max"))

    def validate(self, cfg: RunConfig) -> None:
        assert isinstance(cfg, ClassificationConfig)
        if cfg.data.name not in DATASETS:
            raise ConfigError(f"data.name: unknown data set {cfg.data.name!r}{suggest(cfg.data.name, DATASETS)}; "
                              f"available: {', '.join(DATASETS)}")
        if cfg.selection == "median_last5" and cfg.trainer.epochs < MEDIAN_EPOCHS:
            raise ConfigError(f"selection=median_last5 needs trainer.epochs >= {MEDIAN_EPOCHS} (the median of the last "
                              f"{MEDIAN_EPOCHS} epochs' validation accuracy), got {cfg.trainer.epochs}")
        if cfg.model.name not in list_models():
            raise ConfigError(f"model.name: unknown model {cfg.model.name!r}{suggest(cfg.model.name, list_models())}; "
                              f"available: {', '.join(list_models())}")

    def locate_data(self, cfg: RunConfig) -> None:
        assert isinstance(cfg, ClassificationConfig)
        try:
            locate_dataset(cfg.data.name, cfg.data.root, cfg.data.download)
        except UnknownDatasetError as exc:
            raise ConfigError(str(exc)) from None

    def input_shape(self, cfg: RunConfig) -> tuple[int, ...]:
        assert isinstance(cfg, ClassificationConfig)
        return get_dataset_info(cfg.data.name).input_shape

    def build_network(self, cfg: RunConfig) -> nn.Module:
        assert isinstance(cfg, ClassificationConfig)
        info = get_dataset_info(cfg.data.name)
        return build_model(cfg.model.name, norm=str(cfg.norm), num_classes=info.num_classes,
                           in_channels=info.channels, width=cfg.model.width,
                           zero_init_residual=cfg.model.zero_init_residual,
                           weight_standardization=cfg.model.weight_standardization)

    def shrink(self, cfg: RunConfig) -> RunConfig:
        assert isinstance(cfg, ClassificationConfig)
        cfg = super().shrink(cfg)
        data = dataclasses.replace(cfg.data, val_size=64, fraction=min(cfg.data.fraction, 0.003),
                                   test_fraction=min(cfg.data.test_fraction, 0.01), eval_batch_size=64, num_workers=0)
        model = dataclasses.replace(cfg.model, name="resnet8", width=4)
        return dataclasses.replace(cfg, data=data, model=model)

    def build(self, cfg: RunConfig, stage: Stage, earlier: dict[str, StageResult]
              ) -> tuple[L.LightningModule, L.LightningDataModule]:
        assert isinstance(cfg, ClassificationConfig)
        datamodule = ImageDataModule(cfg.data, cfg.batch_size)
        module = ClassificationModule(
            norm=str(cfg.norm),
            model=cfg.model,
            optim=cfg.optim,
            num_classes=datamodule.num_classes,
            in_channels=datamodule.input_shape[0],
            global_batch_size=cfg.batch_size * world_size_of(cfg),
            label_smoothing=cfg.label_smoothing,
        )
        return module, datamodule

    def stage_outputs(self, cfg: RunConfig, stage: Stage, module: L.LightningModule) -> dict[str, Any]:
        assert isinstance(module, ClassificationModule)
        median = median_of_last(module.val_acc_history)
        return {"val_acc_per_epoch": [round(v, 6) for v in module.val_acc_history],
                **({MEDIAN_METRIC: median} if median is not None else {})}


CLASSIFICATION = ClassificationTask()

