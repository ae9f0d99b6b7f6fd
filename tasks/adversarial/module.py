"""The adversarial-training LightningModule: PGD-AT, TRADES or FGSM-RS; robust selection and evaluation.

Training: each batch is attacked with the method's torchattacks attack, the
layers in ``attack_mode`` (eval by default) while the attack runs, then the
model trains in train mode on the result (TRADES: on both, with its loss).

Validation (every epoch): clean accuracy on the validation split and
``val/robust_acc``, PGD-10 at the training epsilon on the fixed validation
subset, which selects the checkpoint. Test: clean accuracy on the test split
and the robust evaluation of :mod:`.evaluation` on the fixed test subset.
Evaluation attacks run in eval mode, fp32, with a fixed seed in a forked
random state. Validation and test run outside inference mode (the task sets
``eval_needs_gradients``); attacks switch gradients on themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from ..optim import build_sgd
from ..runner.config import config_to_dict
from ..runner.outcomes import ItemOutcomes
from ..runner.step_logging import check_and_log_train_loss
from .attacks import generate, pgd, training_attack
from .config import AdversarialConfig, TradesConfig
from .ensemble import EnsembleSettings
from .evaluation import SELECTION_PGD_STEPS, RobustEvaluator, metric_columns, summarize
from .models import build_network

__all__ = ["AdversarialModule", "EVAL_FILE"]

EVAL_FILE = "robust-eval.json"


class AdversarialModule(L.LightningModule):
    """Adversarial training and robust evaluation of ``build_network(cfg.model...)`` (see the module docstring).

    Example:
        >>> from tasks.adversarial.config import AdversarialConfig
        >>> module = AdversarialModule(AdversarialConfig(norm="bgn"), num_classes=10, in_channels=1, mean=(0.286,),
        ...                            std=(0.353,), global_batch_size=32)
        >>> type(module.net.normalize).__name__
        'InputNormalization'
    """

    def __init__(self, cfg: AdversarialConfig, *, num_classes: int, in_channels: int, mean: tuple[float, ...],
                 std: tuple[float, ...], global_batch_size: int) -> None:
        super().__init__()
        # plain values only: checkpoints are loaded with torch.load(weights_only=True)
        self.save_hyperparameters({"config": config_to_dict(cfg), "num_classes": num_classes,
                                   "global_batch_size": global_batch_size})
        self.cfg = cfg
        self.num_classes = num_classes
        self.global_batch_size = global_batch_size
        self.net: nn.Module = build_network(cfg.model.name, norm=str(cfg.norm), num_classes=num_classes,
                                            in_channels=in_channels, mean=mean, std=std, width=cfg.model.width,
                                            zero_init_residual=cfg.model.zero_init_residual,
                                            weight_standardization=cfg.model.weight_standardization)
        self.accuracy = nn.ModuleDict({split: MulticlassAccuracy(num_classes, average="micro")
                                       for split in ("val", "test")})
        self.train_attack: Any = None  # torchattacks binds a device: built in on_fit_start
        self.evaluator: RobustEvaluator | None = None  # built in on_test_epoch_start, after the model moved
        self.eval_reports: list[dict[str, Any]] = []  # one per test run, in order (the last weights first)
        self._outcomes: dict[str, list[torch.Tensor]] = {}
        self.item_outcomes = ItemOutcomes()  # per test image: clean, FGSM, PGD-20, AutoAttack correct (outcomes.json)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    # --- training ---------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self.train_attack = training_attack(self.cfg, self.net)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        adversarial = generate(self.train_attack, self.net, images, labels, self.cfg.attack_mode)
        settings = self.cfg.method_config
        if isinstance(settings, TradesConfig):
            clean_logits = self.net(images)
            adv_logits = self.net(adversarial)
            robust_term = F.kl_div(F.log_softmax(adv_logits, 1), F.softmax(clean_logits, 1), reduction="batchmean")
            loss = F.cross_entropy(clean_logits, labels) + settings.beta * robust_term
        else:
            loss = F.cross_entropy(self.net(adversarial), labels)
        check_and_log_train_loss(self, loss)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        total = int(self.trainer.estimated_stepping_batches)
        epochs = max(1, self.trainer.max_epochs or 1)
        return build_sgd(self.net, self.cfg.optim, self.global_batch_size, total, max(1, total // epochs))

    # --- shared by validation and test ------------------------------------------------------------
    def _clean(self, images: torch.Tensor, labels: torch.Tensor, split: str) -> torch.Tensor:
        with torch.autocast(images.device.type, enabled=False):
            logits = self.net(images.float())
        self.log(f"{split}/loss", F.cross_entropy(logits, labels), on_epoch=True, sync_dist=True,
                 add_dataloader_idx=False)
        self.accuracy[split].update(logits, labels)
        self.log(f"{split}/acc", self.accuracy[split], on_epoch=True, add_dataloader_idx=False)
        return logits

    def _keep(self, index: torch.Tensor, outcomes: dict[str, torch.Tensor]) -> None:
        self._outcomes.setdefault("index", []).append(index)
        for key, value in outcomes.items():
            self._outcomes.setdefault(key, []).append(value)

    def _gathered(self) -> dict[str, torch.Tensor]:
        """The subset's per-image outcomes from every device, each image once (samplers may pad)."""
        merged = {key: torch.cat(values) for key, values in self._outcomes.items()}
        self._outcomes = {}
        if self.trainer.world_size > 1:
            merged = {key: self.all_gather(value.to(torch.int64)).flatten() for key, value in merged.items()}
        index = merged.pop("index")
        unique, inverse = torch.unique(index, return_inverse=True)
        positions = torch.arange(len(index), device=index.device)
        first = torch.full((len(unique),), len(index), device=index.device).scatter_reduce(0, inverse, positions, "amin")
        return {key: value[first].bool() for key, value in merged.items()}

    # --- validation: selection on PGD-10 robust accuracy ------------------------------------------
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx == 0:
            self._clean(batch[0], batch[1], "val")
            return
        images, labels, index = batch
        attack = pgd(self.net, self.cfg.epsilon, SELECTION_PGD_STEPS)
        adversarial = generate(attack, self.net, images, labels, "eval", seed=self.cfg.eval.seed, fp32=True)
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            correct = self.net(adversarial).argmax(1) == labels
        self._keep(index, {"robust": correct})

    def on_validation_epoch_end(self) -> None:
        if self._outcomes:
            outcomes = self._gathered()
            self.log("val/robust_acc", outcomes["robust"].float().mean(), add_dataloader_idx=False)

    # --- test: clean, FGSM, PGD-20, (PGD-200), the ensemble -----------------------------------------
    def on_test_epoch_start(self) -> None:
        self._outcomes = {}
        self.evaluator = RobustEvaluator(self.net, self.cfg.epsilon, self.cfg.eval, self.num_classes)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx == 0:
            logits = self._clean(batch[0], batch[1], "test")
            self.item_outcomes.add("test", {"test/acc": logits.argmax(1) == batch[1]})
            return
        images, labels, index = batch
        assert self.evaluator is not None
        outcomes = self.evaluator.evaluate(images, labels)
        self._keep(index, outcomes)
        self.item_outcomes.add("robust", metric_columns(outcomes), dataloader_idx=1)

    def on_test_epoch_end(self) -> None:
        if not self._outcomes:  # the subset loader was cut off (limit_test_batches=0 in benchmarks)
            return
        summary = summarize(self._gathered(), EnsembleSettings.from_config(self.cfg.eval))
        for name, value in summary.metrics.items():
            self.log(name, value, add_dataloader_idx=False)
        report = summary.report()
        report["test_samples"] = self._test_set_size()
        self.eval_reports.append(report)

    def _test_set_size(self) -> int:
        datamodule = getattr(self.trainer, "datamodule", None)
        test_set = getattr(datamodule, "test_set", None)
        return len(test_set) if test_set is not None else 0

    # --- what the record gets ---------------------------------------------------------------------
    def robust_outputs(self) -> dict[str, Any]:
        """Record fields of the tests: the selected checkpoint's plainly, the last one's under ``last/``.

        The run tests the last weights first and the selected ones second (when
        they differ), so the first report is the last checkpoint's and the
        final one the selected checkpoint's. All reports go to ``robust-eval.json``.
        """
        if not self.eval_reports:
            return {}
        last, selected = self.eval_reports[0], self.eval_reports[-1]
        if self.trainer.is_global_zero:
            path = Path(self.trainer.default_root_dir) / EVAL_FILE
            path.write_text(json.dumps({"selected": selected, "last": last}, indent=2) + "\n")
        return {"robust_attack": selected["robust_attack"], "robust_samples": selected["samples"],
                "test_samples": selected["test_samples"], "eval_warning": selected["eval_warning"],
                "last/eval_warning": last["eval_warning"], "eval_file": EVAL_FILE}
