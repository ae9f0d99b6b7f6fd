"""The statistics of the norm diagnostics: what a layer's statistics pool, and how noisy and confused they are.

Pure tensor code, driven only by a registry entry's :class:`~normlayers.pooling.Pooling`
metadata (never by class names), so that the diagnostics callback and the tests
share one definition (docs/diagnostics.md has the formulas).

:func:`chunk_stats` takes one layer input ``x`` of shape (N, C, *spatial) and
returns, for each of the K statistics the layer computes on it, the pooled
elements' mean and biased standard deviation (what the layer normalizes with),
the total sum of squares and its between-channel part:

- flat groups over the batch (BN, BGN): K = G statistics of N*C*H*W/G elements;
- flat groups per sample (IN, LN, GN): K = N*G statistics of C*H*W/G elements;
- position per sample (PN): K = N*H*W statistics of C elements (one per channel);
- position over the batch (none registered yet): K = H*W statistics of N*C elements.

Elements per statistic is that element count. A channel's mean within a
statistic is the mean of that channel's elements in it; where a statistic holds
one value per channel (PN), the channel's mean over every statistic of the input
(its expected value there) is used instead, see :func:`confusion`.

Flat groups are reduced in blocks of gcd(group size, H*W) consecutive
elements, each inside one group and one channel, so a chunk costs a few passes
over the input whatever G is, including groups that straddle channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from normlayers.pooling import Pooling

__all__ = ["ChunkStats", "chunk_stats", "confusion", "pooled_population", "noise", "geometric_mean"]


@dataclass(frozen=True)
class ChunkStats:
    """One layer input's statistics (K of them), as :func:`chunk_stats` computes them.

    ``between`` and ``total`` are the between-channel and the total sum of
    squares of each statistic; ``one_per_channel`` says that every statistic holds
    one value per channel (the channel means are then taken over all statistics);
    ``mixes_channels`` whether any statistic pools more than one channel.
    """

    mean: Tensor
    std: Tensor
    between: Tensor
    total: Tensor
    elements: int
    one_per_channel: bool
    mixes_channels: bool

    @property
    def statistics(self) -> int:
        return int(self.mean.numel())


def chunk_stats(x: Tensor, pooling: Pooling, groups: int) -> ChunkStats:
    """The statistics ``pooling`` computes on ``x`` (N, C, *spatial) with ``groups`` flat groups (module docstring)."""
    if x.dim() < 2:
        raise ValueError(f"a norm layer input needs (N, C, ...) dimensions, got shape {tuple(x.shape)}")
    n, c = int(x.shape[0]), int(x.shape[1])
    values = x.detach().to(torch.float64).reshape(n, c, -1)
    if pooling.kind == "position":
        return _position(values, pooling.over_batch)
    return _flat_groups(values, pooling.over_batch, groups)


def _position(x: Tensor, over_batch: bool) -> ChunkStats:
    n, c, p = x.shape
    if over_batch:  # statistic per position over (N, C); a channel's mean: over the batch at that position
        mean = x.mean((0, 1))
        var = x.var((0, 1), unbiased=False)
        between = n * (x.mean(0) - mean).pow(2).sum(0)
        elements = n * c
        single = n == 1
        if single:
            between = (x.mean((0, 2)).view(c, 1) - x.mean((0, 2)).mean()).pow(2).sum(0).expand(p).clone()
    else:  # statistic per sample and position over C; one value per channel: channel means over the input
        mean = x.mean(1).reshape(-1)
        var = x.var(1, unbiased=False).reshape(-1)
        expected = x.mean((0, 2))
        between = (expected - expected.mean()).pow(2).sum().expand(n * p).clone()
        elements = c
        single = True
    return ChunkStats(mean, var.clamp(min=0).sqrt(), between, var * elements, elements, single, c > 1)


def _flat_groups(x: Tensor, over_batch: bool, groups: int) -> ChunkStats:
    n, c, p = x.shape
    features = c * p
    if groups < 1 or features % groups:
        raise ValueError(f"{groups} groups do not divide the C*H*W={features} elements of a sample")
    size = features // groups
    block = math.gcd(size, p)
    blocks = features // block
    x = x.reshape(n, blocks, block)
    s1, s2 = x.sum(2), x.pow(2).sum(2)  # (N, blocks)
    start = torch.arange(blocks, device=x.device) * block
    group_of, channel_of = start // size, start // p
    key = group_of * c + channel_of  # blocks of one (group, channel) segment are consecutive
    _, segment = torch.unique_consecutive(key, return_inverse=True)
    segments = int(segment.max()) + 1
    seg_group = torch.zeros(segments, dtype=torch.long, device=x.device).scatter_(0, segment, group_of)
    seg_size = torch.zeros(segments, dtype=x.dtype, device=x.device).index_add_(
        0, segment, torch.full((blocks,), float(block), dtype=x.dtype, device=x.device))
    if over_batch:
        s1, s2, seg_size, elements = s1.sum(0, keepdim=True), s2.sum(0, keepdim=True), seg_size * n, size * n
    else:
        elements = size
    rows = s1.shape[0]
    seg_s1 = torch.zeros(rows, segments, dtype=x.dtype, device=x.device).index_add_(1, segment, s1)
    row_s1 = torch.zeros(rows, groups, dtype=x.dtype, device=x.device).index_add_(1, seg_group, seg_s1)
    row_s2 = torch.zeros(rows, groups, dtype=x.dtype, device=x.device).index_add_(
        1, group_of, s2)
    mean = row_s1 / elements
    total = (row_s2 - elements * mean.pow(2)).clamp(min=0)
    seg_mean = seg_s1 / seg_size
    single = bool(seg_size.max() <= 1)
    if single:  # one value per channel per statistic (H*W = 1, per sample): channel means over the samples
        seg_mean = seg_mean.mean(0, keepdim=True).expand_as(seg_mean)
        seg_centre = torch.zeros(rows, groups, dtype=x.dtype, device=x.device).index_add_(1, seg_group, seg_mean)
        seg_centre = seg_centre / torch.bincount(seg_group, minlength=groups).to(x.dtype)
        centre = seg_centre[:, seg_group]
    else:
        centre = mean[:, seg_group]
    between = torch.zeros(rows, groups, dtype=x.dtype, device=x.device).index_add_(
        1, seg_group, seg_size * (seg_mean - centre).pow(2))
    mixes = segments > groups
    return ChunkStats(mean.reshape(-1), (total / elements).sqrt().reshape(-1), between.reshape(-1), total.reshape(-1),
                      elements, single, mixes)


def confusion(stats: ChunkStats) -> float:
    """Between-channel share of the pooled sum of squares, averaged over the statistics (NaN if all constant).

    With one value per channel per statistic the share is pooled over the
    statistics (sum of between over sum of total): there the channel means come
    from all statistics, one statistic's share is not bounded by 1, and for PN the
    pooled share is the channel term of a two-way ANOVA (statistic x channel).
    """
    between, total = stats.between, stats.total
    if stats.one_per_channel:
        whole = float(total.sum())
        return min(1.0, float(between.sum()) / whole) if whole > 0 else math.nan
    ok = total > 1e-12 * (1.0 + stats.elements * stats.mean.pow(2))
    return float((between[ok] / total[ok]).clamp(max=1).mean()) if bool(ok.any()) else math.nan


def pooled_population(means: Tensor, stds: Tensor) -> tuple[Tensor, Tensor]:
    """Population mean and std per statistic from (chunks, K) chunk moments of equal-sized chunks.

    The pooled moments of all chunks together: the mean of the means, and the
    mean of (variance + mean^2) minus the squared mean.
    """
    mean = means.mean(0)
    second = (stds.pow(2) + means.pow(2)).mean(0)
    return mean, (second - mean.pow(2)).clamp(min=0).sqrt()


def noise(means: Tensor, stds: Tensor, pop_mean: Tensor, pop_std: Tensor, tiny: float = 1e-12
          ) -> tuple[float, float, int]:
    """Mean |mu_B - mu_pop| / sigma_pop and |sigma_B - sigma_pop| / sigma_pop over chunks and statistics.

    ``means`` and ``stds`` are (chunks, K). Statistics whose population std is
    (numerically) zero have no scale to measure noise in: they are left out and
    counted (the third value). NaN when every statistic is left out.
    """
    keep = pop_std > tiny * (1.0 + pop_mean.abs())
    skipped = int((~keep).sum())
    if not bool(keep.any()):
        return math.nan, math.nan, skipped
    scale = pop_std[keep]
    err_mean = (means[:, keep] - pop_mean[keep]).abs() / scale
    err_std = (stds[:, keep] - scale).abs() / scale
    return float(err_mean.mean()), float(err_std.mean()), skipped


def geometric_mean(values: list[float]) -> float:
    """exp(mean(log v)) of positive values (NaN for none)."""
    if not values:
        return math.nan
    return math.exp(sum(math.log(v) for v in values) / len(values))
