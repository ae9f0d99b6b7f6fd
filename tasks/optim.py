"""SGD with momentum, linearly scaled learning rate and a per-step schedule (shared by tasks)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from normlayers import find_norm_layers

from .runner.checks import FRACTION, NON_NEGATIVE, POSITIVE, between, checked, positive_int

__all__ = ["OptimConfig", "scaled_lr", "parameter_groups", "build_sgd", "lr_multiplier"]

_MILESTONE = between(0, 1, low_open=True, high_open=True)


@dataclass
class OptimConfig:
    """SGD with momentum and a learning-rate schedule.

    The learning rate is scaled linearly with the global batch size (Goyal et al., 2017):
    lr = base_lr * batch_size * world_size / base_batch_size.

    Attributes:
        base_lr: learning rate at base_batch_size.
        base_batch_size: batch size at which base_lr applies.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 weight decay.
        norm_weight_decay: apply weight decay to normalization parameters too (false excludes them).
        schedule: cosine, step or constant.
        milestones: for the step schedule, fractions of training at which lr is multiplied by gamma.
        gamma: step schedule factor.
        warmup_epochs: linear warm-up from 0 over this many epochs (fractions allowed).
    """

    base_lr: float = checked(0.1, POSITIVE)
    base_batch_size: int = checked(128, positive_int)
    momentum: float = checked(0.9, between(0, 1, high_open=True))
    nesterov: bool = False
    weight_decay: float = checked(5e-4, NON_NEGATIVE)
    norm_weight_decay: bool = True
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    milestones: list[float] = checked(rule=_MILESTONE, default_factory=lambda: [0.5, 0.75])
    gamma: float = checked(0.1, FRACTION)
    warmup_epochs: float = checked(0.0, NON_NEGATIVE)


def scaled_lr(cfg: OptimConfig, global_batch_size: int) -> float:
    """Linear scaling rule: base_lr * global_batch_size / base_batch_size."""
    return cfg.base_lr * global_batch_size / cfg.base_batch_size


def parameter_groups(model: nn.Module, weight_decay: float, norm_weight_decay: bool) -> list[dict[str, Any]]:
    """Split parameters so normalization ones can be excluded from weight decay."""
    norm_params = {id(p) for _, module, _ in find_norm_layers(model) for p in module.parameters(recurse=False)}
    if norm_weight_decay or not norm_params:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay = [p for p in model.parameters() if p.requires_grad and id(p) not in norm_params]
    no_decay = [p for p in model.parameters() if p.requires_grad and id(p) in norm_params]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_multiplier(step: int, total_steps: int, warmup_steps: int, cfg: OptimConfig) -> float:
    """Learning-rate factor at optimizer step ``step`` (0-based) of ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return cfg.gamma ** sum(progress >= m for m in cfg.milestones)
    if cfg.schedule == "constant":
        return 1.0
    raise ValueError(f"optim.schedule={cfg.schedule!r}; choose cosine, step or constant")


def build_sgd(
    model: nn.Module, cfg: OptimConfig, global_batch_size: int, total_steps: int, steps_per_epoch: int
) -> dict[str, Any]:
    """Optimizer and per-step scheduler in Lightning's ``configure_optimizers`` format."""
    lr = scaled_lr(cfg, global_batch_size)
    optimizer = torch.optim.SGD(
        parameter_groups(model, cfg.weight_decay, cfg.norm_weight_decay),
        lr=lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
    )
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, total_steps, warmup, cfg)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
