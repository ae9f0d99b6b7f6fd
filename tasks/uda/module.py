"""The domain-adaptation LightningModule: one training step per method, source/target evaluation, AdaBN.

A training batch is ``{"labelled": (x, y)}`` plus, for DANN and CDAN,
``{"unlabelled": x_target}`` (images only: the module never receives target
labels during training or validation). With ``domain_batches: joint`` the
feature extractor sees both domains' images in one pass (one set of batch
statistics over 2 x batch_size images); with ``separate``, one pass per domain.

Validation reports the labelled domain's held-out accuracy (``val/source_acc``;
the oracle's ``val/target_acc``), which is all model selection reads. The test
loop reports ``test/source_acc`` and ``test/target_acc`` and, for a source-only,
DANN or CDAN model whose norm keeps running statistics, ``test/target_acc_adabn``:
the same weights with statistics re-estimated on the target training images
(after a joint DANN/CDAN pass BN's running statistics average both domains).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from normlayers import resolve_norm

from ..runner.outcomes import ItemOutcomes
from ..runner.step_logging import check_and_log_train_loss
from .adabn import adapt_running_stats, does_not_apply_reason
from .adversarial import (
    MULTILINEAR_MAX_DIM,
    DomainDiscriminator,
    MultilinearMap,
    RandomizedMultilinearMap,
    annealed_lr_factor,
    domain_adversarial_loss,
    entropy_weights,
    grl_coefficient,
    reverse_gradient,
)
from .config import ADABN_METHODS, ADVERSARIAL_METHODS, CdanConfig, DiscriminatorConfig, UdaModelConfig, UdaOptimConfig
from .models import build_network

__all__ = ["UdaModule", "cdan_map_kind"]


def cdan_map_kind(cdan: CdanConfig, feature_dim: int, num_classes: int) -> str:
    """multilinear or randomized: ``auto`` takes the multilinear map up to 4096 dimensions."""
    if cdan.map != "auto":
        return cdan.map
    return "multilinear" if feature_dim * num_classes <= MULTILINEAR_MAX_DIM else "randomized"


class UdaModule(L.LightningModule):
    def __init__(self, *, norm: str, method: str, domain_batches: str, trade_off: float, adabn: bool,
                 num_classes: int, in_channels: int, image_size: int, model: UdaModelConfig, optim: UdaOptimConfig,
                 discriminator: DiscriminatorConfig, cdan: CdanConfig, seed: int = 0, lr: float | None = None) -> None:
        super().__init__()
        # plain values only: checkpoints are loaded with torch.load(weights_only=True)
        self.save_hyperparameters(ignore=["model", "optim", "discriminator", "cdan"])
        self.hparams.update(model=dataclasses.asdict(model), optim=dataclasses.asdict(optim),
                            discriminator=dataclasses.asdict(discriminator), cdan=dataclasses.asdict(cdan))
        self.method, self.domain_batches, self.trade_off = method, domain_batches, trade_off
        self.optim_cfg, self.backbone_lr_mult = optim, model.backbone_lr_mult
        self.lr = optim.lr if lr is None else lr  # the batch-scaled rate (tasks.uda.config.effective_lr)
        self.net = build_network(model.name, norm=norm, num_classes=num_classes, in_channels=in_channels,
                                 image_size=image_size, width=model.width, feature_dim=model.feature_dim,
                                 weights=model.weights, weight_standardization=model.weight_standardization)
        self.entropy_conditioning = method == "cdan" and cdan.entropy_conditioning
        self.conditioning: nn.Module | None = None
        self.discriminator: DomainDiscriminator | None = None
        if method in ADVERSARIAL_METHODS:
            in_features = self.net.feature_dim
            if method == "cdan":
                kind = cdan_map_kind(cdan, self.net.feature_dim, num_classes)
                self.conditioning = (MultilinearMap(self.net.feature_dim, num_classes) if kind == "multilinear" else
                                     RandomizedMultilinearMap(self.net.feature_dim, num_classes, cdan.random_dim, seed))
                in_features = self.conditioning.out_dim
            self.discriminator = DomainDiscriminator(in_features, discriminator.hidden, discriminator.dropout)
        self.labelled = "target" if method == "oracle" else "source"
        reason = does_not_apply_reason(resolve_norm(norm))
        self.adabn_active = method in ADABN_METHODS and adabn and reason is None
        self.adabn_summary: str | None = None
        if method in ADABN_METHODS:
            self.adabn_summary = reason if reason is not None else (None if adabn else "not evaluated (adabn=false)")
        self.accuracy = nn.ModuleDict({name: MulticlassAccuracy(num_classes, average="micro")
                                       for name in ("val", "test_source", "test_target", "test_target_adabn")})
        self._adapted: nn.Module | None = None
        self.total_steps = 1
        self.data_provenance: dict[str, str] = {}
        self.item_outcomes = ItemOutcomes()  # per test image: correct or not, plain and AdaBN (outcomes.json)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    # ------------------------------------------------------------------------------------------ training
    @property
    def progress(self) -> float:
        """Training progress p in [0, 1]: the GRL ramp and the learning-rate annealing read it."""
        return min(1.0, self.global_step / max(1, self.total_steps))

    def _features(self, source: Tensor, target: Tensor) -> Tensor:
        if self.domain_batches == "joint":
            return self.net.features(torch.cat([source, target]))
        return torch.cat([self.net.features(source), self.net.features(target)])

    def adaptation_losses(self, batch: dict[str, Any], progress: float) -> dict[str, Tensor]:
        """The step's losses at training progress ``progress``: ``loss`` (what is minimized) and its parts.

        DANN and CDAN: ``loss = cls_loss + trade_off * transfer_loss``, where the
        transfer loss reaches the feature extractor through the gradient reversal
        (coefficient ``grl_coefficient(progress)``) and the discriminator directly.
        """
        x, y = batch["labelled"]
        if self.discriminator is None:  # source-only and oracle: plain supervised training
            return {"loss": F.cross_entropy(self.net(x), y)}
        x_target = batch["unlabelled"]
        sizes = (len(x), len(x_target))
        features = self._features(x, x_target)
        logits = self.net.classifier(features)
        cls_loss = F.cross_entropy(logits[: sizes[0]], y)
        coefficient = grl_coefficient(progress)
        reversed_features = reverse_gradient(features, coefficient)
        weights = None
        if self.conditioning is not None:  # CDAN: condition on the (detached) predictions
            probabilities = F.softmax(logits, dim=1).detach()
            disc_input = self.conditioning(reversed_features, probabilities)
            if self.entropy_conditioning:
                weights = entropy_weights(probabilities, sizes)
        else:
            disc_input = reversed_features
        transfer_loss, domain_acc = domain_adversarial_loss(self.discriminator(disc_input), sizes, weights)
        return {"loss": cls_loss + self.trade_off * transfer_loss, "cls_loss": cls_loss, "transfer_loss": transfer_loss,
                "domain_acc": domain_acc, "grl_coefficient": torch.tensor(coefficient)}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        losses = self.adaptation_losses(batch, self.progress)
        check_and_log_train_loss(self, losses["loss"])
        extras = {f"train/{k}": v for k, v in losses.items() if k != "loss"}
        extras["train/lr"] = self.trainer.optimizers[0].param_groups[-1]["lr"]  # the head's rate (no backbone_lr_mult)
        self._log_every_n(extras)
        return losses["loss"]

    def _log_every_n(self, values: dict[str, Any]) -> None:
        trainer = self.trainer
        if self.global_step % max(1, trainer.log_every_n_steps) == 0 and trainer.is_global_zero:
            metrics = {k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in values.items()}
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.global_step)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg, lr = self.optim_cfg, self.lr
        groups = [{"params": self.net.features.parameters(), "lr": lr * self.backbone_lr_mult},
                  {"params": self.net.classifier.parameters(), "lr": lr}]
        if self.discriminator is not None:
            groups.append({"params": self.discriminator.parameters(), "lr": lr})
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                    nesterov=cfg.nesterov and cfg.momentum > 0)
        self.total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        total, annealed = self.total_steps, cfg.schedule == "annealed"
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: annealed_lr_factor(min(1.0, step / total)) if annealed else 1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_fit_start(self) -> None:
        self.data_provenance = dict(getattr(self.trainer.datamodule, "provenance", {}))  # checksums for the record
        if self.trainer.is_global_zero:
            from .examples import write_run_examples

            write_run_examples(self.trainer.datamodule, Path(self.trainer.default_root_dir) / "domains.png")

    # ---------------------------------------------------------------------------------------- evaluation
    def _accuracy(self, name: str, logits: Tensor, labels: Tensor, key: str) -> None:
        metric = self.accuracy[name]
        metric.update(logits, labels)
        self.log(key, metric, on_epoch=True, add_dataloader_idx=False)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log(f"val/{self.labelled}_loss", F.cross_entropy(logits, y), on_epoch=True, sync_dist=True)
        self._accuracy("val", logits, y, f"val/{self.labelled}_acc")

    def on_test_epoch_start(self) -> None:
        self._adapted = None
        if not self.adabn_active:
            return
        datamodule = self.trainer.datamodule
        batches = (datamodule.transform(x.to(self.device), train=False) for x in datamodule.adabn_dataloader())
        self._adapted, modules, images = adapt_running_stats(self.net, batches)
        self.adabn_summary = (f"running statistics of {modules} norm modules re-estimated on {images} target "
                              f"training images (cumulative average, batches of {datamodule.data.eval_batch_size})")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        domain = ("source", "target")[dataloader_idx]
        logits = self.net(x)
        self._accuracy(f"test_{domain}", logits, y, f"test/{domain}_acc")
        correct = {f"test/{domain}_acc": logits.argmax(1) == y}
        if domain == "target" and self._adapted is not None:
            adapted = self._adapted(x)
            self._accuracy("test_target_adabn", adapted, y, "test/target_acc_adabn")
            correct["test/target_acc_adabn"] = adapted.argmax(1) == y
        self.item_outcomes.add(f"{domain}_test", correct, dataloader_idx=dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._adapted = None
