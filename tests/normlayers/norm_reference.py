"""Direct, loop-free reference formulas for every normalization, written from the definitions.

They share no code with normlayers, so a test comparing the two checks the
layer against its definition rather than against itself.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    shape = (1, -1) + (1,) * (y.dim() - 2)
    if weight is not None:
        y = y * weight.view(shape)
    if bias is not None:
        y = y + bias.view(shape)
    return y


def standardize(x: Tensor, dims: tuple[int, ...], eps: float) -> Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def batch_group_norm(x: Tensor, groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """BGN: flatten (C, H, W), G contiguous groups, statistics over batch and group."""
    n = x.shape[0]
    y = standardize(x.reshape(n, groups, -1), (0, 2), eps).reshape(x.shape)
    return _affine(y, weight, bias)


def bgn_batch_stats(x: Tensor, groups: int) -> tuple[Tensor, Tensor]:
    """Per-group mean and biased variance over batch and group."""
    x3 = x.reshape(x.shape[0], groups, -1)
    return x3.mean(dim=(0, 2)), x3.var(dim=(0, 2), unbiased=False)


def instance_norm(x: Tensor, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    return _affine(standardize(x, tuple(range(2, x.dim())), eps), weight, bias)


def layer_norm(x: Tensor, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    return _affine(standardize(x, tuple(range(1, x.dim())), eps), weight, bias)


def group_norm(x: Tensor, groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    n = x.shape[0]
    y = standardize(x.reshape(n, groups, -1), (2,), eps).reshape(x.shape)
    return _affine(y, weight, bias)


def positional_norm(x: Tensor, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    return _affine(standardize(x, (1,), eps), weight, bias)
