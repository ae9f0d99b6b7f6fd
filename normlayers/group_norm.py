"""Group normalization in both of the GN paper's forms, and what each layer really got.

The GN paper (Wu & He, 2018) fixes either the number of groups G (32 by default) or
the channels per group C/G (16 in its Table 3). With a fixed G, a layer narrower than
G, or one whose width G does not divide, cannot have G groups; ``gn`` then uses the
largest divisor of C not above G, so a 16-channel layer under ``gn`` (G=32) has 16
groups of one channel: that layer is instance normalization (the paper measures 28.4%
error for one channel per group against 24.1% for G=32). This module makes that
visible instead of silent:

- :func:`group_norm_layout` lists (channels, groups) per GN layer of a built model, for
  the run record (``norm_groups_per_layer``, ``norm_channels_per_group``);
- :func:`group_norm_label` is the table label of what ran ("GN (G<=32: 16/32/32 at
  C=16/32/64)") when the layers differ from the request;
- :func:`collect_group_norms` sees every GN layer built inside it, so the dry run can
  refuse a spec that is IN on every layer (:func:`instance_only_reason`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from torch import nn

from .spec import NormSpecError

__all__ = [
    "GroupNorm",
    "largest_divisor_at_most",
    "collect_group_norms",
    "group_norm_layout",
    "group_norm_fields",
    "group_norm_label",
    "instance_only_reason",
]

_collectors: list[list[tuple[int, int, bool]]] = []  # open collect_group_norms() lists: (channels, groups, allow_instance)


def largest_divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that does not exceed ``limit`` (at least 1)."""
    for d in range(min(n, limit), 0, -1):
        if n % d == 0:
            return d
    return 1


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class GroupNorm(nn.GroupNorm):
    """Group normalization with a fixed G (``num_groups``) or fixed channels per group (``channels_per_group``).

    With ``num_groups`` (the default, 32), a layer whose channel count G does not
    divide (or that has fewer channels) uses the largest divisor of C not above it:
    C=16 gets 16 groups, C=48 gets 24, C=64 gets 32, so one spec fits every layer;
    ``requested_groups`` keeps what was asked for. With ``channels_per_group=K`` every
    layer has C/K groups, and K must divide C. ``allow_instance`` only marks that one
    channel per group on every layer (IN) is meant; the dry run refuses it otherwise.

    Example:
        >>> GroupNorm(16, num_groups=32).num_groups, GroupNorm(64, channels_per_group=8).num_groups
        (16, 8)
    """

    def __init__(self, num_channels: int, num_groups: int | None = 32, channels_per_group: int | None = None,
                 allow_instance: bool = False, eps: float = 1e-5, affine: bool = True) -> None:
        if channels_per_group is not None:
            if num_groups is not None:
                raise NormSpecError(f"GroupNorm({num_channels}): num_groups={num_groups} and channels_per_group="
                                    f"{channels_per_group} are both given; give one")
            if num_channels % channels_per_group:
                raise NormSpecError(
                    f"norm gn: channels_per_group={channels_per_group} does not divide a layer's C={num_channels}; "
                    f"choose one of {', '.join(map(str, _divisors(num_channels)))} (or a num_groups, which adapts per layer)")
            groups = num_channels // channels_per_group
        else:
            groups = largest_divisor_at_most(num_channels, 32 if num_groups is None else num_groups)
        super().__init__(groups, num_channels, eps=eps, affine=affine)
        self.requested_groups = num_groups
        self.channels_per_group = channels_per_group
        self.allow_instance = allow_instance
        for seen in _collectors:
            seen.append((num_channels, groups, allow_instance))

    def extra_repr(self) -> str:
        asked = (f"channels_per_group={self.channels_per_group}" if self.channels_per_group is not None
                 else f"num_groups={self.requested_groups}")
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine} (requested {asked})"


@contextlib.contextmanager
def collect_group_norms() -> Iterator[list[tuple[int, int, bool]]]:
    """Collect ``(channels, groups, allow_instance)`` of every :class:`GroupNorm` built inside the block.

    The dry run builds a task's networks inside it, whatever the task's own dry run does,
    so the layout check needs no model handle.
    """
    seen: list[tuple[int, int, bool]] = []
    _collectors.append(seen)
    try:
        yield seen
    finally:
        _collectors.remove(seen)


def instance_only_reason(spec: str, built: list[tuple[int, int, bool]]) -> str | None:
    """Why the GN layers ``built`` are IN on every layer (one line), or None when some layer is GN or IN is allowed."""
    if not built or any(channels // groups > 1 or allowed for channels, groups, allowed in built):
        return None
    widths = "/".join(str(c) for c in sorted({c for c, _, _ in built}))
    return (f"norm {spec}: every GN layer has 1 channel per group (C={widths}), so it is IN: use `in`, or a GN with "
            "at least 2 channels per group (e.g. gn:channels_per_group=8 or a smaller num_groups); add "
            "allow_instance=true to the spec to run it anyway")


def group_norm_layout(model: nn.Module, prefix: str = "") -> dict[str, tuple[int, int]]:
    """``{qualified layer name: (channels, groups)}`` for every :class:`GroupNorm` in ``model``."""
    return {prefix + name: (m.num_channels, m.num_groups) for name, m in model.named_modules() if isinstance(m, GroupNorm)}


def group_norm_fields(model: nn.Module, prefix: str = "") -> dict[str, dict[str, int]]:
    """Record fields of the GN layers: groups and channels per group per layer (none without GN layers)."""
    layout = group_norm_layout(model, prefix)
    if not layout:
        return {}
    return {"norm_groups_per_layer": {name: g for name, (_, g) in layout.items()},
            "norm_channels_per_group": {name: c // g for name, (c, g) in layout.items()}}


def group_norm_label(label: str, args: dict[str, Any], groups: dict[str, int], channels_per_group: dict[str, int]) -> str:
    """The label of what ran: ``label`` when every layer got the requested G, else the G per layer width.

    ``args`` are the resolved spec's arguments; ``groups`` and ``channels_per_group`` the
    record's per-layer fields (layers in both count). With ``channels_per_group`` asked
    for, every layer has it (the layer refuses a K that does not divide C), so the label stands.

    Example:
        >>> group_norm_label("GN (G=32)", {"num_groups": 32}, {"a": 16, "b": 32, "c": 32}, {"a": 1, "b": 1, "c": 2})
        'GN (G<=32: 16/32/32 at C=16/32/64)'
    """
    requested = args.get("num_groups")
    if args.get("channels_per_group") is not None or not isinstance(requested, int):
        return label
    per_width = {groups[n] * channels_per_group[n]: groups[n] for n in groups if n in channels_per_group}
    if not per_width or all(g == requested for g in per_width.values()):
        return label
    widths = sorted(per_width)
    ran = f"G<={requested}: {'/'.join(str(per_width[w]) for w in widths)} at C={'/'.join(map(str, widths))}"
    return label.replace(f"G={requested}", ran, 1)
