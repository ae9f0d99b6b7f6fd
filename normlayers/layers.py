"""The batch-independent comparison layers: IN, LN, GN and PN.

All of them take an (N, C, *) input and apply a per-channel affine (gamma, beta
of length C), the parametrization the BGN paper and the GN paper use for their
comparisons. IN and LN are group normalization with C groups and one group; they
are built on ``nn.GroupNorm`` because its fused kernel is the fastest way to
compute per-sample group statistics on both CPU and GPU. GN itself, with its
per-layer group rule and layout helpers, is in :mod:`normlayers.group_norm`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .group_norm import GroupNorm, largest_divisor_at_most  # re-exported: GN lives in group_norm.py

__all__ = ["InstanceNorm", "LayerNorm2d", "GroupNorm", "PositionalNorm", "largest_divisor_at_most"]


class InstanceNorm(nn.GroupNorm):
    """Instance normalization: per sample and channel, statistics over (H, W).

    Same as ``nn.InstanceNorm2d(C, affine=True)`` (checked in the tests), with no
    running statistics, so train and eval modes compute the same function.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_channels, num_channels, eps=eps, affine=affine)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.affine}"


class LayerNorm2d(nn.GroupNorm):
    """Layer normalization for feature maps: per sample, statistics over (C, H, W).

    Unlike ``nn.LayerNorm`` over (C, H, W), the affine is per channel, so the
    layer has the same 2C parameters as BN and works at any spatial size.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(1, num_channels, eps=eps, affine=affine)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.affine}"


class PositionalNorm(nn.Module):
    """Positional normalization (Li et al., 2019): per sample and position, statistics over C.

    Computed as a layer norm over the channel axis moved last, which uses the
    fused kernel (two to five times faster on CPU than explicit mean/var ops);
    the output keeps the input's memory format.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"PositionalNorm({self.num_channels}) expects input (N, {self.num_channels}, ...), got {tuple(x.shape)}"
            )
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        y = F.layer_norm(x.movedim(1, -1), (self.num_channels,), self.weight, self.bias, self.eps).movedim(-1, 1)
        return y.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.affine}"
