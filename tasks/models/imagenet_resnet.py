"""torchvision's ImageNet ResNets with a registry norm through ``norm_layer=``."""

from __future__ import annotations

import torchvision
from torch import nn

from normlayers import norm_layer

from .cifar_resnet import zero_init_last_norms

IMAGENET_MODELS = ("resnet18", "resnet34", "resnet50")


def imagenet_resnet(
    name: str, *, norm: str, num_classes: int, in_channels: int = 3, width: int = 64, zero_init_residual: bool = False
) -> nn.Module:
    """torchvision ``name`` with ``norm`` in every slot, the downsample projections included.

    torchvision's own ``zero_init_residual`` only recognises BatchNorm2d/GroupNorm
    weights through its init loop, so the zero init is applied here for any norm.
    """
    model = getattr(torchvision.models, name)(num_classes=num_classes, norm_layer=norm_layer(norm))
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    if zero_init_residual:
        resnet = torchvision.models.resnet
        zero_init_last_norms([m for m in model.modules() if isinstance(m, resnet.BasicBlock)], "bn2")
        zero_init_last_norms([m for m in model.modules() if isinstance(m, resnet.Bottleneck)], "bn3")
    return model
