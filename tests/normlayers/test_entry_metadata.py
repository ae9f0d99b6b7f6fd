"""Every registry entry's declarations agree with the layer it builds (new entries are covered automatically)."""

from __future__ import annotations

import pytest
from torch import nn

from normlayers import activation_after, applies_own_activation, create_norm, get_norm_entry, list_norms
from normlayers.pooling import pooling_groups

NORMS = [n for n in list_norms() if n != "none"]


@pytest.mark.parametrize("name", NORMS)
def test_batch_statistics_flag_matches_declared_pooling(name: str) -> None:
    entry = get_norm_entry(name)
    assert entry.pooling, f"{name} declares no pooling"
    assert entry.uses_batch_stats == any(p.over_batch for p in entry.pooling)


@pytest.mark.parametrize("name", NORMS)
def test_declared_groups_tile_the_feature_map(name: str) -> None:
    layer = create_norm(name, 16)
    for pooling in get_norm_entry(name).pooling:
        groups = pooling_groups(pooling, layer, 16)
        assert isinstance(groups, int) and groups >= 1 and (16 * 4 * 4) % groups == 0


@pytest.mark.parametrize("name", list_norms())
def test_builtin_activation_is_switchable_and_models_skip_their_relu(name: str) -> None:
    entry = get_norm_entry(name)
    layer = create_norm(name, 8)
    if entry.builtin_activation is None:
        assert not applies_own_activation(layer)
        assert isinstance(activation_after(layer), nn.ReLU)
        return
    assert entry.param("apply_act").type is bool and entry.param("apply_act").default is True
    assert applies_own_activation(layer) and isinstance(activation_after(layer), nn.Identity)
    plain = create_norm(name, 8, activation=False)
    assert not applies_own_activation(plain) and isinstance(activation_after(plain), nn.ReLU)
