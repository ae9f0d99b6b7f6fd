"""How BGN's G groups and the C channels tile the flattened (C, H, W) axis.

BGN splits the channel-major flattened feature axis (length D = C*H*W) into G
contiguous groups of length L = D/G. Channels are contiguous blocks of length
HW. The common refinement of both partitions is a set of S equal *segments* of
length gcd(L, HW): each segment lies inside exactly one group and exactly one
channel, S is a multiple of both C and G, and segment s belongs to channel
``s // (S/C)`` and group ``s // (S/G)``. Viewing the input as (N, S, Ls) lets
every BGN computation use per-segment vectors built with ``repeat_interleave``
(no index tensors, no Python loops), whatever the relation between G and C:
G dividing C gives S = C, C dividing G gives S = G, anything else gives finer
segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from .spec import NormSpecError

__all__ = ["GroupLayout", "group_layout", "valid_group_counts"]


@dataclass(frozen=True)
class GroupLayout:
    channels: int
    positions: int  # H*W (product of all dims after C)
    groups: int

    @property
    def features(self) -> int:
        return self.channels * self.positions

    @property
    def group_len(self) -> int:
        return self.features // self.groups

    @property
    def segment_len(self) -> int:
        return math.gcd(self.group_len, self.positions)

    @property
    def segments(self) -> int:
        return self.features // self.segment_len

    @property
    def segments_per_channel(self) -> int:
        return self.segments // self.channels

    @property
    def segments_per_group(self) -> int:
        return self.segments // self.groups


def valid_group_counts(features: int, limit: int = 12) -> str:
    """A short human list of the G values that divide ``features``."""
    divisors = [d for d in range(1, int(math.isqrt(features)) + 1) if features % d == 0]
    divisors = sorted(set(divisors + [features // d for d in divisors]))
    if len(divisors) <= limit:
        return ", ".join(map(str, divisors))
    head = ", ".join(map(str, divisors[: limit - 2]))
    return f"{head}, ..., {divisors[-2]}, {divisors[-1]} ({len(divisors)} divisors in all)"


@lru_cache(maxsize=512)
def group_layout(shape: tuple[int, ...], groups: int) -> GroupLayout:
    """Layout for an input of ``shape`` = (N, C, *) or raise a clear shape error."""
    channels = shape[1]
    positions = math.prod(shape[2:])
    features = channels * positions
    if features % groups != 0:
        dims = "*".join(map(str, shape[1:]))
        raise NormSpecError(
            f"bgn: num_groups={groups} does not divide C*H*W = {dims} = {features} for an input of shape "
            f"{tuple(shape)}; num_groups must divide C*H*W of every layer it is used in. "
            f"Valid values here: {valid_group_counts(features)}"
        )
    return GroupLayout(channels, positions, groups)
