"""SGD with momentum, linearly scaled learning rate and a per-step schedule (shared by tasks)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from normlayers import find_norm_layers

from .config import OptimConfig

__all__ = ["scaled_lr", "parameter_groups", "build_sgd", "lr_multiplier"]


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
