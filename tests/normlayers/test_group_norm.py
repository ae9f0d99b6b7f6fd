"""GN's two forms (num_groups, channels_per_group), its per-layer layout and the IN check (issue 19)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normlayers import (
    NormSpecError,
    collect_group_norms,
    create_norm,
    group_norm_fields,
    group_norm_label,
    instance_only_reason,
    resolve_norm,
)


@pytest.mark.parametrize(("spec", "canonical", "label"), [
    ("gn", "gn:num_groups=32", "GN (G=32)"),
    ("gn:channels_per_group=8", "gn:channels_per_group=8", "GN (C/G=8)"),
    ({"name": "gn", "channels_per_group": 16}, "gn:channels_per_group=16", "GN (C/G=16)"),
    ("gn:num_groups=32,allow_instance=true", "gn:allow_instance=true,num_groups=32", "GN (G=32, allow_instance=true)"),
])
def test_specs_canonical_forms_and_labels(spec, canonical, label) -> None:
    resolved = resolve_norm(spec)
    assert str(resolved.spec) == canonical and resolved.label == label
    assert str(resolve_norm(str(resolved.spec)).spec) == canonical  # the canonical form parses to itself


@pytest.mark.parametrize(("spec", "channels", "message"), [
    ("gn:num_groups=4,channels_per_group=8", 64,
     "num_groups=4 and channels_per_group=8 are both given; GN fixes either the number of groups or the channels per "
     "group, so give one"),
    ("gn:channels_per_group=8", 12, "channels_per_group=8 does not divide a layer's C=12; choose one of 1, 2, 3, 4, 6, 12"),
    ("gn:channels_per_group=0", 8, "channels_per_group=0 is not allowed"),
])
def test_bad_forms_are_refused_in_one_line(spec, channels, message) -> None:
    with pytest.raises(NormSpecError) as info:
        create_norm(spec, channels)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("channels", "k"), [(64, 8), (32, 16), (48, 4), (16, 2)])
def test_channels_per_group_is_num_groups_c_over_k(channels: int, k: int) -> None:
    torch.manual_seed(0)
    by_k = create_norm(f"gn:channels_per_group={k}", channels)
    by_g = create_norm(f"gn:num_groups={channels // k}", channels)
    reference = nn.GroupNorm(channels // k, channels)
    for layer in (by_k, by_g, reference):  # the same non-trivial affine in all three
        layer.weight.data = torch.linspace(0.5, 1.5, channels)
        layer.bias.data = torch.linspace(-0.2, 0.2, channels)
    x = torch.randn(3, channels, 5, 5) * 3 + 1
    assert by_k.num_groups == by_g.num_groups == channels // k
    torch.testing.assert_close(by_k(x), by_g(x), rtol=0, atol=0)
    torch.testing.assert_close(by_k(x), reference(x))


def _resnet_like(spec: str) -> nn.Module:
    return nn.Sequential(*(nn.Sequential(nn.Conv2d(c, c, 1), create_norm(spec, c)) for c in (16, 32, 64)))


def test_layout_fields_and_label_say_what_each_layer_got() -> None:
    net = _resnet_like("gn")
    fields = group_norm_fields(net, "net.")
    assert fields == {"norm_groups_per_layer": {"net.0.1": 16, "net.1.1": 32, "net.2.1": 32},
                      "norm_channels_per_group": {"net.0.1": 1, "net.1.1": 1, "net.2.1": 2}}
    resolved = resolve_norm("gn")
    assert group_norm_label(resolved.label, resolved.kwargs, *fields.values()) == "GN (G<=32: 16/32/32 at C=16/32/64)"
    for spec in ("gn:num_groups=8", "gn:channels_per_group=8"):  # every layer got what was asked: the label stands
        resolved, fields = resolve_norm(spec), group_norm_fields(_resnet_like(spec))
        assert group_norm_label(resolved.label, resolved.kwargs, *fields.values()) == resolved.label
    assert group_norm_fields(_resnet_like("gn:channels_per_group=8"))["norm_groups_per_layer"] == {
        "0.1": 2, "1.1": 4, "2.1": 8}
    assert group_norm_fields(nn.Sequential(nn.BatchNorm2d(4))) == {}


def test_instance_only_is_found_unless_allowed() -> None:
    with collect_group_norms() as built:
        nn.Sequential(create_norm("gn", 16), create_norm("gn", 32))
        with collect_group_norms() as inner:  # nested collectors both see a layer
            create_norm("gn", 8)
    assert [(c, g) for c, g, _ in built] == [(16, 16), (32, 32), (8, 8)] and len(inner) == 1
    reason = instance_only_reason("gn:num_groups=32", built)
    assert reason == ("norm gn:num_groups=32: every GN layer has 1 channel per group (C=8/16/32), so it is IN: use `in`, "
                      "or a GN with at least 2 channels per group (e.g. gn:channels_per_group=8 or a smaller num_groups); "
                      "add allow_instance=true to the spec to run it anyway")
    assert instance_only_reason("gn", [*built, (64, 32, False)]) is None  # one layer with 2 channels per group: GN
    with collect_group_norms() as allowed:
        create_norm("gn:allow_instance=true", 16)
    assert instance_only_reason("gn:allow_instance=true,num_groups=32", allowed) is None
    assert instance_only_reason("bn", []) is None
