"""Models with a registry norm in every normalization slot.

``build_model(name, ...)`` is the one entry point tasks use, so a config names a
model by string and every task shares the same constructors.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from normlayers import standardize_convolutions

from .cifar_resnet import CIFAR_DEPTHS, cifar_resnet
from .imagenet_resnet import IMAGENET_MODELS, imagenet_resnet

__all__ = ["build_model", "list_models", "UnknownModelError"]


class UnknownModelError(ValueError):
    pass


_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
for _depth in CIFAR_DEPTHS:
    _BUILDERS[f"resnet{_depth}"] = lambda *, _d=_depth, **kw: cifar_resnet(_d, **kw)
for _name in IMAGENET_MODELS:
    _BUILDERS[_name] = lambda *, _n=_name, **kw: imagenet_resnet(_n, **kw)


def list_models() -> list[str]:
    return list(_BUILDERS)


def build_model(
    name: str,
    *,
    norm: str,
    num_classes: int,
    in_channels: int = 3,
    width: int = 16,
    zero_init_residual: bool = False,
    weight_standardization: bool = False,
) -> nn.Module:
    """Build ``name`` with normalization ``norm`` (a registry spec) in every slot.

    CIFAR-style ResNets (``resnet8/20/32/44/56/110``) are for 28-32 pixel inputs
    and take ``width`` (channels of the first stage); torchvision's ResNets
    (``resnet18/34/50``) are for ImageNet-sized inputs and ignore it.
    ``weight_standardization`` standardizes every convolution's weight
    (:func:`normlayers.standardize_convolutions`; parameter names unchanged).
    """
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(_BUILDERS)}") from None
    model = builder(
        norm=norm,
        num_classes=num_classes,
        in_channels=in_channels,
        width=width,
        zero_init_residual=zero_init_residual,
    )
    return standardize_convolutions(model) if weight_standardization else model
