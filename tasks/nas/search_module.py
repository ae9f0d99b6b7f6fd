"""The search stage: DARTS' bilevel optimization of the supernet, with Lightning manual optimization.

Each training step takes one batch of the weight half and one of the alpha half
(``CombinedLoader``) and makes two optimizer steps, as in DARTS: first alpha
(Adam; its gradient first or second order, see :mod:`tasks.nas.bilevel`), then
the weights (SGD with momentum and weight decay, gradient norm clipped, cosine
schedule stepped per batch). Lightning counts both steps in ``global_step``, so
batches are ``global_step // 2``; the stage declares that to the runner. Alpha's
schedule (warm-up, averaging windows, learning rate: :mod:`tasks.nas.arch_schedule`)
leaves some batches without an alpha update: those still call the alpha
optimizer's ``step()`` with no gradient, which Adam skips entirely (no state, no
weight decay), so ``global_step`` stays two per batch.

After every epoch's validation the module logs the derived genotype,
softmax(alpha) per edge, the skip connections and the alpha entropy: as
metrics, and as one JSON line per epoch in ``search_log.jsonl`` in the run
directory (skip-connect collapse is one of the things the table compares).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from ..runner.callbacks import DivergedError
from .arch_schedule import ArchSchedule, arch_schedule
from .bilevel import first_order_gradient, unrolled_gradient
from .data import ARCH, WEIGHTS
from .genotypes import MAX_EDGE_ENTROPY, NONE, PRIMITIVES, derive_genotype, edge_entropy
from .supernet import SuperNet

__all__ = ["SearchModule", "SEARCH_LOG", "scheduled_batches", "architecture_summary", "alpha_movement"]

log = logging.getLogger("normbench")
SEARCH_LOG = "search_log.jsonl"


def scheduled_batches(trainer: L.Trainer, max_batches: int) -> int:
    """Training batches the stage will run: epochs x batches per epoch, capped by the stage's step budget."""
    _ = trainer.estimated_stepping_batches  # makes Lightning set up the training data and count its batches
    per_epoch, epochs = trainer.num_training_batches, trainer.max_epochs
    if per_epoch == float("inf") or epochs is None or epochs < 0:
        if max_batches > 0:
            return max_batches
        raise ValueError("the cosine schedule needs a known length: a sized training loader and max_epochs, or a "
                         "step budget")
    total = int(per_epoch) * int(epochs)
    return max(1, min(total, max_batches) if max_batches > 0 else total)


def architecture_summary(net: SuperNet) -> dict[str, Any]:
    """Genotype, skip connections, entropies and softmax(alpha) of the supernet as it is now."""
    normal, reduce = net.op_weights()
    genotype = net.genotype()
    ent_normal, ent_reduce = edge_entropy(normal), edge_entropy(reduce)
    return {
        "genotype": str(genotype),
        "num_skip_connects": genotype.num_skip_connects("normal"),
        "num_skip_connects_reduce": genotype.num_skip_connects("reduce"),
        "alpha_entropy": float(torch.cat([ent_normal, ent_reduce]).mean()),
        "alpha_entropy_normal": float(ent_normal.mean()),
        "alpha_entropy_reduce": float(ent_reduce.mean()),
        "softmax_alpha_normal": [[round(float(v), 5) for v in row] for row in normal],
        "softmax_alpha_reduce": [[round(float(v), 5) for v in row] for row in reduce],
    }


def _normalized_entropy(weights: torch.Tensor) -> float:
    """Mean over rows of the entropy of softmax(alpha) rows, as a fraction of uniform's (1: uniform, 0: one op)."""
    return float(edge_entropy(weights).mean()) / MAX_EDGE_ENTROPY


