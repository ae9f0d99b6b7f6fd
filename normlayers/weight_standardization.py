"""Weight Standardization (Qiao et al., 2019): convolutions whose weight is standardized in every forward pass.

Each output channel's filter (all input channels and kernel positions together)
is shifted to mean 0 and scaled to variance 1 before the convolution:

    W_hat = (W - mean) / sqrt(var + eps),   biased variance over (C_in/groups, kh, kw), eps = 1e-5

as in the paper's formula. The stored parameter stays the raw ``W``: only the
forward pass sees ``W_hat``, and gradients flow through the standardization.
Researchers use it to make batch-independent norms (GN, LN) competitive with BN
at small batches, so it is a model option, not a norm.

:func:`standardize_convolutions` turns the ``nn.Conv2d`` layers of a built
model into :class:`WSConv2d` by changing their class in place. Nothing else
changes: parameter names, state dicts and checkpoints are those of the plain
model, and because the standardization happens inside ``_conv_forward`` on
whatever weight the module holds at call time, it also applies when the weight
is swapped from outside (``torch.func.functional_call``, learn2learn's
``clone_module``), under ``torch.compile`` and inside attacks that call the
model. (``torch.nn.utils.parametrize`` would rename the weight to
``parametrizations.weight.original`` and so break checkpoints and ``functional_call``
by name.)

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = standardize_convolutions(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
    >>> type(net[0]).__name__, list(net.state_dict())
    ('WSConv2d', ['0.weight', '0.bias'])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["WS_EPS", "standardize_weight", "WSConv2d", "standardize_convolutions", "is_standardized"]

WS_EPS = 1e-5


def standardize_weight(weight: Tensor, eps: float = WS_EPS) -> Tensor:
    """``(W - mean) / sqrt(var + eps)`` per output channel (dim 0), biased variance over the other dims."""
    flat = weight.flatten(1)
    var, mean = torch.var_mean(flat, dim=1, correction=0, keepdim=True)
    return ((flat - mean) * torch.rsqrt(var + eps)).view_as(weight)


class WSConv2d(nn.Conv2d):
    """``nn.Conv2d`` that convolves with the standardized weight; same parameters and state dict.

    Arguments:
        *args, **kwargs: those of ``nn.Conv2d``.
        ws_eps: the eps under the square root (default 1e-5).
    """

    ws_eps: float = WS_EPS

    def __init__(self, *args, ws_eps: float = WS_EPS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _check_fan_in(self, "WSConv2d")
        self.ws_eps = ws_eps

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return super()._conv_forward(input, standardize_weight(weight, self.ws_eps), bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ws_eps={self.ws_eps}"


def _check_fan_in(conv: nn.Conv2d, where: str) -> None:
    fan_in = conv.weight[0].numel()
    if fan_in < 2:
        raise ValueError(f"{where}: weight standardization of a convolution with one weight per output channel "
                         f"(in_channels/groups={conv.in_channels // conv.groups}, kernel {conv.kernel_size}) "
                         "would zero it")


def standardize_convolutions(model: nn.Module, eps: float = WS_EPS) -> nn.Module:
    """Make every ``nn.Conv2d`` of ``model`` a :class:`WSConv2d` in place (all of them, as in the paper); returns ``model``.

    Stem, projection shortcuts, 1x1, depthwise and grouped convolutions are all
    standardized; linear layers are not (the paper standardizes convolutions).
    Subclasses of ``nn.Conv2d`` other than WSConv2d are refused rather than
    silently changed, since their forward may not go through ``_conv_forward``.
    Converting twice is harmless.
    """
    for name, module in model.named_modules():
        if type(module) is WSConv2d:
            continue
        if type(module) is nn.Conv2d:
            _check_fan_in(module, f"convolution {name!r}")
            module.__class__ = WSConv2d
            module.ws_eps = eps
        elif isinstance(module, nn.Conv2d):
            raise TypeError(f"convolution {name!r} is a {type(module).__name__}, a subclass of nn.Conv2d that "
                            "standardize_convolutions does not know how to convert")
    return model


def is_standardized(model: nn.Module) -> bool:
    """Whether ``model`` has convolutions and all of them are weight-standardized."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return bool(convs) and all(isinstance(m, WSConv2d) for m in convs)
