"""Switchable normalization (Luo et al., 2019): a learned mixture of IN, LN and BN statistics.

For (N, C, H, W) input, with the per-member means μ_k and biased variances σ²_k
(k in the member set, by default IN, LN and BN)::

    μ = Σ_k w_k μ_k,   σ² = Σ_k w'_k σ²_k,   y = γ (x - μ) / sqrt(σ² + eps) + β

w = softmax(λ) and w' = softmax(λ') are learned separately for the means and
the variances (λ, λ' start at ones: uniform weights, as in the paper). The
three statistics share one pass, as the paper does: IN's per-(sample, channel)
moments are computed from x, and LN's and BN's follow from them by the law of
total variance (the mean of the variances plus the variance of the means over
the channels, respectively the samples), which is exact and has no
cancellation.

**Running statistics (BN member).** Eval mode uses a running mean and variance
for the BN statistics with BatchNorm's conventions (``momentum`` 0.1, biased
variance to normalize, unbiased into the average). The paper instead averages
the BN statistics over training batches after training ("batch average"); that
is what ``momentum=None`` computes (a cumulative average, the mode AdaBN's
re-estimation uses), so re-estimating after training reproduces it.

``members`` is a '+'-joined subset of ``in``, ``ln``, ``bn`` in that order
(``in+ln+bn``, ``in+bn``, ``ln``...): one spelling per set, so that one layer
has one canonical spec. Without ``bn`` the layer keeps no running statistics.
``affine``: the per-channel γ, β after normalization (false: none).

``weight_override`` is for tests: a pair of weight vectors (means, variances)
used instead of the softmaxes, which are never exactly one-hot.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .running_stats import RunningStats, channel_affine, check_input

__all__ = ["SwitchableNorm", "MEMBERS", "parse_members"]

MEMBERS = ("in", "ln", "bn")


def parse_members(text: str) -> tuple[str, ...] | None:
    """The member tuple of a ``members`` value, or None if it is empty, unknown, repeated or out of order."""
    parts = tuple(p.strip() for p in text.split("+"))
    if not parts or any(p not in MEMBERS for p in parts) or list(parts) != sorted(set(parts), key=MEMBERS.index):
        return None
    return parts


class SwitchableNorm(RunningStats):
    """Switchable normalization for (N, C, H, W) inputs (see the module docstring).

    Example:
        >>> layer = SwitchableNorm(64, members="in+bn")
        >>> layer.mean_weight.shape        # one learned logit per member
        torch.Size([2])
    """

    def __init__(self, num_channels: int, members: str = "in+ln+bn", eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True) -> None:
        parsed = parse_members(members)
        if parsed is None:
            raise ValueError(f"SwitchableNorm: members={members!r}; use a '+'-joined subset of in, ln, bn in that order")
        if eps <= 0:
            raise ValueError(f"SwitchableNorm: eps must be > 0, got {eps}")
        super().__init__(num_channels, momentum, keep="bn" in parsed)
        self.members, self.eps, self.affine = parsed, eps, affine
        channel_affine(self, num_channels, affine)
        self.mean_weight = nn.Parameter(torch.ones(len(parsed)))
        self.var_weight = nn.Parameter(torch.ones(len(parsed)))
        self.weight_override: tuple[Tensor, Tensor] | None = None

    def mixture_weights(self) -> tuple[Tensor, Tensor]:
        """(weights of the means, weights of the variances), one per member in ``members`` order."""
        if self.weight_override is not None:
            return self.weight_override
        return torch.softmax(self.mean_weight, 0), torch.softmax(self.var_weight, 0)

    def member_statistics(self, x3: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Each member's mean and biased variance for x reshaped (N, C, L), broadcastable to (N, C, 1)."""
        var_in, mean_in = torch.var_mean(x3, dim=2, unbiased=False, keepdim=True)  # (N, C, 1)
        means, variances = [], []
        for member in self.members:
            if member == "in":
                means.append(mean_in), variances.append(var_in)
            elif member == "ln":
                means.append(mean_in.mean(1, keepdim=True))
                variances.append(var_in.mean(1, keepdim=True) + mean_in.var(1, unbiased=False, keepdim=True))
            elif self.training:
                mean_bn = mean_in.mean(0, keepdim=True)
                var_bn = var_in.mean(0, keepdim=True) + mean_in.var(0, unbiased=False, keepdim=True)
                self.update_running_stats(mean_bn.flatten(), var_bn.flatten(), x3.shape[0] * x3.shape[2])
                means.append(mean_bn), variances.append(var_bn)
            else:
                means.append(self.running_mean.to(x3.dtype).view(1, -1, 1))
                variances.append(self.running_var.to(x3.dtype).view(1, -1, 1))
        return means, variances

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.num_channels, min_dim=3)
        x3 = x.reshape(x.shape[0], x.shape[1], -1)
        means, variances = self.member_statistics(x3)
        w_mean, w_var = self.mixture_weights()
        mean = sum(w * m for w, m in zip(w_mean.to(x.dtype), means))
        var = sum(w * v for w, v in zip(w_var.to(x.dtype), variances))
        scale = torch.rsqrt(var + self.eps)  # (N or 1, C or 1, 1)
        if self.weight is not None:
            scale = scale * self.weight.view(1, -1, 1)
        shift = -mean * scale if self.bias is None else self.bias.view(1, -1, 1) - mean * scale
        return torch.addcmul(shift, x3, scale).reshape(x.shape)

    def extra_repr(self) -> str:
        return (f"{self.num_channels}, members={'+'.join(self.members)}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")
