"""The DARTS candidate operations, with the norm under test wherever DARTS puts a BatchNorm.

Every op takes a ``norm`` factory (channels -> module) instead of building
``nn.BatchNorm2d``: the supernet passes the user's spec with ``affine=false``
(as DARTS does with BN), the final network the spec as given. Shapes follow
DARTS exactly (Liu et al., 2019, and its reference code): separable convolutions
are applied twice, dilated ones once, and a stride-2 skip connection is a
FactorizedReduce, which concatenates two C/2 halves before its norm.

Every op ends in its norm and every op starts with its own ReLU, so no norm of
an op has an activation after it: each is built with ``activation=False``,
which switches off a built-in activation (FRN's TLU, EvoNorm) and changes
nothing for other norms (see :mod:`normlayers.activation`).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

__all__ = ["NormFactory", "ReLUConvNorm", "DilConv", "SepConv", "Zero", "FactorizedReduce", "build_op"]


class NormFactory(Protocol):
    """``channels -> norm layer``; ``activation=False`` for a slot with no activation after it (as create_norm)."""

    def __call__(self, num_channels: int, *, activation: bool = True) -> nn.Module: ...


class ReLUConvNorm(nn.Sequential):
    """ReLU, convolution, norm: the cells' preprocessing of their inputs."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, norm: NormFactory) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         norm(c_out, activation=False))


class DilConv(nn.Sequential):
    """ReLU, dilated depthwise convolution, pointwise convolution, norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 norm: NormFactory) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            norm(c_out, activation=False),
        )


class SepConv(nn.Sequential):
    """Two (ReLU, depthwise, pointwise, norm) blocks; only the first one strides."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, norm: NormFactory) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, norm),
            DilConv(c_in, c_out, kernel, 1, padding, 1, norm),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output's shape (strided like the other ops of the edge)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve H and W with two stride-2 1x1 convolutions on offset grids, concatenated, then the norm.

    Needs an even ``c_out`` (two halves) and even input sizes (both grids must
    give the same size); the task refuses configurations that break either.
    """

    def __init__(self, c_in: int, c_out: int, norm: NormFactory) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.norm = norm(c_out, activation=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        return self.norm(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def build_op(name: str, channels: int, stride: int, norm: NormFactory, *, norm_after_pool: bool = False) -> nn.Module:
    """One candidate op of ``channels`` in and out.

    ``norm_after_pool``: follow the pooling ops with the norm, as DARTS' supernet
    does (its pools feed a weighted sum with normalized convolution outputs); the
    final network has no norm there.
    """
    if name == "none":
        return Zero(stride)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        pool: nn.Module = (nn.MaxPool2d(3, stride=stride, padding=1) if name == "max_pool_3x3"
                           else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False))
        return nn.Sequential(pool, norm(channels, activation=False)) if norm_after_pool else pool
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, norm)
    if name == "sep_conv_3x3":
        return SepConv(channels, channels, 3, stride, 1, norm)
    if name == "sep_conv_5x5":
        return SepConv(channels, channels, 5, stride, 2, norm)
    if name == "dil_conv_3x3":
        return DilConv(channels, channels, 3, stride, 2, 2, norm)
    if name == "dil_conv_5x5":
        return DilConv(channels, channels, 5, stride, 4, 2, norm)
    raise ValueError(f"unknown DARTS op {name!r}")
