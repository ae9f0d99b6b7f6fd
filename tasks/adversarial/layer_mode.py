"""The layers' mode while an attack is generated, decided from registry metadata and never from class names.

torchattacks switches modes itself (``Attack.__call__``) and decides which
layers are batch norms by ``"BatchNorm" in class name``, which misses
BatchGroupNorm and any registry norm named otherwise. normbench therefore never
lets torchattacks touch the modes (attacks are run through ``Attack.forward``)
and sets them here:

- ``eval``: every layer in eval mode; norms with running statistics use them.
- ``train``: every layer in train mode, so norms that use batch statistics
  (registry ``uses_batch_stats``) normalize with the attacked batch's own
  statistics; the running statistics of every layer whose entry says
  ``keeps_running_stats`` are copied before and written back after, so the
  attack's forward passes never update them.

In both modes every module's ``training`` flag is restored on exit.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal

import torch
from torch import nn

from normlayers import find_norm_layers

__all__ = ["AttackMode", "attack_layer_mode", "running_statistics"]

AttackMode = Literal["eval", "train"]


def running_statistics(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every buffer of every registry norm that keeps running statistics (mean, var, batches tracked)."""
    out: dict[str, torch.Tensor] = {}
    for name, module, resolved in find_norm_layers(model):
        if resolved.entry.keeps_running_stats:
            for buffer_name, buffer in module.named_buffers():
                out[f"{name}.{buffer_name}"] = buffer
    return out


@contextmanager
def attack_layer_mode(model: nn.Module, mode: AttackMode) -> Iterator[None]:
    """Put ``model``'s layers in ``mode`` for the duration of an attack, then restore them exactly."""
    if mode not in ("eval", "train"):
        raise ValueError(f"attack mode {mode!r}; choose eval or train")
    flags = [(module, module.training) for module in model.modules()]
    saved = {}
    if mode == "train":
        saved = {name: buffer.detach().clone() for name, buffer in running_statistics(model).items()}
    model.train(mode == "train")
    try:
        yield
    finally:
        if saved:
            with torch.no_grad():
                for name, buffer in running_statistics(model).items():
                    buffer.copy_(saved[name])
        for module, training in flags:
            module.training = training
