"""normlayers: normalization layers for convolutional networks, behind one registry.

>>> from normlayers import create_norm
>>> layer = create_norm("bgn:num_groups=4", 64)
>>> auto = create_norm("bgn:num_groups=auto", 64)   # G chosen per layer at its first forward

Spec strings are ``name`` or ``name:key=value,...``; see :mod:`normlayers.spec`.
``norm_layer(spec)`` gives a ``norm_layer=`` callable for torchvision models;
``standardize_convolutions(model)`` adds Weight Standardization to a model's convolutions.
This package imports torch only.
"""

from . import catalog as _catalog  # noqa: F401  (registers the built-in layers)
from .activation import activation_after, applies_own_activation
from .batch_renorm import BatchRenorm
from .bgn import BatchGroupNorm, GroupStatistics
from .bgn_auto import AutoBatchGroupNorm, auto_group_choices, choose_groups, normalization_batch, set_normalization_batch
from .evonorm import EvoNormB0, EvoNormS0
from .filter_response import FilterResponseNorm
from .group_norm import collect_group_norms, group_norm_fields, group_norm_label, group_norm_layout, instance_only_reason
from .layers import GroupNorm, InstanceNorm, LayerNorm2d, PositionalNorm
from .pooling import Pooling
from .registry import (
    NormEntry,
    NormParam,
    ResolvedNorm,
    create_norm,
    find_norm_layers,
    get_norm_entry,
    list_norms,
    norm_label,
    norm_layer,
    register_norm,
    resolve_norm,
)
from .spec import NormSpec, NormSpecError, parse_norm_spec
from .switchable import SwitchableNorm
from .sync import SyncGroupStatistics, convert_sync_norms, revert_sync_norms
from .weight_standardization import WSConv2d, is_standardized, standardize_convolutions

__all__ = [
    "activation_after",
    "applies_own_activation",
    "Pooling",
    "BatchGroupNorm",
    "BatchRenorm",
    "EvoNormB0",
    "EvoNormS0",
    "FilterResponseNorm",
    "SwitchableNorm",
    "AutoBatchGroupNorm",
    "auto_group_choices",
    "choose_groups",
    "normalization_batch",
    "set_normalization_batch",
    "GroupStatistics",
    "GroupNorm",
    "collect_group_norms",
    "group_norm_fields",
    "group_norm_label",
    "group_norm_layout",
    "instance_only_reason",
    "InstanceNorm",
    "LayerNorm2d",
    "PositionalNorm",
    "NormEntry",
    "NormParam",
    "NormSpec",
    "NormSpecError",
    "ResolvedNorm",
    "create_norm",
    "find_norm_layers",
    "get_norm_entry",
    "list_norms",
    "norm_label",
    "norm_layer",
    "parse_norm_spec",
    "register_norm",
    "resolve_norm",
    "SyncGroupStatistics",
    "convert_sync_norms",
    "revert_sync_norms",
    "WSConv2d",
    "is_standardized",
    "standardize_convolutions",
]
