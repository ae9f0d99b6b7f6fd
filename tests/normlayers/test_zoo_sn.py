"""Switchable normalization: the mixture formula, one-hot weights give IN, LN and BN, running statistics, members."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from zoo_reference import switchable

from normlayers import create_norm
from normlayers.layers import InstanceNorm, LayerNorm2d
from normlayers.switchable import SwitchableNorm


def _input(shape=(4, 6, 5, 5), dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(11)
    return torch.randn(shape, generator=gen, dtype=dtype) * torch.linspace(0.5, 3, shape[1], dtype=dtype).view(1, -1, 1, 1) + 2


def _one_hot(members: tuple[str, ...], member: str) -> torch.Tensor:
    return torch.tensor([1.0 if m == member else 0.0 for m in members])


def _set_affine(*layers: nn.Module) -> None:
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(torch.linspace(0.5, 2, 6))
            layer.bias.copy_(torch.linspace(-1, 1, 6))


def test_train_mode_matches_the_weighted_formula_outputs_and_gradients() -> None:
    layer = SwitchableNorm(6)
    _set_affine(layer)
    with torch.no_grad():
        layer.mean_weight.copy_(torch.tensor([0.3, -0.5, 1.0]))
        layer.var_weight.copy_(torch.tensor([1.2, 0.1, -0.4]))
    x1 = _input().requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    out = layer(x1)
    ref = switchable(x2, ("in", "ln", "bn"), torch.softmax(layer.mean_weight, 0), torch.softmax(layer.var_weight, 0),
                     layer.weight, layer.bias)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    params = [layer.weight, layer.bias, layer.mean_weight, layer.var_weight]
    for got, want in zip(torch.autograd.grad(out, [x1, *params], grad), torch.autograd.grad(ref, [x2, *params], grad)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_gradcheck_float64() -> None:
    layer = SwitchableNorm(3).double()
    layer.momentum = 0.0
    with torch.no_grad():
        layer.mean_weight.copy_(torch.tensor([0.3, -0.5, 1.0], dtype=torch.float64))
    x = torch.randn(3, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    assert torch.autograd.gradcheck(layer.eval(), (x,))


@pytest.mark.parametrize("member", ["in", "ln"])
def test_one_hot_weights_give_instance_and_layer_norm(member: str) -> None:
    layer = SwitchableNorm(6)
    layer.weight_override = (_one_hot(layer.members, member), _one_hot(layer.members, member))
    plain = InstanceNorm(6) if member == "in" else LayerNorm2d(6)
    _set_affine(layer, plain)
    x = _input()
    torch.testing.assert_close(layer(x), plain(x), rtol=1e-5, atol=1e-5)


def test_one_hot_bn_weights_give_batchnorm_outputs_running_statistics_and_eval() -> None:
    layer, bn = SwitchableNorm(6), nn.BatchNorm2d(6)
    layer.weight_override = (_one_hot(layer.members, "bn"), _one_hot(layer.members, "bn"))
    _set_affine(layer, bn)
    for k in range(3):
        x = _input() * (k + 1) - k
        torch.testing.assert_close(layer(x), bn(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(layer.running_mean, bn.running_mean)
        torch.testing.assert_close(layer.running_var, bn.running_var)
    x = _input((2, 6, 5, 5))
    torch.testing.assert_close(layer.eval()(x), bn.eval()(x), rtol=1e-5, atol=1e-5)


def test_eval_replaces_only_the_bn_statistics_by_the_running_ones() -> None:
    layer = create_norm("sn", 6)
    for _ in range(3):
        layer(_input() * 3)
    layer.eval()
    w_mean, w_var = (torch.softmax(w, 0).detach() for w in (layer.mean_weight, layer.var_weight))
    x = _input((3, 6, 5, 5))
    mean_in, var_in = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)
    mean_ln, var_ln = x.mean(dim=(1, 2, 3), keepdim=True), x.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    mean_bn, var_bn = layer.running_mean.view(1, -1, 1, 1), layer.running_var.view(1, -1, 1, 1)
    mean = w_mean[0] * mean_in + w_mean[1] * mean_ln + w_mean[2] * mean_bn
    var = w_var[0] * var_in + w_var[1] * var_ln + w_var[2] * var_bn
    expected = (x - mean) / torch.sqrt(var + 1e-5) * layer.weight.view(1, -1, 1, 1) + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x), expected.detach())
    torch.testing.assert_close(layer(x[:1]), expected[:1].detach())  # per sample in eval


@pytest.mark.parametrize("members", ["in+bn", "ln", "in+ln", "bn"])
def test_member_subsets(members: str) -> None:
    layer = create_norm(f"sn:members={members}", 6)
    parts = tuple(members.split("+"))
    assert layer.members == parts and layer.mean_weight.shape == (len(parts),)
    x = _input()
    ref = switchable(x, parts, torch.softmax(layer.mean_weight, 0), torch.softmax(layer.var_weight, 0), layer.weight, layer.bias)
    torch.testing.assert_close(layer(x), ref)
    if "bn" in parts:
        assert layer.running_mean is not None and layer.track_running_stats
    else:  # nothing to keep: no buffers, and code that adapts running statistics finds none
        assert layer.running_mean is None and layer.running_var is None and not layer.track_running_stats
        assert list(layer.buffers()) == []


def test_affine_false() -> None:
    layer = create_norm("sn:affine=false", 6)
    assert layer.weight is None and layer.bias is None
    assert {n for n, _ in layer.named_parameters()} == {"mean_weight", "var_weight"}
    x = _input()
    ref = switchable(x, layer.members, torch.softmax(layer.mean_weight, 0), torch.softmax(layer.var_weight, 0))
    torch.testing.assert_close(layer(x), ref)
