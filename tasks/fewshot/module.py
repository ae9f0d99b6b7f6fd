"""The few-shot LightningModule: meta-training over meta-batches, evaluation on fixed episodes.

Optimization is manual: each task of a meta-batch is backpropagated as soon as
its loss exists (``loss / meta_batch``), as learn2learn's examples do, so a
second-order MAML meta-batch never holds more than one task's graph; then one
Adam step. Evaluation sets the norm layers' modes from the protocol
(:func:`~tasks.fewshot.protocol.set_evaluation_modes`), puts every buffer back
after each episode (:class:`~tasks.fewshot.protocol.BufferGuard`), and logs the
mean accuracy and its 95% interval over the episodes; the per-episode test
accuracies go to ``outcomes.json`` (through ``item_outcomes``) and, for readers
of older records, to ``test_episodes.csv`` in the run directory.

With ``second_mode`` every test episode is also evaluated in the other norm
mode, right after the configured one and from the same buffers
(:func:`~tasks.fewshot.protocol.other_norm_mode` says when), and logged as
``test/<mode>_acc``; its episode rows are the set ``<name>/<mode>``, and its
per-episode accuracies sit beside the configured mode's in ``outcomes.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from normlayers import standardize_convolutions

from ..runner.outcomes import ItemOutcomes
from ..runner.step_logging import check_and_log_train_loss
from .data.episodes import Episode, split_episode
from .methods import ANIL, MAML, EpisodicLearner, ProtoNet
from .metrics import EPISODE_FILE, ci95, second_set, test_metric, write_episode_accuracies
from .protocol import BufferGuard, set_evaluation_modes

__all__ = ["FewShotModule", "build_learner", "test_metric"]


def build_learner(method: str, *, in_channels: int, filters: int, norm: str, image_size: int, ways: int, joint: bool,
                  inner: dict[str, Any] | None, weight_standardization: bool = False) -> EpisodicLearner:
    """The method's learner; ``weight_standardization`` standardizes every convolution (the CNN-4's four)."""
    learner: EpisodicLearner
    if method == "protonet":
        learner = ProtoNet(in_channels, filters, norm, joint)
    else:
        assert inner is not None
        cls = MAML if method == "maml" else ANIL
        learner = cls(in_channels, filters, norm, image_size, ways, joint, inner_lr=inner["inner_lr"],
                      train_steps=inner["train_steps"], test_steps=inner["test_steps"],
                      first_order=inner["first_order"])
    return standardize_convolutions(learner) if weight_standardization else learner


class FewShotModule(L.LightningModule):
    def __init__(
        self,
        *,
        norm: str,
        method: str,
        ways: int,
        shots: int,
        in_channels: int,
        image_size: int,
        filters: int,
        forward: str,
        norm_mode: str,
        mean: list[float],
        std: list[float],
        lr: float,
        lr_halve_every: int,
        inner: dict[str, Any] | None = None,
        test_sets: list[str] | None = None,
        weight_standardization: bool = False,
        second_mode: str | None = None,
        second_evaluated: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # plain values only: checkpoints load with weights_only=True
        self.automatic_optimization = False
        self.learner = build_learner(method, in_channels=in_channels, filters=filters, norm=norm,
                                     image_size=image_size, ways=ways, joint=forward == "joint", inner=inner,
                                     weight_standardization=weight_standardization)
        self.ways, self.shots, self.norm_mode = ways, shots, norm_mode
        self.second_mode, self.second_evaluated = second_mode, second_evaluated
        self.test_sets = list(test_sets or ["test"])
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.guard = BufferGuard(self.learner)
        self.accuracies: dict[str, list[tuple[int, float]]] = {}
        self.item_outcomes = ItemOutcomes()  # per test episode: its accuracy (outcomes.json)

    def episode(self, images: Tensor, labels: Tensor) -> Episode:
        """Standardize a uint8 task on the device and split it into support and query sets."""
        x = (images.float().div_(255.0) - self.mean) / self.std
        return split_episode(x, labels, self.ways, self.shots)

    # --- meta-training ----------------------------------------------------------------------------
    def training_step(self, batch: list[tuple[Tensor, Tensor]], batch_idx: int) -> None:
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        losses = []
        for images, labels in batch:
            loss = self.learner.meta_loss(self.episode(images, labels))
            self.manual_backward(loss / len(batch))
            losses.append(loss.detach())
        check_and_log_train_loss(self, torch.stack(losses).mean())  # before the step: NaN never reaches the weights
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()  # type: ignore[union-attr]

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.learner.parameters(), lr=self.hparams["lr"])
        every = self.hparams["lr_halve_every"]
        if every <= 0:
            return optimizer
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=every, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # --- evaluation on fixed episodes ---------------------------------------------------------------
    def _begin_evaluation(self, names: list[str]) -> None:
        set_evaluation_modes(self.learner, self.norm_mode)  # type: ignore[arg-type]
        self.guard.capture()
        self.accuracies = {name: [] for name in names}
        if self.second_mode and self.second_evaluated and names != ["val"]:
            self.accuracies.update({second_set(name, self.second_mode): [] for name in names})

    def _evaluate(self, batch: tuple[Any, Tensor, Tensor], name: str) -> None:
        index, images, labels = batch
        with self.guard.episode():
            acc = self.learner.evaluate(self.episode(images, labels))
        self.accuracies[name].append((int(index), acc))

    def _summary(self, name: str, key: str) -> None:
        values = [acc for _, acc in sorted(self.accuracies[name])]
        # float64 tensors: Lightning keeps their precision (a plain float would be logged as float32)
        self.log(key, torch.tensor(sum(values) / len(values), dtype=torch.float64))
        self.log(f"{key}_ci95", torch.tensor(ci95(values), dtype=torch.float64))

    def on_validation_epoch_start(self) -> None:
        self._begin_evaluation(["val"])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._summary("val", "val/acc")

    def on_test_epoch_start(self) -> None:
        self._begin_evaluation(self.test_sets)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        name = self.test_sets[dataloader_idx]
        self._evaluate(batch, name)
        accuracy = self.accuracies[name][-1][1]
        values = {test_metric(name): accuracy}
        if self.second_mode and self.second_evaluated:
            set_evaluation_modes(self.learner, self.second_mode)  # type: ignore[arg-type]
            try:
                self._evaluate(batch, second_set(name, self.second_mode))
            finally:
                set_evaluation_modes(self.learner, self.norm_mode)  # type: ignore[arg-type]
            values[test_metric(name, self.second_mode)] = self.accuracies[second_set(name, self.second_mode)][-1][1]
        elif self.second_mode:  # the same computation in both modes (no batch statistics): the metric is a copy
            values[test_metric(name, self.second_mode)] = accuracy
        self.item_outcomes.add(name, values=values, dataloader_idx=dataloader_idx)

    def on_test_epoch_end(self) -> None:
        for name in self.test_sets:
            self._summary(name, test_metric(name))
            if self.second_mode:  # not evaluated: the same computation (no layer uses batch statistics), same set
                source = second_set(name, self.second_mode) if self.second_evaluated else name
                self._summary(source, test_metric(name, self.second_mode))
        if self.trainer.is_global_zero:
            datamodule = getattr(self.trainer, "datamodule", None)
            hashes = datamodule.episode_hashes() if hasattr(datamodule, "episode_hashes") else {}
            if self.second_mode and self.second_evaluated:  # the second mode's rows are the same episodes
                hashes.update({second_set(n, self.second_mode): h for n, h in list(hashes.items()) if n != "val"})
            write_episode_accuracies(Path(self.trainer.default_root_dir) / EPISODE_FILE, self.accuracies, hashes)
