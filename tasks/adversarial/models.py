"""The attacked network: input normalization first, then a ResNet with the registry norm in every slot.

Attacks perturb [0, 1] pixels, so the normalization by the data set's mean and
standard deviation is the network's first layer (fixed buffers, not trained):
the gradient an attack takes flows through it, and epsilon keeps its meaning
in pixel units whatever the data set's statistics.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from normlayers import standardize_convolutions

from ..models import build_model, list_models
from .preact_resnet import preact_resnet18

__all__ = ["InputNormalization", "build_network", "list_networks"]

_OWN = {"preact_resnet18": preact_resnet18}


class InputNormalization(nn.Module):
    """(x - mean) / std per channel, as the network's first layer."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def list_networks() -> list[str]:
    return [*list_models(), *_OWN]


def build_network(name: str, *, norm: str, num_classes: int, in_channels: int, mean: tuple[float, ...],
                  std: tuple[float, ...], width: int = 16, zero_init_residual: bool = False,
                  weight_standardization: bool = False) -> nn.Module:
    """``Sequential(normalize, body)``: ``body`` is a shared ResNet (``resnet20``...) or ``preact_resnet18``.

    ``weight_standardization`` standardizes every convolution of the body (``normlayers.standardize_convolutions``).
    """
    if name in _OWN:
        body = _OWN[name](norm=norm, num_classes=num_classes, in_channels=in_channels, width=width)
    else:
        body = build_model(name, norm=norm, num_classes=num_classes, in_channels=in_channels, width=width,
                           zero_init_residual=zero_init_residual)
    if weight_standardization:
        standardize_convolutions(body)
    return nn.Sequential(OrderedDict(normalize=InputNormalization(mean, std), body=body))
