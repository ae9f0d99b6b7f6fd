"""Drive the ramps of norm layers (batch renormalization's r_max, d_max) from optimizer steps, not forwards.

A layer with a ramp counts training forwards by default (``ramp_driver =
"forward"``). In a run, forwards are not steps: MAML's clones and DARTS'
unrolled ``functional_call`` passes run several train-mode forwards per
optimizer step, so the ramp would run ahead by a task-dependent factor. This
callback switches every registry norm that has the ramp interface
(``ramp_driver`` and ``set_ramp_step``; asked of the module, never its class) to
``"external"`` and, at the start of each training batch, sets its step to the
number of optimizer steps taken so far: Lightning's ``global_step`` counts every
optimizer's step, so it is divided by the stage's optimizer steps per batch
(2 for DARTS' bilevel step). Resumed runs get the same step as uninterrupted
ones (``global_step`` is restored; the layer's counter is a checkpointed buffer too).

The layers are found once per fit (``on_train_start``), so norms without a ramp
cost an empty loop per batch.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn

from normlayers import find_norm_layers

__all__ = ["RampSchedule", "ramp_layers"]


def ramp_layers(model: nn.Module) -> list[nn.Module]:
    """The registry norm layers of ``model`` whose ramp can be driven from outside."""
    return [layer for _, layer, _ in find_norm_layers(model)
            if hasattr(layer, "ramp_driver") and callable(getattr(layer, "set_ramp_step", None))]


class RampSchedule(L.Callback):
    """Sets every ramp layer's step to the optimizer steps taken, at each training batch start."""

    def __init__(self, optimizer_steps_per_batch: int = 1) -> None:
        if optimizer_steps_per_batch < 1:
            raise ValueError(f"optimizer_steps_per_batch={optimizer_steps_per_batch}; must be >= 1")
        self.optimizer_steps_per_batch = optimizer_steps_per_batch
        self._layers: list[nn.Module] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._layers = ramp_layers(pl_module)
        for layer in self._layers:
            layer.ramp_driver = "external"

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if not self._layers:
            return
        step = trainer.global_step // self.optimizer_steps_per_batch
        for layer in self._layers:
            layer.set_ramp_step(step)
