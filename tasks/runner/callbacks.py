"""Callbacks every run uses: timing/throughput and the best validation value.

Both keep their state in checkpoints, so a resumed run reports the totals of all
its attempts rather than of the last one.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class RunClock(L.Callback):
    """Wall time of the run and training throughput (images/s over training steps only).

    Training time runs from the start of each training epoch to the start of its
    validation (or the epoch end), so it includes data loading, like a plain loop,
    but not evaluation.
    """

    def __init__(self, images_per_step: int) -> None:
        self.images_per_step = images_per_step
        self.train_seconds = 0.0
        self.train_images = 0
        self.previous_wall = 0.0
        self._attempt_start = time.perf_counter()
        self._epoch_start: float | None = None
        self._epoch_first_step = 0

    # No per-batch hook: it would add to the per-step overhead being measured.
    # Images are counted from the optimizer steps taken between epoch start and end.

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_first_step = trainer.global_step

    def _close_epoch(self, trainer: L.Trainer) -> None:
        if self._epoch_start is not None:
            self.train_seconds += time.perf_counter() - self._epoch_start
            self.train_images += (trainer.global_step - self._epoch_first_step) * self.images_per_step
            self._epoch_start = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._close_epoch(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close_epoch(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._close_epoch(trainer)

    @property
    def wall_seconds(self) -> float:
        return self.previous_wall + time.perf_counter() - self._attempt_start

    @property
    def images_per_second(self) -> float | None:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else None

    def state_dict(self) -> dict[str, Any]:
        return {"train_seconds": self.train_seconds, "train_images": self.train_images, "wall": self.wall_seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train_seconds = state["train_seconds"]
        self.train_images = state["train_images"]
        self.previous_wall = state["wall"]


class BestMetric(L.Callback):
    """Best value of the monitored validation metric and the epoch it was reached."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not torch.isfinite(torch.as_tensor(value)):
            return
        value = float(value)
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best, self.best_epoch = value, trainer.current_epoch

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


class RandomState(L.Callback):
    """Keeps the random generators' states in checkpoints, so a resumed run draws what an
    uninterrupted one would have: the same data order and augmentations after an epoch-end
    checkpoint. (Lightning reseeds, it does not restore.)"""

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
