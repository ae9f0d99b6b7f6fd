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

from .bgn_functional import bgn_eval, bgn_train_local, update_running_stats
from .bgn_two_phase import bgn_train_two_phase, sync_world_size
from .group_layout import group_layout

# Which train-mode implementation runs (both are exact; the choice is speed only).
# The composite path costs fewer operator calls, which is what small inputs pay
# for; the two-phase path makes fewer memory passes and spreads its work over
# N*G rows rather than G. Crossover measured on a 2-core CPU with
# ``python -m normlayers.bench`` (between 131k and 401k elements for every G tried).
TWO_PHASE_MIN_NUMEL = 1 << 18


def _prefer_two_phase(x: Tensor) -> bool:
    """The crossover depends on the element count only: it fell between 131k and 401k for every G measured."""
    return x.numel() >= TWO_PHASE_MIN_NUMEL


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
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"BatchGroupNorm({self.num_channels}) expects input (N, {self.num_channels}, ...), got {tuple(x.shape)}"
            )
        layout = group_layout(tuple(x.shape), self.num_groups)
        stats = self.stats
        use_batch_stats = stats.training or stats.running_mean is None
        update = stats.training and stats.track_running_stats
        out_dtype = x.dtype
        if self.weight is not None and x.dtype != self.weight.dtype:
            x = x.to(self.weight.dtype)  # half/bf16 inputs: statistics in the parameters' precision
        if not use_batch_stats:
            return bgn_eval(x, layout, stats.running_mean, stats.running_var, self.weight, self.bias, self.eps).to(out_dtype)

        count = x.shape[0] * layout.group_len
        process_group = getattr(stats, "process_group", None)
        synchronized = self.is_synchronized and sync_world_size(process_group) > 1  # cheap test first
        if count < 2 and not synchronized:
            raise ValueError(
                f"BatchGroupNorm: each group has 1 value for input shape {tuple(x.shape)} and "
                f"num_groups={self.num_groups}; batch statistics need at least 2 (use a larger batch or fewer groups)"
            )
        factor = self._averaging_factor() if update else 0.0
        if synchronized:
            group = process_group if process_group is not None else torch.distributed.group.WORLD
            y, mean, var, count = bgn_train_two_phase(x, layout, self.weight, self.bias, self.eps, group)
        elif self.num_groups == self.num_channels:  # exactly BatchNorm: use its kernel as is
            rm, rv = (stats.running_mean, stats.running_var) if update else (None, None)
            return F.batch_norm(x, rm, rv, self.weight, self.bias, True, factor, self.eps).to(out_dtype)
        elif _prefer_two_phase(x):
            y, mean, var, count = bgn_train_two_phase(x, layout, self.weight, self.bias, self.eps, None)
        else:
            y, mean, var = bgn_train_local(x, layout, self.weight, self.bias, self.eps)
        if update:
            update_running_stats(stats.running_mean, stats.running_var, mean, var, count, factor)
        return y if y.dtype == out_dtype else y.to(out_dtype)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, num_groups={self.num_groups}, eps={self.eps}, affine={self.affine}"
