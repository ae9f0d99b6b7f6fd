"""A two-stage task for testing the run machinery: pretrain a small CNN, then fine-tune it.

It exercises what single-stage classification does not: stages with their own
checkpoints and results, an output passed from one stage to the next, a
best-validation selection rule, and training that draws from Python's
``random`` and NumPy's global generator (as learn2learn does), so that resuming
is only exact when those states are restored too. Real data (a Fashion-MNIST
subset), a real network with the registry norm in it.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from normlayers import create_norm
from tasks.data.config import DataConfig
from tasks.data.datamodule import ImageDataModule
from tasks.runner.config import RunConfig
from tasks.runner.step_logging import check_and_log_train_loss
from tasks.runner.task import LAST, MetricSpec, Stage, StageResult, Task, best_on


@dataclass
class ToyConfig(RunConfig):
    """Toy two-stage run.

    Attributes:
        pretrain_epochs: epochs of the first stage.
        width: channels of the CNN.
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(val_size=64, fraction=0.003, test_fraction=0.01,
                                                                augment="none", eval_batch_size=64))
    pretrain_epochs: int = 1
    width: int = 4


def toy_network(norm: str, width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3, 2, 1), create_norm(norm, width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, 10))


class ToyModule(L.LightningModule):
    def __init__(self, norm: str, width: int, stage: str, init: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.stage_name = stage
        self.net = toy_network(norm, width)
        if init is not None:
            self.net.load_state_dict(init)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        # input jitter drawn from Python's and NumPy's generators: resume must restore both
        scale = 1.0 + 0.05 * random.random() + 0.05 * float(np.random.rand())
        loss = F.cross_entropy(self.net(images * scale), labels)
        check_and_log_train_loss(self, loss)
        return loss

    def _evaluate(self, batch: Any, split: str) -> None:
        images, labels = batch
        logits = self.net(images)
        self.log(f"{split}/loss", F.cross_entropy(logits, labels), on_epoch=True)
        self.log(f"{split}/acc", (logits.argmax(1) == labels).float().mean(), on_epoch=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val" if self.stage_name == "finetune" else "pretrain/val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


class ToyTask(Task):
    name = "toy"
    config_class = ToyConfig
    description = "Two-stage toy task for the runner's tests."
    builds: list[str] = []  # stages built in this process, in order (tests read it)

    def identity(self, cfg: RunConfig) -> tuple[str, str]:
        return "fashion_mnist", "toycnn"

    def metrics(self, cfg: RunConfig) -> tuple[MetricSpec, ...]:
        return (MetricSpec("test/acc", "test accuracy", primary=True),
                MetricSpec("test/loss", "test loss", direction="min", unit=""))

    def selection(self, cfg: RunConfig):
        return best_on("val/acc", "max")

    def stages(self, cfg: RunConfig) -> tuple[Stage, ...]:
        assert isinstance(cfg, ToyConfig)
        return (Stage("pretrain", LAST, cfg.pretrain_epochs, cfg.batch_size, test=False),
                Stage("finetune", self.selection(cfg), cfg.trainer.epochs, cfg.batch_size))

    def input_shape(self, cfg: RunConfig) -> tuple[int, ...]:
        return (1, 28, 28)

    def build_network(self, cfg: RunConfig) -> nn.Module:
        assert isinstance(cfg, ToyConfig)
        return toy_network(str(cfg.norm), cfg.width)

    def build(self, cfg: RunConfig, stage: Stage, earlier: dict[str, StageResult]):
        assert isinstance(cfg, ToyConfig)
        self.builds.append(stage.name)
        init = None
        if stage.name == "finetune":
            state = torch.load(earlier["pretrain"].outputs["pretrain_weights"], weights_only=True)
            init = state
        return ToyModule(str(cfg.norm), cfg.width, stage.name, init), ImageDataModule(cfg.data, cfg.batch_size)

    def stage_outputs(self, cfg: RunConfig, stage: Stage, module: L.LightningModule) -> dict[str, Any]:
        if stage.name != "pretrain":
            return {}
        path = module.trainer.default_root_dir + "/pretrain_weights.pt"
        torch.save(module.net.state_dict(), path)
        return {"pretrain_weights": path, "pretrain_weight_norm": float(sum(p.norm() for p in module.parameters()))}

    def shrink(self, cfg: RunConfig) -> RunConfig:
        return dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, epochs=2, log_every_n_steps=5))


TOY = ToyTask()
