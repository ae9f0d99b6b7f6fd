"""Plain reference formulas for BRN, FRN, EvoNorm-B0/S0 and SN, written from the papers' definitions.

They share no code with normlayers (as norm_reference.py), compute each
statistic the direct way (no law-of-total-variance shortcuts, no fused
scale/shift), and take the running statistics as arguments.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _c(t: Tensor, x: Tensor) -> Tensor:
    """A per-channel vector shaped to broadcast against x (N, C, H, W)."""
    return t.view(1, -1, *([1] * (x.dim() - 2)))


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    return y if weight is None else y * _c(weight, y) + _c(bias, y)


def batch_renorm(x: Tensor, running_mean: Tensor, running_var: Tensor, r_max: float, d_max: float,
                 weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Ioffe (2017), Algorithm 1, train mode; r and d detached."""
    mu_b = x.mean(dim=(0, 2, 3))
    sigma_b = torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False) + eps)
    sigma = torch.sqrt(running_var + eps)
    r = (sigma_b / sigma).clamp(1 / r_max, r_max).detach()
    d = ((mu_b - running_mean) / sigma).clamp(-d_max, d_max).detach()
    y = (x - _c(mu_b, x)) / _c(sigma_b, x) * _c(r, x) + _c(d, x)
    return _affine(y, weight, bias)


def filter_response(x: Tensor, weight=None, bias=None, tau=None, eps: float = 1e-6) -> Tensor:
    nu2 = (x * x).mean(dim=(2, 3), keepdim=True)
    y = _affine(x / torch.sqrt(nu2 + eps), weight, bias)
    return y if tau is None else torch.max(y, _c(tau, y))


def evonorm_b0(x: Tensor, batch_var: Tensor, v=None, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """``batch_var``: the per-channel variance to use (the batch's in training, the running one in eval)."""
    left = torch.sqrt(_c(batch_var, x) + eps)
    if v is None:
        return _affine(x / left, weight, bias)
    instance_std = torch.sqrt(x.var(dim=(2, 3), unbiased=False, keepdim=True) + eps)
    right = _c(v, x) * x + instance_std
    return _affine(x / torch.max(left, right), weight, bias)


def evonorm_s0(x: Tensor, groups: int, v=None, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    n, c, h, w = x.shape
    std = torch.sqrt(x.reshape(n, groups, -1).var(dim=2, unbiased=False) + eps)  # (N, G)
    std = std.repeat_interleave(c // groups, dim=1).view(n, c, 1, 1)
    numerator = x if v is None else x * torch.sigmoid(_c(v, x) * x)
    return _affine(numerator / std, weight, bias)


def member_moments(x: Tensor, member: str) -> tuple[Tensor, Tensor]:
    """(mean, biased variance) of one SN member, shaped to broadcast against x, computed directly."""
    dims = {"in": (2, 3), "ln": (1, 2, 3), "bn": (0, 2, 3)}[member]
    return x.mean(dim=dims, keepdim=True), x.var(dim=dims, unbiased=False, keepdim=True)


def switchable(x: Tensor, members: tuple[str, ...], w_mean: Tensor, w_var: Tensor, weight=None, bias=None,
               eps: float = 1e-5) -> Tensor:
    """Luo et al. (2019), train mode: the weighted sum of the members' directly computed moments."""
    moments = [member_moments(x, m) for m in members]
    mean = sum(w * m for w, (m, _) in zip(w_mean, moments))
    var = sum(w * v for w, (_, v) in zip(w_var, moments))
    return _affine((x - mean) / torch.sqrt(var + eps), weight, bias)
