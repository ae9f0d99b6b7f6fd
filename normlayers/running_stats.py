"""BatchNorm's running-statistics conventions for layers that are not ``_BatchNorm`` subclasses.

Batch renormalization, EvoNorm-B0 and switchable normalization keep running
statistics, but must not subclass ``torch.nn.modules.batchnorm._BatchNorm``:
``SyncBatchNorm.convert_sync_batchnorm`` (Lightning's ``sync_batchnorm=True``)
would silently turn any such module, or a ``_BatchNorm`` child, into a plain
per-channel SyncBatchNorm with a different formula. :class:`RunningStats` gives
them BN's conventions without that: buffers ``running_mean`` (optional),
``running_var`` and ``num_batches_tracked``; ``momentum`` (None: cumulative
average, the mode AdaBN's re-estimation sets); the running variance updated with
the unbiased batch variance; ``reset_running_stats()``; ``track_running_stats``
(always True for these layers). Code that adapts or freezes statistics
(``tasks/uda/adabn.py``, the adversarial layer modes, few-shot buffer guards)
finds them through exactly these names.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["RunningStats", "check_input", "channel_affine"]


def check_input(layer: nn.Module, x: Tensor, num_channels: int, min_dim: int = 2) -> None:
    """Refuse an input that is not (N, C, *) with at least ``min_dim`` dimensions, naming the layer."""
    if x.dim() < min_dim or x.shape[1] != num_channels:
        extra = ", H, W" if min_dim > 2 else ", ..."
        raise ValueError(f"{type(layer).__name__}({num_channels}) expects input (N, {num_channels}{extra}), "
                         f"got {tuple(x.shape)}")


def channel_affine(layer: nn.Module, num_channels: int, affine: bool) -> None:
    """Register ``weight`` (ones) and ``bias`` (zeros) of length C on ``layer``, or None for both."""
    layer.register_parameter("weight", nn.Parameter(torch.ones(num_channels)) if affine else None)
    layer.register_parameter("bias", nn.Parameter(torch.zeros(num_channels)) if affine else None)


class RunningStats(nn.Module):
    """Base class holding per-channel running statistics with BatchNorm's conventions (see module docstring)."""

    def __init__(self, num_channels: int, momentum: float | None, keep_mean: bool = True, keep: bool = True) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.momentum = momentum
        self.track_running_stats = keep  # False only for a layer with no batch statistics (SN without its BN member)
        self.register_buffer("running_mean", torch.zeros(num_channels) if keep and keep_mean else None)
        self.register_buffer("running_var", torch.ones(num_channels) if keep else None)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long) if keep else None)

    def reset_running_stats(self) -> None:
        if not self.track_running_stats:
            return
        if self.running_mean is not None:
            self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    @torch.no_grad()
    def update_running_stats(self, mean: Tensor | None, var: Tensor, count: int) -> None:
        """Move the running statistics toward a batch's per-channel ``mean`` and *biased* ``var`` over ``count`` values.

        As ``nn.BatchNorm2d``: the variance stored is unbiased (``count / (count - 1)``),
        and ``momentum=None`` averages every batch equally (cumulative average).
        """
        if count < 2:
            raise ValueError(f"{type(self).__name__} in training mode needs more than 1 value per channel "
                             f"to estimate a variance (got {count})")
        self.num_batches_tracked.add_(1)
        factor: Tensor | float
        factor = 1.0 / self.num_batches_tracked.to(self.running_var.dtype) if self.momentum is None else self.momentum
        unbiased = var.detach().to(self.running_var.dtype) * (count / (count - 1))
        self.running_var.mul_(1 - factor).add_(unbiased * factor)
        if self.running_mean is not None and mean is not None:
            self.running_mean.mul_(1 - factor).add_(mean.detach().to(self.running_mean.dtype) * factor)
