"""EvoNorm-B0 and EvoNorm-S0 (Liu et al., 2020): normalization and activation in one layer.

Both are the paper's searched layers, written from its formulas, with a
per-channel affine γ, β and a learned per-channel v (initialized to ones) that
belongs to the layer's nonlinearity.

**EvoNorm-B0** (batch-dependent)::

    y = x / max(sqrt(s²_B + eps), v * x + sqrt(s²_I + eps)) * γ + β

s²_B: per-channel variance over (N, H, W) of the batch in training, the running
variance in eval mode (BatchNorm's conventions: biased variance to normalize,
unbiased into the running average, ``momentum`` 0.1 or None for a cumulative
average). s²_I: per sample and channel, variance over (H, W). The layer keeps no
running mean (the formula uses none), so code that adapts running statistics
finds ``running_var`` with ``running_mean = None``.

**EvoNorm-S0** (batch-independent)::

    y = x * sigmoid(v * x) / sqrt(s²_G + eps) * γ + β

s²_G: per sample, variance over a group of channels and (H, W), like GN (the
numerator is not centred). ``num_groups`` (32, as GN) follows GN's rule: a layer
whose C it does not divide uses the largest divisor of C below it
(``num_groups`` holds the count used, ``requested_groups`` what was asked).

**apply_act=False** (a slot with no activation after it; the paper's layers
without nonlinearity): the activation part and v are dropped and what is left
is the normalization, without centring:

- B0: y = x / sqrt(s²_B + eps) * γ + β  (BN without the mean; running variance kept);
- S0: y = x / sqrt(s²_G + eps) * γ + β  (GN without the mean).

**affine=False** drops γ and β only; v stays while ``apply_act`` is on.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import largest_divisor_at_most
from .running_stats import RunningStats, channel_affine, check_input

__all__ = ["EvoNormB0", "EvoNormS0"]


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    return y if weight is None else torch.addcmul(bias.view(shape), y, weight.view(shape))


class EvoNormB0(RunningStats):
    """EvoNorm-B0 for (N, C, H, W) inputs (see the module docstring).

    Example:
        >>> layer = EvoNormB0(64)        # train mode: batch variance; eval: running variance
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 apply_act: bool = True) -> None:
        super().__init__(num_channels, momentum, keep_mean=False)
        if eps <= 0:
            raise ValueError(f"EvoNormB0: eps must be > 0, got {eps}")
        self.eps, self.affine, self.apply_act = eps, affine, apply_act
        channel_affine(self, num_channels, affine)
        self.register_parameter("v", nn.Parameter(torch.ones(num_channels)) if apply_act else None)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.num_channels, min_dim=3)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        spatial = tuple(range(2, x.dim()))
        if self.training:
            var_b = x.var(dim=(0, *spatial), unbiased=False)
            self.update_running_stats(None, var_b, x.numel() // x.shape[1])
        else:
            var_b = self.running_var.to(x.dtype)
        batch_std = torch.sqrt(var_b + self.eps).view(shape)
        if self.v is None:
            y = x / batch_std
        else:
            instance_std = torch.sqrt(x.var(dim=spatial, unbiased=False, keepdim=True) + self.eps)
            y = x / torch.maximum(batch_std, torch.addcmul(instance_std, x, self.v.view(shape)))
        return _affine(y, self.weight, self.bias, shape)

    def extra_repr(self) -> str:
        return (f"{self.num_channels}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"apply_act={self.apply_act}")


class EvoNormS0(nn.Module):
    """EvoNorm-S0 for (N, C, *) inputs (see the module docstring).

    Example:
        >>> EvoNormS0(48).num_groups     # 32 does not divide 48: the largest divisor below it
        24
    """

    def __init__(self, num_channels: int, num_groups: int = 32, eps: float = 1e-5, affine: bool = True,
                 apply_act: bool = True) -> None:
        super().__init__()
        if eps <= 0 or num_groups < 1:
            raise ValueError(f"EvoNormS0: need num_groups >= 1 and eps > 0 (got {num_groups}, {eps})")
        self.num_channels, self.requested_groups = num_channels, num_groups
        self.num_groups = largest_divisor_at_most(num_channels, num_groups)
        self.eps, self.affine, self.apply_act = eps, affine, apply_act
        channel_affine(self, num_channels, affine)
        self.register_parameter("v", nn.Parameter(torch.ones(num_channels)) if apply_act else None)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.num_channels)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        n = x.shape[0]
        var = x.reshape(n, self.num_groups, -1).var(dim=2, unbiased=False, keepdim=True)
        numerator = x * torch.sigmoid(x * self.v.view(shape)) if self.v is not None else x
        y = (numerator.reshape(n, self.num_groups, -1) * torch.rsqrt(var + self.eps)).reshape(x.shape)
        return _affine(y, self.weight, self.bias, shape)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"apply_act={self.apply_act} (requested num_groups={self.requested_groups})")
