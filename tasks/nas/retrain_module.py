"""The retrain stage: the network built from the genotype, trained from scratch with the norm under test.

DARTS' evaluation protocol: SGD with momentum and weight decay, cosine schedule
(per batch here, to its floor at the end), gradient norm clipped, the auxiliary
head's loss added with weight 0.4, and drop-path raised linearly from 0 to its
final probability over training (set at each epoch start from the fraction of
the schedule done, which is DARTS' epoch / epochs).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from ..runner.outcomes import ItemOutcomes
from ..runner.step_logging import check_and_log_train_loss
from .genotypes import parse_genotype
from .network import EvalNetwork
from .search_module import scheduled_batches

__all__ = ["RetrainModule"]


class RetrainModule(L.LightningModule):
    def __init__(self, *, genotype: str, norm: str, in_channels: int, num_classes: int, layers: int, channels: int,
                 lr: float, lr_min: float, momentum: float, weight_decay: float, grad_clip: float,
                 auxiliary_weight: float, drop_path_prob: float, max_batches: int = -1,
                 weight_standardization: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = EvalNetwork(parse_genotype(genotype), channels, num_classes, layers, norm, in_channels,
                               auxiliary=auxiliary_weight > 0, weight_standardization=weight_standardization)
        self.metrics = torch.nn.ModuleDict({split: MulticlassAccuracy(num_classes, average="micro")
                                            for split in ("val", "test")})
        self._total_batches = 1
        self.item_outcomes = ItemOutcomes()  # per test image: correct or not (outcomes.json)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.SGD(self.net.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        self._total_batches = scheduled_batches(self.trainer, hp.max_batches)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self._total_batches, eta_min=hp.lr_min)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        if self.hparams.grad_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")

    def on_train_epoch_start(self) -> None:
        done = min(1.0, self.global_step / self._total_batches)
        self.net.drop_path_prob = self.hparams.drop_path_prob * done

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits, aux = self.net(images)
        loss = F.cross_entropy(logits, labels)
        if aux is not None:
            loss = loss + self.hparams.auxiliary_weight * F.cross_entropy(aux, labels)
        check_and_log_train_loss(self, loss)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if 0 < self.hparams.max_batches <= self.global_step:
            self.trainer.should_stop = True  # validate and end here (a max_steps stop alone would skip validation)

    def _evaluate(self, batch: Any, split: str) -> None:
        images, labels = batch
        logits = self.net(images)[0]
        self.log(f"{split}/loss", F.cross_entropy(logits, labels), on_epoch=True, sync_dist=True)
        metric = self.metrics[split]
        metric.update(logits, labels)
        self.log(f"{split}/acc", metric, on_epoch=True, prog_bar=True)
        if split == "test":
            self.item_outcomes.add("test", {"test/acc": logits.argmax(1) == labels})

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")
