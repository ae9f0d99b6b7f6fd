"""Turning synchronization of batch statistics on and off for a whole model.

torch's ``SyncBatchNorm.convert_sync_batchnorm`` (Lightning's
``sync_batchnorm=True``) already makes BGN synchronize on GPUs: it turns BGN's
``stats`` child into a ``SyncBatchNorm`` over the G groups, which BGN detects.
DDP, however, refuses any ``SyncBatchNorm`` module in a CPU model, so on CPU
that route fails for BN and BGN alike. :func:`convert_sync_norms` does the
torch conversion and then gives BGN a :class:`SyncGroupStatistics` child
instead, which DDP accepts on any device; BGN's own reduction (gloo or NCCL)
does the synchronizing. :func:`revert_sync_norms` undoes it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .bgn import BatchGroupNorm, GroupStatistics

__all__ = ["SyncGroupStatistics", "convert_sync_norms", "revert_sync_norms"]


class SyncGroupStatistics(GroupStatistics):
    """BGN group statistics to be synchronized over ``process_group`` (None: the whole world)."""

    def __init__(self, num_groups: int, eps: float, momentum: float | None, track_running_stats: bool,
                 process_group: Any = None) -> None:
        super().__init__(num_groups, eps, momentum, track_running_stats)
        self.process_group = process_group


def _move_buffers(source: nn.modules.batchnorm._BatchNorm, target: nn.modules.batchnorm._BatchNorm) -> None:
    target.running_mean = source.running_mean
    target.running_var = source.running_var
    target.num_batches_tracked = source.num_batches_tracked
    target.train(source.training)


def convert_sync_norms(module: nn.Module, process_group: Any = None) -> nn.Module:
    """Synchronize every syncable norm: BN via torch's SyncBatchNorm, BGN via its own reduction."""
    module = nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    for layer in module.modules():
        if isinstance(layer, BatchGroupNorm):
            old = layer.stats
            new = SyncGroupStatistics(old.num_features, old.eps, old.momentum, old.track_running_stats, process_group)
            _move_buffers(old, new)
            layer.stats = new
    return module


def revert_sync_norms(module: nn.Module) -> nn.Module:
    """Give BGN layers local statistics again (BN layers are left to torch/Lightning's revert)."""
    for layer in module.modules():
        if isinstance(layer, BatchGroupNorm) and layer.is_synchronized:
            old = layer.stats
            new = GroupStatistics(old.num_features, old.eps, old.momentum, old.track_running_stats)
            _move_buffers(old, new)
            layer.stats = new
    return module
