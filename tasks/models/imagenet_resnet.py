"""torchvision's ImageNet ResNets with a registry norm through ``norm_layer=``.

torchvision's blocks share one ``self.relu`` for the activation after ``bn1``
(and ``bn2`` in a Bottleneck) and the one after the residual add, and
``norm_layer`` cannot tell a slot before an add from one before a ReLU. For a
norm with a built-in activation (FRN, EvoNorm; see :mod:`normlayers.activation`)
the model is therefore adjusted after torchvision has built it:

- the norms before the add (``bn2`` of a BasicBlock, ``bn3`` of a Bottleneck,
  the downsample's norm) are rebuilt with ``activation=False``;
- every block gets a forward (a subclass swap, so state-dict keys and
  ``isinstance`` checks are unchanged) that applies ``act1``/``act2``
  (:func:`normlayers.activation_after`: a ReLU, or an identity after a norm that
  applied its own activation) after the inner norms and ``self.relu`` after the
  add; the stem's ``relu`` becomes ``activation_after(bn1)``.

For ordinary norms this computes exactly what torchvision's forward computes.
"""

from __future__ import annotations

import torchvision
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from normlayers import activation_after, create_norm, norm_layer
from normlayers.registry import SPEC_ATTRIBUTE, resolve_norm

from .cifar_resnet import zero_init_last_norms

__all__ = ["IMAGENET_MODELS", "imagenet_resnet"]

IMAGENET_MODELS = ("resnet18", "resnet34", "resnet50")


class _BasicBlock(tv_resnet.BasicBlock):
    """torchvision's BasicBlock with a separate activation after ``bn1`` (``act1``)."""

    act1: nn.Module

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class _Bottleneck(tv_resnet.Bottleneck):
    """torchvision's Bottleneck with separate activations after ``bn1`` and ``bn2`` (``act1``, ``act2``)."""

    act1: nn.Module
    act2: nn.Module

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _without_activation(layer: nn.Module, conv: nn.Conv2d) -> nn.Module:
    """``layer`` (after ``conv``) rebuilt with ``activation=False`` if it has a built-in activation, else itself."""
    spec = getattr(layer, SPEC_ATTRIBUTE, None)
    if spec is None or resolve_norm(spec).entry.builtin_activation is None:
        return layer
    return create_norm(spec, conv.out_channels, activation=False)


def _separate_activations(model: tv_resnet.ResNet) -> None:
    model.relu = activation_after(model.bn1)
    for block in list(model.modules()):
        if type(block) is tv_resnet.BasicBlock:
            block.__class__ = _BasicBlock
            block.act1 = activation_after(block.bn1)
            block.bn2 = _without_activation(block.bn2, block.conv2)
        elif type(block) is tv_resnet.Bottleneck:
            block.__class__ = _Bottleneck
            block.act1 = activation_after(block.bn1)
            block.act2 = activation_after(block.bn2)
            block.bn3 = _without_activation(block.bn3, block.conv3)
        else:
            continue
        if block.downsample is not None:
            block.downsample[1] = _without_activation(block.downsample[1], block.downsample[0])


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
    _separate_activations(model)
    if zero_init_residual:
        zero_init_last_norms([m for m in model.modules() if isinstance(m, tv_resnet.BasicBlock)], "bn2")
        zero_init_last_norms([m for m in model.modules() if isinstance(m, tv_resnet.Bottleneck)], "bn3")
    return model

