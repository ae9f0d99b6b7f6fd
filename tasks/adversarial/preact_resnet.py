"""PreAct ResNet-18 (He et al., 2016, "Identity mappings"), the usual network of adversarial-training papers.

The version of Rice et al. (2020) and Wong et al. (2020) for 32x32 inputs: a
3x3 stem, four stages of two pre-activation blocks (64, 128, 256, 512
channels), a final norm and ReLU before pooling. Every normalization slot (the
two in each block and the final one) holds the registry norm; a projection
shortcut is a bare 1x1 convolution of the pre-activated input, as in the
original, so it has no slot. Every norm is followed by a ReLU, so a norm with a
built-in activation (FRN, EvoNorm) keeps it and that ReLU becomes an identity
(:func:`normlayers.activation_after`).
"""

from __future__ import annotations

import torch
from torch import nn

from normlayers import activation_after, create_norm

__all__ = ["PreActBlock", "PreActResNet18", "preact_resnet18"]


class PreActBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str) -> None:
        super().__init__()
        self.norm1 = create_norm(norm, in_planes)
        self.act1 = activation_after(self.norm1, nn.ReLU)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.norm2 = create_norm(norm, planes)
        self.act2 = activation_after(self.norm2, nn.ReLU)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.norm1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act2(self.norm2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    def __init__(self, norm: str, num_classes: int, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        blocks, in_planes = [], width
        for i, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
            for b in range(2):
                blocks.append(PreActBlock(in_planes, planes, 2 if (i > 0 and b == 0) else 1, norm))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.norm = create_norm(norm, in_planes)
        self.relu = activation_after(self.norm, nn.ReLU)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(self.pool(out), 1))


def preact_resnet18(*, norm: str, num_classes: int, in_channels: int = 3, width: int = 64) -> nn.Module:
    """PreAct ResNet-18; ``width`` is the first stage's channels (64 in the papers)."""
    return PreActResNet18(norm, num_classes, in_channels, width)
