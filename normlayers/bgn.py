"""Batch Group Normalization (Zhou et al., arXiv:2012.02782).

For an input (N, C, *), flatten (C, *) channel-major, split it into G contiguous
groups, and normalize each group with one mean and one biased variance computed
over the batch and the group together (N*C*H*W/G values). Then apply a
per-channel affine (the same 2C parameters as BN). Running statistics of length
G follow BN's conventions (momentum, eps, unbiased running variance, cumulative
average when momentum is None) and are used in eval mode. G = C is exactly
``nn.BatchNorm2d``; G = 1 standardizes each batch tensor as a whole.

Synchronization across processes: the running statistics live in a child
module, ``stats``, that is a ``_BatchNorm`` over the G groups. torch's
``SyncBatchNorm.convert_sync_batchnorm`` (what Lightning's
``sync_batchnorm=True`` calls) therefore turns that child into a
``SyncBatchNorm(G)`` instead of turning the whole layer into per-channel BN, and
the layer, seeing a SyncBatchNorm child, synchronizes its group statistics (see
:mod:`normlayers.bgn_two_phase` and :mod:`normlayers.sync`). The child's ``training`` flag decides between batch
and running statistics, so code that freezes every ``_BatchNorm`` also freezes BGN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bgn_functional import bgn_eval, bgn_train_local, bgn_train_plain, update_running_stats
from .bgn_paths import choose_train_path
from .bgn_two_phase import bgn_train_two_phase, sync_world_size
from .group_layout import group_layout
from .native import native_ops


class GroupStatistics(nn.modules.batchnorm._BatchNorm):
    """Running statistics of BGN's G groups; on its own, BN over an (N, G, L) input.

    It has no affine parameters (BGN's affine is per channel and lives in the
    parent). Being a ``_BatchNorm`` is what lets ``convert_sync_batchnorm`` find it.
    """

    def __init__(self, num_groups: int, eps: float, momentum: float | None, track_running_stats: bool) -> None:
        super().__init__(num_groups, eps, momentum, affine=False, track_running_stats=track_running_stats)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 3:
            raise ValueError(f"GroupStatistics expects an (N, G, L) input, got shape {tuple(input.shape)}")


class BatchGroupNorm(nn.Module):
    """Batch Group Normalization over G groups of the flattened (C, H, W) axis."""

    def __init__(
        self,
        num_channels: int,
        num_groups: int = 1,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.num_groups = num_groups
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.stats = GroupStatistics(num_groups, eps, momentum, track_running_stats)

    # Convenience views of the statistics child, named as on nn.BatchNorm2d.
    @property
    def running_mean(self) -> Tensor | None:
        return self.stats.running_mean

    @property
    def running_var(self) -> Tensor | None:
        return self.stats.running_var

    @property
    def momentum(self) -> float | None:
        return self.stats.momentum

    @property
    def is_synchronized(self) -> bool:
        """True once the statistics child asks for synchronization: a SyncBatchNorm made by
        ``convert_sync_batchnorm``, or any child with a ``process_group`` attribute
        (``normlayers.sync.SyncGroupStatistics``)."""
        return isinstance(self.stats, nn.SyncBatchNorm) or hasattr(self.stats, "process_group")

    def _averaging_factor(self) -> float:
        stats = self.stats
        assert stats.num_batches_tracked is not None
        stats.num_batches_tracked.add_(1)
        if stats.momentum is None:  # cumulative moving average, as in BN
            return 1.0 / float(stats.num_batches_tracked.item())
        return float(stats.momentum)

    def forward(self, x: Tensor) -> Tensor:
        # Written for a low per-call cost (at small shapes the framework, not the arithmetic, is what BN
        # and BGN pay): every module attribute is read once, and the common case skips the sync tests.
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"BatchGroupNorm({self.num_channels}) expects input (N, {self.num_channels}, ...), got {tuple(x.shape)}"
            )
        groups = self.num_groups
        layout = group_layout(tuple(x.shape), groups)
        stats, weight, bias = self.stats, self.weight, self.bias
        out_dtype = x.dtype
        if weight is not None and out_dtype != weight.dtype:
            x = x.to(weight.dtype)  # half/bf16 inputs: statistics in the parameters' precision
        training = stats.training
        running_mean = stats.running_mean
        if not (training or running_mean is None):
            y = bgn_eval(x, layout, running_mean, stats.running_var, weight, bias, self.eps)
            return y if y.dtype == out_dtype else y.to(out_dtype)

        if type(stats) is GroupStatistics:  # local statistics: no process group to ask
            process_group, synchronized = None, False
        else:
            process_group = getattr(stats, "process_group", None)
            synchronized = self.is_synchronized and sync_world_size(process_group) > 1
        if x.shape[0] * layout.group_len < 2 and not synchronized:
            raise ValueError(
                f"BatchGroupNorm: each group has 1 value for input shape {tuple(x.shape)} and "
                f"num_groups={groups}; batch statistics need at least 2 (use a larger batch or fewer groups)"
            )
        update = training and stats.track_running_stats
        path = choose_train_path(x, groups, self.num_channels, synchronized)
        if path == "native" or path == "noop":  # one call: statistics, running-statistics update and output
            ops = native_ops()
            op = ops.bgn_train if path == "native" else ops.bgn_noop
            if update:
                y = op(x, weight, bias, running_mean, stats.running_var, stats.num_batches_tracked, groups, stats.momentum,
                       self.eps)
            else:
                y = op(x, weight, bias, None, None, None, groups, None, self.eps)
            return y if y.dtype == out_dtype else y.to(out_dtype)
        factor = self._averaging_factor() if update else 0.0
        if path == "batch_norm":  # exactly BatchNorm: use its kernel as is
            rm, rv = (running_mean, stats.running_var) if update else (None, None)
            y = F.batch_norm(x, rm, rv, weight, bias, True, factor, self.eps)
            return y if y.dtype == out_dtype else y.to(out_dtype)
        count = x.shape[0] * layout.group_len
        if path == "two_phase":
            group = None
            if synchronized:
                group = process_group if process_group is not None else torch.distributed.group.WORLD
            y, mean, var, count = bgn_train_two_phase(x, layout, weight, bias, self.eps, group)
        elif path == "plain":
            y, mean, var = bgn_train_plain(x, layout, weight, bias, self.eps)
        else:
            y, mean, var = bgn_train_local(x, layout, weight, bias, self.eps)
        if update:
            update_running_stats(running_mean, stats.running_var, mean, var, count, factor)
        return y if y.dtype == out_dtype else y.to(out_dtype)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, num_groups={self.num_groups}, eps={self.eps}, affine={self.affine}"
