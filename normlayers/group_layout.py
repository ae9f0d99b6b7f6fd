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
from dataclasses import dataclass, field
from functools import lru_cache

from .spec import NormSpecError

__all__ = ["GroupLayout", "group_layout", "valid_group_counts"]


@dataclass(frozen=True)
class GroupLayout:
    """Sizes of the partition; all fields are computed once (layouts are cached per shape)."""

    channels: int
    positions: int  # H*W (product of all dims after C)
    groups: int
    features: int = field(init=False)
    group_len: int = field(init=False)
    segment_len: int = field(init=False)
    segments: int = field(init=False)
    segments_per_channel: int = field(init=False)
    segments_per_group: int = field(init=False)

    def __post_init__(self) -> None:
        features = self.channels * self.positions
        group_len = features // self.groups
        segment_len = math.gcd(group_len, self.positions)
        segments = features // segment_len
        for name, value in (
            ("features", features),
            ("group_len", group_len),
            ("segment_len", segment_len),
            ("segments", segments),
            ("segments_per_channel", segments // self.channels),
            ("segments_per_group", segments // self.groups),
        ):
            object.__setattr__(self, name, value)


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` in increasing order (the G values a layer with n = C*H*W features allows)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def valid_group_counts(features: int, limit: int = 12) -> str:
    """A short human list of the G values that divide ``features``."""
    allowed = divisors(features)
    if len(allowed) <= limit:
        return ", ".join(map(str, allowed))
    head = ", ".join(map(str, allowed[: limit - 2]))
    return f"{head}, ..., {allowed[-2]}, {allowed[-1]} ({len(allowed)} divisors in all)"


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
