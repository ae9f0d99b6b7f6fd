"""FRN + TLU, EvoNorm-B0 and EvoNorm-S0 against plain formulas: outputs, gradients, statistics, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from zoo_reference import evonorm_b0, evonorm_s0, filter_response

from normlayers import create_norm
from normlayers.evonorm import EvoNormB0, EvoNormS0
from normlayers.filter_response import FilterResponseNorm


def _randomize(layer: nn.Module) -> nn.Module:
    """Parameters away from their initial values, so that every one of them shows in the output."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) + 0.5 if p.dim() else p)
    return layer


def _input(shape=(4, 8, 5, 5), dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    scale = torch.linspace(0.5, 3, shape[1], dtype=dtype).view(1, -1, 1, 1)
    return torch.randn(shape, generator=gen, dtype=dtype) * scale + 0.7


def _compare(layer: nn.Module, reference, x: torch.Tensor) -> None:
    """Outputs and the gradients of x and every parameter equal the reference's."""
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out, ref = layer(x1), reference(x2)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    params = [p for p in layer.parameters()]
    got = torch.autograd.grad(out, [x1, *params], grad)
    want = torch.autograd.grad(ref, [x2, *params], grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


# --- FRN --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("affine, apply_act", [(True, True), (False, True), (True, False), (False, False)])
def test_frn_matches_its_formula(affine: bool, apply_act: bool) -> None:
    layer = _randomize(FilterResponseNorm(8, affine=affine, apply_act=apply_act))
    with torch.no_grad():
        if layer.tau is not None:
            layer.tau.copy_(torch.linspace(-1, 1, 8))  # some channels clipped, some not
    _compare(layer, lambda x: filter_response(x, layer.weight, layer.bias, layer.tau), _input())
    assert (layer.tau is not None) == apply_act  # tau belongs to the TLU: it stays with affine=false
    assert (layer.weight is not None) == affine and (layer.bias is not None) == affine


def test_frn_learned_eps_is_the_floor_plus_its_absolute_value() -> None:
    layer = create_norm("frn:learnable_eps=true,eps=1e-6", 8)
    with torch.no_grad():
        layer.learned_eps.fill_(-0.3)
    x = _input((2, 8, 1, 1))  # the 1x1 case the option is for
    torch.testing.assert_close(layer(x), filter_response(x, layer.weight, layer.bias, layer.tau, eps=1e-6 + 0.3))
    _compare(layer, lambda x: filter_response(x, layer.weight, layer.bias, layer.tau, eps=1e-6 + layer.learned_eps.abs()), x)
    assert torch.autograd.grad(layer(x).sum(), layer.learned_eps)[0].abs().item() > 0  # it learns


def test_frn_uses_no_batch_statistics_and_has_the_same_train_and_eval_function() -> None:
    layer = create_norm("frn", 8)
    x = _input()
    out = layer(x)
    torch.testing.assert_close(layer(x[:1]), out[:1])
    torch.testing.assert_close(layer.eval()(x), out)
    assert list(layer.buffers()) == []


def test_frn_gradcheck_float64() -> None:
    layer = _randomize(FilterResponseNorm(3)).double()
    with torch.no_grad():
        layer.tau.copy_(torch.tensor([-5.0, 0.0, 5.0]))  # far from the outputs' ties: max is smooth there
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


# --- EvoNorm-B0 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("affine, apply_act", [(True, True), (False, True), (True, False)])
def test_evonorm_b0_train_mode_matches_its_formula_and_updates_the_running_variance(affine: bool, apply_act: bool) -> None:
    layer = _randomize(EvoNormB0(8, affine=affine, apply_act=apply_act))
    with torch.no_grad():
        if layer.v is not None:
            layer.v.copy_(torch.linspace(-1, 1, 8))  # some positions take the instance branch, some the batch one
    x = _input()
    _compare(layer, lambda x: evonorm_b0(x, x.var(dim=(0, 2, 3), unbiased=False), layer.v, layer.weight, layer.bias), x)
    bn = nn.BatchNorm2d(8)  # BN's conventions: unbiased variance into the average, momentum 0.1
    bn(x)
    torch.testing.assert_close(layer.running_var, bn.running_var)
    assert layer.running_mean is None and int(layer.num_batches_tracked) == 1


def test_evonorm_b0_eval_uses_the_running_variance_per_sample() -> None:
    layer = _randomize(create_norm("evonorm_b0", 8))
    for _ in range(3):
        layer(_input() * 2)
    layer.eval()
    x = _input((3, 8, 4, 4))
    ref = evonorm_b0(x, layer.running_var, layer.v, layer.weight, layer.bias)
    torch.testing.assert_close(layer(x), ref)
    torch.testing.assert_close(layer(x[1:2]), ref[1:2])


def test_evonorm_b0_cumulative_average_and_reset_follow_batchnorm() -> None:
    layer, bn = EvoNormB0(8, momentum=None), nn.BatchNorm2d(8, momentum=None)
    for k in range(3):
        x = _input() * (k + 1)
        layer(x), bn(x)
    torch.testing.assert_close(layer.running_var, bn.running_var)
    layer.reset_running_stats()
    assert torch.equal(layer.running_var, torch.ones(8)) and int(layer.num_batches_tracked) == 0


def test_evonorm_b0_gradcheck_float64() -> None:
    layer = _randomize(EvoNormB0(3)).double()
    layer.momentum = 0.0
    x = torch.randn(3, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    assert torch.autograd.gradcheck(layer.eval(), (x,))


# --- EvoNorm-S0 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("affine, apply_act", [(True, True), (False, True), (True, False), (False, False)])
def test_evonorm_s0_matches_its_formula(affine: bool, apply_act: bool) -> None:
    layer = _randomize(EvoNormS0(8, num_groups=4, affine=affine, apply_act=apply_act))
    if layer.v is not None:
        with torch.no_grad():
            layer.v.copy_(torch.linspace(-2, 2, 8))
    _compare(layer, lambda x: evonorm_s0(x, 4, layer.v, layer.weight, layer.bias), _input())
    assert (layer.v is not None) == apply_act and (layer.weight is not None) == affine


@pytest.mark.parametrize("channels, asked, used", [(16, 32, 16), (48, 32, 24), (64, 32, 32), (7, 32, 7), (8, 3, 2)])
def test_evonorm_s0_groups_follow_group_norms_rule(channels: int, asked: int, used: int) -> None:
    layer = create_norm(f"evonorm_s0:num_groups={asked}", channels)
    assert layer.num_groups == used and layer.requested_groups == asked
    x = torch.randn(2, channels, 3, 3)
    torch.testing.assert_close(layer(x), evonorm_s0(x, used, layer.v, layer.weight, layer.bias))


def test_evonorm_s0_is_per_sample_and_gradchecks() -> None:
    layer = _randomize(EvoNormS0(4, num_groups=2)).double()
    x = torch.randn(3, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(layer(x)[1:2], layer(x[1:2]))
    assert torch.autograd.gradcheck(layer, (x,))


def test_second_order_gradients_flow_through_every_new_layer() -> None:
    """MAML differentiates through the inner-loop gradient."""
    for spec in ("brn", "frn", "evonorm_b0", "evonorm_s0", "sn"):
        layer = create_norm(spec, 4).double()
        x = torch.randn(4, 4, 3, 3, dtype=torch.float64, requires_grad=True)
        params = [p for p in layer.parameters()]
        inner = torch.autograd.grad((layer(x) ** 3).sum(), [x, *params], create_graph=True)
        outer = torch.autograd.grad(sum((g ** 2).sum() for g in inner), x)[0]
        assert torch.isfinite(outer).all() and outer.abs().sum() > 0, spec
