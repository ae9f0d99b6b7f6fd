"""ResNets for small images (He et al., 2016, section 4.2): depth 6n+2, three stages.

Shortcuts that change shape are 1x1 convolutions followed by the registry norm
(option B), so every normalization slot of the network, projections included,
holds the layer under test. Stage widths are ``width``, 2x and 4x.

A norm with a built-in activation (FRN, EvoNorm) keeps it where a ReLU follows
(the stem, each block's first norm, whose ReLU becomes an identity) and has it
switched off before the residual add (each block's second norm and the
shortcut's), see :mod:`normlayers.activation`.
"""

from __future__ import annotations

import torch
from torch import nn

from normlayers import activation_after, create_norm

CIFAR_DEPTHS = (8, 14, 20, 32, 44, 56, 110)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.norm1 = create_norm(norm, planes)
        self.act1 = activation_after(self.norm1)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.norm2 = create_norm(norm, planes, activation=False)  # before the add
        self.relu = nn.ReLU(inplace=True)  # after the add
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                          create_norm(norm, planes, activation=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, norm: str, num_classes: int, in_channels: int, width: int) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks = (depth - 2) // 6
        stem_norm = create_norm(norm, width)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), stem_norm,
                                  activation_after(stem_norm))
        stages, in_planes = [], width
        for i, planes in enumerate((width, 2 * width, 4 * width)):
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(in_planes, planes, 2 if (i > 0 and b == 0) else 1, norm))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def zero_init_last_norms(blocks: list[nn.Module], attribute: str) -> None:
    """Zero the gamma of each residual branch's last norm, so every block starts as identity."""
    for block in blocks:
        norm = getattr(block, attribute)
        if getattr(norm, "weight", None) is not None:
            nn.init.zeros_(norm.weight)


def cifar_resnet(
    depth: int, *, norm: str, num_classes: int, in_channels: int = 3, width: int = 16, zero_init_residual: bool = False
) -> nn.Module:
    model = CifarResNet(depth, norm, num_classes, in_channels, width)
    if zero_init_residual:
        zero_init_last_norms([m for m in model.modules() if isinstance(m, BasicBlock)], "norm2")
    return model
