"""What one statistic of a normalization layer pools: declared per registry entry.

Code that measures statistics (the diagnostics callback's noise, confusion and
elements per statistic) needs to know which input elements share one mean and
variance. Each registry entry declares that as a tuple of :class:`Pooling`, one
per kind of statistic the layer computes (switchable normalization computes
three, EvoNorm-B0 two), instead of code guessing from class names.

Two kinds cover every layer in the registry:

- ``flat_groups``: flatten (C, H, W) channel-major and split it into ``groups``
  contiguous groups; each group is one statistic, pooled per sample or, when
  ``over_batch``, over the batch too. G = C is per channel (BN over the batch,
  IN per sample), G = 1 is the whole feature map (LN per sample); GN's groups of
  channels are contiguous groups of the flattened axis as well.
- ``position``: one statistic per sample and spatial position, over the C
  channels (PN).

``groups`` is ``"C"`` (one group per channel), ``1``, or the name of the layer
attribute that holds the group count the layer actually uses (GN may use fewer
groups than asked for; BGN's resolved G).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

__all__ = ["Pooling", "PER_CHANNEL_BATCH", "PER_CHANNEL_SAMPLE", "PER_SAMPLE", "PER_POSITION", "pooling_groups"]


@dataclass(frozen=True)
class Pooling:
    """How one statistic pools its input (see the module docstring)."""

    over_batch: bool
    kind: Literal["flat_groups", "position"] = "flat_groups"
    groups: int | str = "C"
    role: str = ""  # what this statistic is, when a layer has several (e.g. "IN", "LN", "BN" for SN)

    def metadata(self) -> dict[str, object]:
        return {"over_batch": self.over_batch, "kind": self.kind, "groups": self.groups, "role": self.role}


PER_CHANNEL_BATCH = Pooling(over_batch=True, groups="C")
PER_CHANNEL_SAMPLE = Pooling(over_batch=False, groups="C")
PER_SAMPLE = Pooling(over_batch=False, groups=1)
PER_POSITION = Pooling(over_batch=False, kind="position", groups=1)


def pooling_groups(pooling: Pooling, layer: nn.Module, num_channels: int) -> int:
    """The number of flat groups ``pooling`` has in ``layer`` (1 for ``position``)."""
    if pooling.kind == "position" or pooling.groups == 1:
        return 1
    if pooling.groups == "C":
        return num_channels
    if isinstance(pooling.groups, int):
        return pooling.groups
    value = getattr(layer, pooling.groups, None)
    if not isinstance(value, int):
        raise AttributeError(f"{type(layer).__name__} has no integer attribute {pooling.groups!r} (declared by its pooling)")
    return value
