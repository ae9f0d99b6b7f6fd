"""The built-in registry entries: BN, IN, LN, GN, PN, BGN, BRN, FRN, EvoNorm-B0/S0, SN and the no-norm baseline.

The order here is the row order of every table the reporter writes.
"""

from __future__ import annotations

from torch import nn

from .batch_renorm import BatchRenorm
from .bgn import BatchGroupNorm
from .bgn_auto import DEFAULT_ELEMENTS, AutoBatchGroupNorm
from .evonorm import EvoNormB0, EvoNormS0
from .filter_response import FilterResponseNorm
from .group_norm import GroupNorm
from .layers import InstanceNorm, LayerNorm2d, PositionalNorm
from .pooling import PER_CHANNEL_BATCH, PER_CHANNEL_SAMPLE, PER_POSITION, PER_SAMPLE, Pooling
from .registry import NormEntry, NormParam, register_norm
from .spec import NormSpecError
from .switchable import SwitchableNorm, parse_members

__all__: list[str] = []


def _positive(v: float) -> bool:
    return v > 0


EPS = NormParam("eps", float, 1e-5, "a float > 0", _positive)
AFFINE = NormParam("affine", bool, True, "true or false")
MOMENTUM = NormParam(
    "momentum", float, 0.1, "a float in [0, 1], or none for a cumulative average", lambda v: 0 <= v <= 1, nullable=True
)
TRACK = NormParam("track_running_stats", bool, True, "true or false")
APPLY_ACT = NormParam("apply_act", bool, True, "true or false (false: no built-in activation, for a slot without one)")


def _batch_norm(num_channels: int, **kwargs) -> nn.Module:
    return nn.BatchNorm2d(num_channels, **kwargs)


def _identity(num_channels: int) -> nn.Module:
    return nn.Identity()


def _batch_group_norm(num_channels: int, num_groups: int | str = 1, elements: int | None = None, **kwargs) -> nn.Module:
    if num_groups == "auto":
        return AutoBatchGroupNorm(num_channels, elements or DEFAULT_ELEMENTS, **kwargs)
    return BatchGroupNorm(num_channels, num_groups, **kwargs)


def _bgn_args(kwargs: dict, given: frozenset[str], where: str) -> dict:
    """num_groups=auto takes the default elements; elements alone means auto; a fixed G with elements is refused."""
    if "elements" in given and kwargs["elements"] is not None:
        if "num_groups" in given and kwargs["num_groups"] != "auto":
            raise NormSpecError(
                f"{where}: num_groups={kwargs['num_groups']} and elements={kwargs['elements']} are both given; "
                "elements chooses G per layer (num_groups=auto), so give a fixed num_groups or elements, not both"
            )
        return {**kwargs, "num_groups": "auto"}
    if kwargs["num_groups"] == "auto":
        return {**kwargs, "elements": kwargs["elements"] or DEFAULT_ELEMENTS}
    return kwargs


register_norm(
    NormEntry(
        name="bn",
        factory=_batch_norm,
        label="BN",
        description="Batch normalization: per channel, statistics over (N, H, W).",
        params=(EPS, MOMENTUM, AFFINE, TRACK),
        uses_batch_stats=True,
        keeps_running_stats=True,
        syncable=True,
        pooling=(PER_CHANNEL_BATCH,),
    )
)
register_norm(
    NormEntry(
        name="in",
        factory=InstanceNorm,
        label="IN",
        description="Instance normalization: per sample and channel, statistics over (H, W).",
        params=(EPS, AFFINE),
        pooling=(PER_CHANNEL_SAMPLE,),
    )
)
register_norm(
    NormEntry(
        name="ln",
        factory=LayerNorm2d,
        label="LN",
        description="Layer normalization: per sample, statistics over (C, H, W); per-channel affine.",
        params=(EPS, AFFINE),
        pooling=(PER_SAMPLE,),
    )
)
def _gn_args(kwargs: dict, given: frozenset[str], where: str) -> dict:
    """channels_per_group=K is the GN paper's other form: it replaces num_groups, never joins it."""
    if kwargs["channels_per_group"] is None:
        if kwargs["num_groups"] is None:
            raise NormSpecError(f"{where}: num_groups=null needs channels_per_group=K (one of the two fixes the groups)")
        return kwargs
    if "num_groups" in given and kwargs["num_groups"] is not None:
        raise NormSpecError(
            f"{where}: num_groups={kwargs['num_groups']} and channels_per_group={kwargs['channels_per_group']} are both "
            "given; GN fixes either the number of groups or the channels per group, so give one")
    return {**kwargs, "num_groups": None}


