"""Callbacks every run uses: timing/throughput (compile time apart), checkpoint selection, random states, the lease.

They keep their state in checkpoints, so a resumed run reports the totals of all
its attempts rather than of the last one, and draws the random numbers an
uninterrupted run would have drawn.
"""

from __future__ import annotations

import random
import time
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn

from .task import SelectionRule, finite_metrics


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class RunClock(L.Callback):
    """Wall time of the run and training throughput (images/s over training steps only).

    Training time runs from the start of each training epoch to the start of its
    validation (or the epoch end), so it includes data loading, like a plain loop,
    but not evaluation.
    """

    def __init__(self, images_per_step: int, optimizer_steps_per_batch: int = 1) -> None:
        self.images_per_step = images_per_step
        self.optimizer_steps_per_batch = optimizer_steps_per_batch
        self.train_seconds = 0.0
        self.train_images = 0
        self.previous_wall = 0.0
        self._attempt_start = time.perf_counter()
        self._epoch_start: float | None = None
        self._epoch_first_step = 0
        self._excluded_seconds = 0.0  # time and batches of this epoch kept out of throughput (CompileClock)
        self._excluded_batches = 0

    # No per-batch hook: it would add to the per-step overhead being measured.
    # Images are counted from the optimizer steps taken between epoch start and end.

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_first_step = trainer.global_step

    def _close_epoch(self, trainer: L.Trainer) -> None:
        if self._epoch_start is not None:
            seconds = time.perf_counter() - self._epoch_start - self._excluded_seconds
            batches = (trainer.global_step - self._epoch_first_step) // self.optimizer_steps_per_batch
            self.train_seconds += max(0.0, seconds)
            self.train_images += max(0, batches - self._excluded_batches) * self.images_per_step
            self._epoch_start = None
            self._excluded_seconds, self._excluded_batches = 0.0, 0

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


class CompileClock(RunClock):
    """RunClock for ``trainer.compile`` runs: each attempt's first training step is timed apart.

    torch.compile traces and compiles the networks (forward and backward) in the
    first step that calls them, so that step is left out of throughput (its time
    and its images). ``compile_seconds`` is what it took beyond a steady-state
    step (the mean step of the rest of the training): the compile cost. Later
    recompilations (a smaller last batch, the first eval-mode pass in validation)
    are not separated; they stay in training or evaluation time.
    """

    def __init__(self, images_per_step: int, optimizer_steps_per_batch: int = 1) -> None:
        super().__init__(images_per_step, optimizer_steps_per_batch)
        self.first_step_seconds = 0.0  # summed over attempts (a resumed run compiles again)
        self.first_steps = 0
        self._step_start: float | None = None
        self._timed = False

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if not self._timed:
            self._step_start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._timed or self._step_start is None:
            return
        seconds = time.perf_counter() - self._step_start
        self._timed = True
        self.first_step_seconds += seconds
        self.first_steps += 1
        self._excluded_seconds += seconds
        self._excluded_batches += 1

    @property
    def compile_seconds(self) -> float:
        """First steps' time beyond steady-state steps (0 when no other step was timed)."""
        steps = self.train_images / self.images_per_step if self.images_per_step else 0
        steady = self.train_seconds / steps if steps else 0.0
        return max(0.0, self.first_step_seconds - self.first_steps * steady)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "first_step_seconds": self.first_step_seconds, "first_steps": self.first_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.first_step_seconds = state.get("first_step_seconds", 0.0)
        self.first_steps = state.get("first_steps", 0)


class SelectionTracker(L.Callback):
    """The best value of a selection rule's monitor, its epoch, and every validation metric then.

    ``ModelCheckpoint`` saves the weights (``best.ckpt``) with the same strict
    comparison; this keeps what the record needs to report that checkpoint's
    validation metrics under the plain names.
    """

    def __init__(self, rule: SelectionRule) -> None:
        self.rule = rule
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_step: int | None = None
        self.best_metrics: dict[str, float] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.rule.monitor is None or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        value = trainer.callback_metrics.get(self.rule.monitor)
        if value is None or not torch.isfinite(torch.as_tensor(value)):
            return
        value = float(value)
        better = self.best is None or (value > self.best if self.rule.mode == "max" else value < self.best)
        if better:
            self.best, self.best_epoch, self.best_step = value, trainer.current_epoch, trainer.global_step
            self.best_metrics = {k: v for k, v in finite_metrics(trainer.callback_metrics).items()
                                 if k.startswith("val/")}

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_step": self.best_step,
                "best_metrics": self.best_metrics}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_step = state.get("best_step")
        self.best_metrics = dict(state.get("best_metrics") or {})


class RandomState(L.Callback):
    """Keeps every random generator's state in checkpoints: torch's (CPU and CUDA), Python's ``random``
    (learn2learn samples tasks with it) and NumPy's global one. A run resumed from an epoch-end checkpoint
    then draws what an uninterrupted one would have: the same data order, augmentations and episodes.
    (Lightning reseeds on resume; it does not restore.)"""

    def state_dict(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        # plain types and tensors only: checkpoints must load with torch.load(weights_only=True)
        numpy_state = [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": numpy_state}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if "python" in state:
            random.setstate(_as_python_state(state["python"]))
        if "numpy" in state:
            name, keys, pos, has_gauss, gauss = state["numpy"]
            np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _as_python_state(state: Any) -> tuple:
    """random.setstate wants tuples; a checkpoint round trip may hand back lists."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


class LeaseLostError(RuntimeError):
    """Another process took over this run's lease; this one stops without writing a record."""


class LeaseGuard(L.Callback):
    """Stops training at the next batch once the run's lease is lost (see tasks.runner.lease)."""

    def __init__(self, lease: Any) -> None:
        self.lease = lease

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self.lease is not None and self.lease.lost:
            raise LeaseLostError("the run's lease was taken over by another process")
