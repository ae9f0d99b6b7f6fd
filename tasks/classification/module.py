"""The classification LightningModule: cross-entropy training, top-1/top-5 evaluation.

It keeps each epoch's validation accuracy (``val_acc_history``, saved in checkpoints so a
resumed run has the whole list) for the GN paper's reporting rule: the median of the last
five epochs' validation accuracy (:func:`median_of_last`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from ..models import build_model
from ..models.config import ModelConfig
from ..optim import OptimConfig, build_sgd
from ..runner.outcomes import ItemOutcomes
from ..runner.step_logging import check_and_log_train_loss

MEDIAN_EPOCHS = 5  # the GN paper (Wu & He, 2018) reports the median of the last 5 epochs' accuracy


def median_of_last(values: list[float], count: int = MEDIAN_EPOCHS) -> float | None:
    """The median of the last ``count`` values (None with fewer: the rule needs that many epochs)."""
    if len(values) < count:
        return None
    return float(torch.tensor(values[-count:], dtype=torch.float64).median())  # odd count: the middle value


class ClassificationModule(L.LightningModule):
    def __init__(
        self,
        *,
        norm: str,
        model: ModelConfig,
        optim: OptimConfig,
        num_classes: int,
        in_channels: int,
        global_batch_size: int,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        # plain values only: checkpoints are loaded with torch.load(weights_only=True)
        self.save_hyperparameters(ignore=["model", "optim"])
        self.hparams.update(model=dataclasses.asdict(model), optim=dataclasses.asdict(optim))
        self.model_name = model.name
        self.net: nn.Module = build_model(
            model.name,
            norm=norm,
            num_classes=num_classes,
            in_channels=in_channels,
            width=model.width,
            zero_init_residual=model.zero_init_residual,
            weight_standardization=model.weight_standardization,
        )
        self.optim_cfg = optim
        self.global_batch_size = global_batch_size
        self.label_smoothing = label_smoothing
        self.val_acc_history: list[float] = []  # one entry per finished validation epoch (sanity checks left out)
        top5 = self.top5 = min(5, num_classes)
        self.metrics = nn.ModuleDict(
            {
                f"{split}_{name}": MulticlassAccuracy(num_classes, top_k=k, average="micro")
                for split in ("val", "test")
                for name, k in (("acc", 1), ("acc5", top5))
            }
        )
        self.item_outcomes = ItemOutcomes()  # per test image: correct or not (outcomes.json)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = F.cross_entropy(self.net(images), labels, label_smoothing=self.label_smoothing)
        check_and_log_train_loss(self, loss)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> None:
        images, labels = batch
        logits = self.net(images)
        self.log(f"{split}/loss", F.cross_entropy(logits, labels), on_epoch=True, sync_dist=True)
        for name in ("acc", "acc5"):
            metric = self.metrics[f"{split}_{name}"]
            metric.update(logits, labels)
            self.log(f"{split}/{name}", metric, on_epoch=True, prog_bar=name == "acc")
        if split == "test":
            top = logits.topk(self.top5, dim=1).indices == labels[:, None]  # as the metrics decide: argmax, top-k
            self.item_outcomes.add("test", {"test/acc": logits.argmax(1) == labels, "test/acc5": top.any(1)})

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.val_acc_history.append(float(self.metrics["val_acc"].compute()))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["val_acc_history"] = list(self.val_acc_history)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.val_acc_history = list(checkpoint.get("val_acc_history", []))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        total = int(self.trainer.estimated_stepping_batches)
        epochs = max(1, self.trainer.max_epochs or 1)
        steps_per_epoch = max(1, total // epochs)
        return build_sgd(self.net, self.optim_cfg, self.global_batch_size, total, steps_per_epoch)