register_norm(
    NormEntry(
        name="gn",
        factory=GroupNorm,
        label="GN",
        description=(
            "Group normalization: per sample, statistics over groups of channels and (H, W). num_groups=G (default 32): "
            "a layer whose C G does not divide uses the largest divisor of C below G (C=16 under G=32 is IN: 1 channel "
            "per group); channels_per_group=K: C/K groups on every layer (K must divide C). A spec that is IN on every "
            "layer of a model is refused at the dry run unless allow_instance=true."
        ),
        params=(
            NormParam("num_groups", int, 32, "an integer >= 1", lambda v: v >= 1, nullable=True, short="G"),
            NormParam("channels_per_group", int, None, "an integer >= 1 that divides C of every layer, or null",
                      lambda v: v >= 1, nullable=True, short="C/G"),
            NormParam("allow_instance", bool, False, "true or false (true: run even where every layer is IN)"),
            EPS,
            AFFINE,
        ),
        group_param="num_groups",
        always_in_spec=("num_groups",),
        pooling=(Pooling(over_batch=False, groups="num_groups"),),
        check_args=_gn_args,
    )
)
register_norm(
    NormEntry(
        name="pn",
        factory=PositionalNorm,
        label="PN",
        description="Positional normalization: per sample and position, statistics over C; per-channel affine.",
        params=(EPS, AFFINE),
        pooling=(PER_POSITION,),
    )
)
register_norm(
    NormEntry(
        name="bgn",
        factory=_batch_group_norm,
        label="BGN",
        description=(
            "Batch group normalization: G contiguous groups of the flattened (C, H, W) axis, statistics over the "
            "batch and the group; G must divide C*H*W. G=C is BN. num_groups=auto (or elements=M) chooses G per "
            f"layer so that each statistic pools about M values (default {DEFAULT_ELEMENTS}; docs/auto-groups.md)."
        ),
        params=(
            NormParam("num_groups", int, 1, "an integer >= 1 that divides C*H*W of every layer, or auto",
                      lambda v: v >= 1, short="G", literals=("auto",)),
            NormParam("elements", int, None, "an integer >= 1 (values per statistic that num_groups=auto aims at), "
                      "or null (the default)", lambda v: v >= 1, nullable=True, short="M"),
            EPS,
            MOMENTUM,
            AFFINE,
            TRACK,
        ),
        uses_batch_stats=True,
        keeps_running_stats=True,
        group_param="num_groups",
        syncable=True,
        always_in_spec=("num_groups",),
        pooling=(Pooling(over_batch=True, groups="num_groups"),),
        check_args=_bgn_args,
    )
)
register_norm(
    NormEntry(
        name="brn",
        factory=BatchRenorm,
        label="BRN",
        description=(
            "Batch renormalization: BN's batch statistics corrected toward the running ones by r, d clipped to "
            "[1/r_max, r_max], [-d_max, d_max]; the limits ramp from (1, 0) over ramp_steps training steps. "
            "affine: per-channel scale and shift."
        ),
        params=(
            NormParam("r_max", float, 3.0, "a float >= 1", lambda v: v >= 1),
            NormParam("d_max", float, 5.0, "a float >= 0", lambda v: v >= 0),
            NormParam("ramp_steps", int, 25000, "an integer >= 0 (0: no ramp)", lambda v: v >= 0),
            EPS,
            NormParam("momentum", float, 0.01, "a float in (0, 1]", lambda v: 0 < v <= 1),
            AFFINE,
        ),
        uses_batch_stats=True,
        keeps_running_stats=True,
        pooling=(PER_CHANNEL_BATCH,),
    )
)
register_norm(
    NormEntry(
        name="frn",
        factory=FilterResponseNorm,
        label="FRN",
        description=(
            "Filter response normalization + TLU: per sample and channel, x / sqrt(mean of x^2 over (H, W) + eps), "
            "then max(y, tau). affine: per-channel scale and shift (tau belongs to the TLU and stays)."
        ),
        params=(
            NormParam("eps", float, 1e-6, "a float > 0", _positive),
            AFFINE,
            APPLY_ACT,
            NormParam("learnable_eps", bool, False, "true or false"),
        ),
        pooling=(PER_CHANNEL_SAMPLE,),
        builtin_activation="TLU",
    )
)
register_norm(
    NormEntry(
        name="evonorm_b0",
        factory=EvoNormB0,
        label="EvoNorm-B0",
        description=(
            "EvoNorm-B0: x / max(sqrt(batch var + eps), v*x + sqrt(instance var + eps)); running variance for eval. "
            "apply_act=false: x / sqrt(batch var + eps). affine: per-channel scale and shift (v stays)."
        ),
        params=(EPS, MOMENTUM, AFFINE, APPLY_ACT),
        uses_batch_stats=True,
        keeps_running_stats=True,
        pooling=(
            Pooling(over_batch=True, groups="C", role="batch"),
            Pooling(over_batch=False, groups="C", role="instance"),
        ),
        builtin_activation="EvoNorm-B0",
    )
)
register_norm(
    NormEntry(
        name="evonorm_s0",
        factory=EvoNormS0,
        label="EvoNorm-S0",
        description=(
            "EvoNorm-S0: x * sigmoid(v*x) / sqrt(group var + eps), per sample, groups as GN (largest divisor of C "
            "below num_groups). apply_act=false: x / sqrt(group var + eps). affine: per-channel scale and shift."
        ),
        params=(NormParam("num_groups", int, 32, "an integer >= 1", lambda v: v >= 1, short="G"), EPS, AFFINE, APPLY_ACT),
        group_param="num_groups",
        always_in_spec=("num_groups",),
        pooling=(Pooling(over_batch=False, groups="num_groups"),),
        builtin_activation="Swish",
    )
)
register_norm(
    NormEntry(
        name="sn",
        factory=SwitchableNorm,
        label="SN",
        description=(
            "Switchable normalization: softmax-weighted means and variances of IN, LN and BN (separate weights); "
            "running BN statistics for eval. affine: per-channel scale and shift."
        ),
        params=(
            NormParam("members", str, "in+ln+bn", "a '+'-joined subset of in, ln, bn in that order, e.g. in+ln+bn or in+bn",
                      lambda v: parse_members(v) is not None),
            EPS,
            MOMENTUM,
            AFFINE,
        ),
        uses_batch_stats=True,
        keeps_running_stats=True,
        pooling=(
            Pooling(over_batch=False, groups="C", role="IN"),
            Pooling(over_batch=False, groups=1, role="LN"),
            Pooling(over_batch=True, groups="C", role="BN"),
        ),
    )
)
register_norm(
    NormEntry(
        name="none",
        factory=_identity,
        label="None",
        description="No normalization (identity), the baseline without any.",
    )
)
