"""Filter response normalization with its thresholded linear unit (Singh & Krishnan, 2020).

Per sample and channel, with ν² the mean of x² over the spatial positions (no
mean is subtracted, and no batch statistic is used)::

    y = γ * x / sqrt(ν² + eps) + β,    z = max(y, τ)   (TLU, learned per-channel τ)

The TLU is the layer's own nonlinearity (registry ``builtin_activation="TLU"``):
a model puts no ReLU after it. ``apply_act=False`` (the registry sets it for a
slot with no activation after it) drops the TLU and its τ: z = y.

A model that puts a ReLU after the layer anyway (torchvision's ResNets through
``norm_layer=``) turns TLU + ReLU into a ReLU: τ starts at 0, where the ReLU
passes no gradient, so it never moves. normbench's models ask
:func:`normlayers.activation_after` and leave that ReLU out.

``affine=False`` drops γ and β only; τ belongs to the activation, so it stays
while ``apply_act`` is on. ``eps = 1e-6``, the paper's constant.

**Small maps.** With one position (1x1 maps, or a (N, C) input) ν² = x², so
x / sqrt(x² + eps) is nearly sign(x) and the layer saturates; the paper makes
eps learnable for such layers. ``learnable_eps=True`` does so here: the eps used
is ``eps + |ε_l|`` with one learned scalar ε_l per layer, initialized to 1e-4
(our choice of shape and start; the ``eps`` argument is then the floor that
keeps the denominator away from zero whatever ε_l learns).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .running_stats import channel_affine, check_input

__all__ = ["FilterResponseNorm"]

LEARNED_EPS_INIT = 1e-4


class FilterResponseNorm(nn.Module):
    """FRN + TLU for (N, C, *) inputs (see the module docstring).

    Example:
        >>> layer = FilterResponseNorm(64)                       # FRN followed by TLU
        >>> plain = FilterResponseNorm(64, apply_act=False)      # before a residual addition
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True, apply_act: bool = True,
                 learnable_eps: bool = False) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"FilterResponseNorm: eps must be > 0, got {eps}")
        self.num_channels, self.eps, self.affine = num_channels, eps, affine
        self.apply_act, self.learnable_eps = apply_act, learnable_eps
        channel_affine(self, num_channels, affine)
        self.register_parameter("tau", nn.Parameter(torch.zeros(num_channels)) if apply_act else None)
        self.register_parameter("learned_eps", nn.Parameter(torch.full((1,), LEARNED_EPS_INIT)) if learnable_eps else None)

    def effective_eps(self) -> Tensor | float:
        """The eps added to ν²: the constant, or the floor plus |ε_l| when learnable."""
        return self.eps + self.learned_eps.abs() if self.learned_eps is not None else self.eps

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.num_channels)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        spatial = tuple(range(2, x.dim()))
        nu2 = x.square().mean(dim=spatial, keepdim=True) if spatial else x.square()
        y = x * torch.rsqrt(nu2 + self.effective_eps())
        if self.weight is not None:
            y = torch.addcmul(self.bias.view(shape), y, self.weight.view(shape))
        if self.tau is not None:
            y = torch.maximum(y, self.tau.view(shape))
        return y

    def extra_repr(self) -> str:
        return (f"{self.num_channels}, eps={self.eps}, affine={self.affine}, apply_act={self.apply_act}, "
                f"learnable_eps={self.learnable_eps}")