def alpha_movement(initial: tuple[torch.Tensor, torch.Tensor], final: tuple[torch.Tensor, torch.Tensor],
                   steps: int = 4, multiplier: int = 4) -> dict[str, Any]:
    """How far the search moved alpha: entropy at start and end, and whether the derived cell changed.

    ``initial`` and ``final`` are the (normal, reduce) alphas. The entropies are the mean normalized entropy of
    the 28 softmax(alpha) rows; ``edges_changed`` is the fraction of edges whose strongest non-none op changed,
    ``genotype_changed`` whether the derived genotype differs from the one of the initial (random) alphas.
    """
    keep = [k for k in range(len(PRIMITIVES)) if PRIMITIVES[k] != NONE]
    w0 = [torch.softmax(a.detach().float(), dim=-1) for a in initial]
    w1 = [torch.softmax(a.detach().float(), dim=-1) for a in final]
    start, end = _normalized_entropy(torch.cat(w0)), _normalized_entropy(torch.cat(w1))
    g0, g1 = derive_genotype(*w0, steps, multiplier), derive_genotype(*w1, steps, multiplier)
    changed = (torch.cat(w0)[:, keep].argmax(1) != torch.cat(w1)[:, keep].argmax(1)).float().mean()
    return {"search/alpha_entropy_norm_start": round(start, 8), "search/alpha_entropy_norm_end": round(end, 8),
            "search/alpha_entropy_norm_drop": round(start - end, 8), "search/edges_changed": round(float(changed), 6),
            "search/genotype_changed": str(g0) != str(g1), "search/initial_genotype": str(g0)}


