"""IN, LN, GN and PN against their definitions, and the properties every registry layer shares."""

from __future__ import annotations

import io

import norm_reference as ref
import pytest
import torch
from torch import nn

from normlayers import create_norm, list_norms
from normlayers.layers import largest_divisor_at_most


def _randomize_affine(layer: nn.Module) -> None:
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()


def _x(*shape: int) -> torch.Tensor:
    return (torch.randn(*shape, dtype=torch.double) * 3 + 1).requires_grad_(True)


def _check_against(layer: nn.Module, x: torch.Tensor, expected_fn) -> None:
    """Output and all gradients of ``layer(x)`` equal those of ``expected_fn(x, w, b)``."""
    y = layer(x)
    expected = expected_fn(x, layer.weight, layer.bias)
    torch.testing.assert_close(y, expected)
    grad = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, layer.weight, layer.bias), grad)
    want = torch.autograd.grad(expected, (x, layer.weight, layer.bias), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_instance_norm_matches_definition_and_torch() -> None:
    layer = create_norm("in", 6).double()
    _randomize_affine(layer)
    x = _x(4, 6, 5, 7)
    _check_against(layer, x, ref.instance_norm)
    torch_in = nn.InstanceNorm2d(6, affine=True).double()
    torch_in.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), torch_in(x))
    # IN is GN with one group per channel
    torch.testing.assert_close(layer(x), ref.group_norm(x, 6, layer.weight, layer.bias))


def test_layer_norm_matches_definition_and_single_group_gn() -> None:
    layer = create_norm("ln", 6).double()
    _randomize_affine(layer)
    x = _x(3, 6, 4, 4)
    _check_against(layer, x, ref.layer_norm)
    gn1 = nn.GroupNorm(1, 6).double()
    gn1.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), gn1(x))


@pytest.mark.parametrize("channels, expected_groups", [(64, 32), (16, 16), (48, 24), (8, 8), (96, 32), (3, 3)])
def test_group_norm_rule_for_channel_counts(channels: int, expected_groups: int) -> None:
    layer = create_norm("gn", channels)
    assert layer.num_groups == expected_groups and layer.requested_groups == 32
    assert largest_divisor_at_most(channels, 32) == expected_groups


def test_group_norm_matches_definition() -> None:
    layer = create_norm("gn:num_groups=4", 12).double()
    _randomize_affine(layer)
    x = _x(2, 12, 5, 5)
    _check_against(layer, x, lambda x, w, b: ref.group_norm(x, 4, w, b))


def test_positional_norm_matches_definition() -> None:
    layer = create_norm("pn", 6).double()
    _randomize_affine(layer)
    x = _x(3, 6, 4, 5)
    _check_against(layer, x, ref.positional_norm)


def test_positional_norm_keeps_memory_format() -> None:
    layer = create_norm("pn", 6)
    x = torch.randn(2, 6, 4, 4)
    assert layer(x).is_contiguous()
    y = layer(x.contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, layer(x))


@pytest.mark.parametrize("name", ["in", "ln", "gn", "pn"])
def test_batch_independent_norms_are_the_same_in_train_and_eval(name: str) -> None:
    layer = create_norm(name, 8)
    x = torch.randn(4, 8, 6, 6)
    train_out = layer.train()(x)
    eval_out = layer.eval()(x)
    torch.testing.assert_close(train_out, eval_out)
    # and a sample's output does not depend on the rest of the batch
    torch.testing.assert_close(layer(x[:1]), eval_out[:1])


@pytest.mark.parametrize("spec", ["bn", "in", "ln", "gn", "pn", "bgn", "bgn:num_groups=4", "brn", "frn:learnable_eps=true",
                                  "evonorm_b0", "evonorm_s0:num_groups=4", "sn"])
def test_state_dict_round_trip(spec: str) -> None:
    layer = create_norm(spec, 8)
    _randomize_affine(layer)
    layer.train()
    for _ in range(3):
        layer(torch.randn(4, 8, 4, 4) * 2 + 1)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    fresh = create_norm(spec, 8)
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(3, 8, 4, 4)
    torch.testing.assert_close(fresh.eval()(x), layer.eval()(x))
    if spec == "brn":
        assert int(fresh.ramp_step) == 3  # the ramp resumes where it was


def test_every_registered_norm_preserves_shape_and_is_finite() -> None:
    x = torch.randn(4, 16, 8, 8)
    for name in list_norms():
        y = create_norm(name, 16)(x)
        assert y.shape == x.shape and torch.isfinite(y).all(), name