class SearchModule(L.LightningModule):
    """The supernet and its two optimizers (built from plain values: checkpoints load with weights_only)."""

    def __init__(self, *, norm: str, in_channels: int, num_classes: int, layers: int, channels: int,
                 order: str, fd_epsilon: float, weight_lr: float, weight_lr_min: float, momentum: float,
                 weight_decay: float, grad_clip: float, arch_lr: float, arch_betas: tuple[float, float],
                 arch_weight_decay: float, max_batches: int = -1, weight_standardization: bool = False,
                 arch_warmup: float = 0.0, arch_accumulate: int = 1, arch_lr_scaling: str = "none",
                 arch_reference_updates: int = 19550) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.net = SuperNet(channels, num_classes, layers, norm, in_channels,
                            weight_standardization=weight_standardization)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        # the random initial alphas, kept (and checkpointed) to measure how far the search moved them
        self.register_buffer("initial_alphas_normal", self.net.alphas_normal.detach().clone())
        self.register_buffer("initial_alphas_reduce", self.net.alphas_reduce.detach().clone())
        self.schedule = ArchSchedule(1, 0, 1, arch_lr)
        self._arch_grad_sum: list[torch.Tensor] | None = None
        self._arch_grad_count = 0

    @property
    def batches_done(self) -> int:
        return self.global_step // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def build_optimizers(self) -> tuple[torch.optim.SGD, torch.optim.Adam]:
        """SGD for the weights only (alpha is neither stepped nor decayed by it), Adam for the two alphas."""
        hp = self.hparams
        weights = torch.optim.SGD(self.net.weight_parameters(), lr=hp.weight_lr, momentum=hp.momentum,
                                  weight_decay=hp.weight_decay)
        alphas = torch.optim.Adam(self.net.arch_parameters(), lr=hp.arch_lr, betas=tuple(hp.arch_betas),
                                  weight_decay=hp.arch_weight_decay)
        return weights, alphas

    def configure_optimizers(self) -> Any:
        weights, alphas = self.build_optimizers()
        total = scheduled_batches(self.trainer, self.hparams.max_batches)
        hp = self.hparams
        self.schedule = arch_schedule(total, warmup=hp.arch_warmup, accumulate=hp.arch_accumulate, arch_lr=hp.arch_lr,
                                      scaling=hp.arch_lr_scaling, reference_updates=hp.arch_reference_updates)
        for group in alphas.param_groups:
            group["lr"] = self.schedule.lr
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(weights, T_max=total, eta_min=self.hparams.weight_lr_min)
        return [weights, alphas], [{"scheduler": schedule, "interval": "step"}]

    def _arch_step(self, train_batch: Any, arch_batch: Any, weight_opt: Any, arch_opt: Any) -> torch.Tensor | None:
        """Alpha's part of a batch, as the schedule says: gradient (or not), then a step (a no-op without one)."""
        batch, alphas = self.batches_done, self.net.arch_parameters()
        val_loss = None
        if self.schedule.computes_gradient(batch):
            if self.hparams.order == "first":
                result = first_order_gradient(self.net, alphas, arch_batch)
            else:
                result = unrolled_gradient(self.net, self.net.named_weight_parameters(), alphas, weight_opt.optimizer,
                                           train_batch, arch_batch, self.hparams.fd_epsilon)
            if self._arch_grad_sum is None:
                self._arch_grad_sum = [g.detach().clone() for g in result.grads]
            else:
                self._arch_grad_sum = [s + g.detach() for s, g in zip(self._arch_grad_sum, result.grads)]
            self._arch_grad_count += 1
            val_loss = result.val_loss
        arch_opt.zero_grad()
        if self.schedule.steps(batch) and self._arch_grad_sum is not None:
            for alpha, grad in zip(alphas, self._arch_grad_sum):
                alpha.grad = grad / self._arch_grad_count  # the window's mean gradient
            self._arch_grad_sum, self._arch_grad_count = None, 0
        arch_opt.step()  # without gradients Adam skips alpha; the call keeps global_step at two per batch
        return val_loss

    def _weight_step(self, train_batch: Any, weight_opt: Any) -> torch.Tensor:
        images, labels = train_batch
        weight_opt.zero_grad()
        loss = F.cross_entropy(self.net(images), labels)
        self.manual_backward(loss)
        for alpha in self.net.arch_parameters():  # the weight loss's alpha gradient is not used
            alpha.grad = None
        if self.hparams.grad_clip > 0:
            self.clip_gradients(weight_opt, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")
        weight_opt.step()
        return loss.detach()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        weight_opt, arch_opt = self.optimizers()  # type: ignore[misc]
        lr = weight_opt.param_groups[0]["lr"]  # xi of this step's unrolled gradient
        arch_loss = self._arch_step(batch[WEIGHTS], batch[ARCH], weight_opt, arch_opt)
        loss = self._weight_step(batch[WEIGHTS], weight_opt)
        self.lr_schedulers().step()  # type: ignore[union-attr]
        for name, value in (("weight", loss), ("architecture", arch_loss)):
            if value is not None and not torch.isfinite(value):
                raise DivergedError(f"search {name} loss became {value.item()} at batch {self.batches_done}")
        metrics = {"search/train_loss": loss.item(), "search/weight_lr": lr}
        if arch_loss is not None:
            metrics["search/arch_loss"] = arch_loss.item()
        self._log_step(metrics)
        if 0 < self.hparams.max_batches <= self.batches_done:
            self.trainer.should_stop = True  # validate and end here (a max_steps stop alone would skip validation)

    def _log_step(self, metrics: dict[str, float]) -> None:
        trainer = self.trainer
        batch = self.batches_done - 1  # steps in batches, as Lightning logs the epoch metrics
        if batch % max(1, trainer.log_every_n_steps) == 0 and trainer.is_global_zero:
            for logger in self.loggers:
                logger.log_metrics({**metrics, "epoch": trainer.current_epoch}, step=batch)

    def alpha_movement(self) -> dict[str, Any]:
        """Entropy at the start and the end of the search and the genotype change (see :func:`alpha_movement`)."""
        return alpha_movement((self.initial_alphas_normal, self.initial_alphas_reduce),
                              (self.net.alphas_normal, self.net.alphas_reduce), self.net.steps, self.net.multiplier)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, labels = batch
        logits = self.net(images)
        self.log("search/val_loss", F.cross_entropy(logits, labels), on_epoch=True)
        self.val_acc.update(logits, labels)
        self.log("search/val_acc", self.val_acc, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        summary = architecture_summary(self.net)
        for key in ("num_skip_connects", "num_skip_connects_reduce", "alpha_entropy"):
            self.log(f"search/{key}", float(summary[key]))
        if self.trainer.is_global_zero:
            self._append_epoch_log(summary)
            log.info("search epoch %d: %d skip connections in the normal cell, alpha entropy %.3f of %.3f; %s",
                     self.current_epoch, summary["num_skip_connects"], summary["alpha_entropy"], MAX_EDGE_ENTROPY,
                     summary["genotype"])

    def _append_epoch_log(self, summary: dict[str, Any]) -> None:
        """One JSON line per epoch; an epoch redone after a resume replaces its earlier line."""
        path = Path(self.trainer.default_root_dir) / SEARCH_LOG
        entries = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                entries[entry["epoch"]] = entry
        val_acc = self.trainer.callback_metrics.get("search/val_acc")
        entries[self.current_epoch] = {"epoch": self.current_epoch, "batches": self.batches_done,
                                       "val_acc": None if val_acc is None or not math.isfinite(float(val_acc))
                                       else float(val_acc), **summary}
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(entries[k]) + "\n" for k in sorted(entries)))
        tmp.replace(path)

