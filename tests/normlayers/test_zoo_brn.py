"""Batch renormalization: BN at r_max=1, d_max=0; stop-gradient r, d; the ramp and its counter; eval."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from zoo_reference import batch_renorm

from normlayers import create_norm
from normlayers.batch_renorm import BatchRenorm


def _trained(layer: nn.Module, steps: int = 3, seed: int = 1) -> nn.Module:
    """``layer`` after a few train-mode forwards, so its running statistics are not the initial ones."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(steps):
            layer(torch.randn(6, 4, 5, 5, generator=gen) * 3 + 2)
    return layer


def test_without_renormalization_it_is_batchnorm2d_outputs_gradients_and_running_statistics() -> None:
    brn = create_norm("brn:r_max=1,d_max=0,momentum=0.1", 4).train()
    bn = nn.BatchNorm2d(4, momentum=0.1).train()
    with torch.no_grad():
        for layer in (brn, bn):
            layer.weight.copy_(torch.linspace(0.5, 2, 4))
            layer.bias.copy_(torch.linspace(-1, 1, 4))
    for step in range(4):
        x = (torch.randn(8, 4, 6, 6) * 2 + step).requires_grad_(True)
        x2 = x.detach().clone().requires_grad_(True)
        grad = torch.randn(8, 4, 6, 6)
        out, ref = brn(x), bn(x2)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        out.backward(grad)
        ref.backward(grad)
        torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(brn.weight.grad, bn.weight.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(brn.bias.grad, bn.bias.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(brn.running_mean, bn.running_mean)
        torch.testing.assert_close(brn.running_var, bn.running_var)
    assert int(brn.num_batches_tracked) == int(bn.num_batches_tracked) == 4
    x = torch.randn(3, 4, 6, 6)
    torch.testing.assert_close(brn.eval()(x), bn.eval()(x), rtol=1e-5, atol=1e-5)


def test_outputs_and_gradients_match_the_formula_with_r_and_d_as_constants() -> None:
    layer = _trained(BatchRenorm(4, r_max=1.5, d_max=0.5, ramp_steps=0, momentum=0.2).double().train())
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, 1.0, 1.5, 2.0]))
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
    x = (torch.randn(5, 4, 3, 3, dtype=torch.float64) * torch.tensor([0.2, 1.0, 4.0, 1.0]).view(1, 4, 1, 1)
         + torch.tensor([0.0, 3.0, -2.0, 0.5]).view(1, 4, 1, 1)).requires_grad_(True)
    mean, var = layer.running_mean.clone(), layer.running_var.clone()
    r = torch.sqrt(x.detach().var(dim=(0, 2, 3), unbiased=False) + 1e-5) / torch.sqrt(var + 1e-5)
    d = (x.detach().mean(dim=(0, 2, 3)) - mean) / torch.sqrt(var + 1e-5)
    assert (r > 1.5).any() or (r < 1 / 1.5).any()  # the clipping is exercised,
    assert (d.abs() > 0.5).any() and (d.abs() < 0.5).any()  # in some channels and not others
    x_ref = x.detach().clone().requires_grad_(True)
    w_ref, b_ref = layer.weight.detach().clone().requires_grad_(True), layer.bias.detach().clone().requires_grad_(True)
    out = layer(x)
    ref = batch_renorm(x_ref, mean, var, 1.5, 0.5, w_ref, b_ref)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.weight.grad, w_ref.grad)
    torch.testing.assert_close(layer.bias.grad, b_ref.grad)


def test_gradcheck_in_float64() -> None:
    # Finite differences move r and d with x, which the layer treats as constants, so gradcheck applies where
    # r = 1 and d = 0 exactly (limits 1 and 0); the renormalizing case is checked against the formula above.
    layer = BatchRenorm(3, r_max=1.0, d_max=0.0).double().train()
    layer.momentum = 0.0  # running statistics frozen while gradcheck calls the layer repeatedly
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
    assert torch.autograd.gradcheck(layer, (torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True),))


def test_r_and_d_carry_no_gradient() -> None:
    """With d clipped everywhere and r not, the gradient equals the formula's with r, d detached, not BN's."""
    layer = _trained(BatchRenorm(4, r_max=3.0, d_max=0.1, ramp_steps=0, momentum=0.3)).train()
    x = (torch.randn(6, 4, 4, 4) + 5).requires_grad_(True)
    var = layer.running_var.clone()
    layer(x).pow(2).sum().backward()
    x_attached = x.detach().clone().requires_grad_(True)
    mu_b = x_attached.mean(dim=(0, 2, 3))
    sigma_b = torch.sqrt(x_attached.var(dim=(0, 2, 3), unbiased=False) + 1e-5)
    r = (sigma_b / torch.sqrt(var + 1e-5)).clamp(1 / 3, 3)  # not detached
    y = (x_attached - mu_b.view(1, -1, 1, 1)) / sigma_b.view(1, -1, 1, 1) * r.view(1, -1, 1, 1)
    y.pow(2).sum().backward()  # the formula with r attached (differentiable) gives a different gradient
    assert not torch.allclose(x.grad, x_attached.grad, atol=1e-3)


@pytest.mark.parametrize("step, r_expected, d_expected", [(0, 1.0, 0.0), (50, 2.0, 2.5), (100, 3.0, 5.0), (250, 3.0, 5.0)])
def test_the_ramp_at_start_half_end_and_beyond(step: int, r_expected: float, d_expected: float) -> None:
    layer = BatchRenorm(4, r_max=3.0, d_max=5.0, ramp_steps=100)
    layer.set_ramp_step(step)
    r_max, d_max = layer.ramp_limits()
    assert float(r_max) == pytest.approx(r_expected) and float(d_max) == pytest.approx(d_expected)


def test_no_ramp_means_the_final_limits_from_the_start() -> None:
    r_max, d_max = BatchRenorm(4, ramp_steps=0).ramp_limits()
    assert float(r_max) == 3.0 and float(d_max) == 5.0


def test_the_ramp_limits_are_the_ones_used_in_the_forward() -> None:
    """At step 0 the layer is BN in train mode whatever the running statistics; at the end it renormalizes."""
    layer = _trained(BatchRenorm(4, ramp_steps=10, momentum=0.5))
    layer.ramp_driver = "external"
    x = torch.randn(6, 4, 5, 5) * 0.5 - 3
    for step, r_max, d_max in [(0, 1.0, 0.0), (10, 3.0, 5.0)]:
        layer.set_ramp_step(step)
        mean, var = layer.running_mean.clone(), layer.running_var.clone()
        ref = batch_renorm(x, mean, var, r_max, d_max, layer.weight, layer.bias)
        torch.testing.assert_close(layer(x), ref)


def test_eval_uses_the_running_statistics() -> None:
    layer = _trained(create_norm("brn", 4))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 0.5, 1.0]))
    x = torch.randn(3, 4, 5, 5)
    expected = (x - layer.running_mean.view(1, -1, 1, 1)) / torch.sqrt(layer.running_var.view(1, -1, 1, 1) + 1e-5)
    expected = expected * layer.weight.view(1, -1, 1, 1) + layer.bias.view(1, -1, 1, 1)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    torch.testing.assert_close(layer.eval()(x), expected)
    torch.testing.assert_close(layer(x[:1]), expected[:1])  # per sample
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())  # eval updates nothing


def test_the_counter_advances_per_train_forward_by_default_and_never_when_external() -> None:
    layer = create_norm("brn", 4)
    assert layer.ramp_driver == "forward" and int(layer.ramp_step) == 0
    _trained(layer, steps=3)
    assert int(layer.ramp_step) == 3
    layer.eval()(torch.randn(2, 4, 3, 3))
    assert int(layer.ramp_step) == 3  # eval forwards are not training steps
    layer.train().ramp_driver = "external"
    _trained(layer, steps=5)
    assert int(layer.ramp_step) == 3 and int(layer.num_batches_tracked) == 8
    layer.set_ramp_step(40)
    assert int(layer.ramp_step) == 40
    assert "ramp_step" in layer.state_dict()  # checkpoints keep it
    with pytest.raises(ValueError, match="choose forward or external"):
        layer.ramp_driver = "optimizer"  # type: ignore[assignment]


def test_a_re_estimation_pass_uses_batch_statistics_only() -> None:
    """momentum=None (AdaBN's cumulative average over reset statistics): r = 1, d = 0, i.e. BN's train mode."""
    layer = _trained(BatchRenorm(4, ramp_steps=0))
    layer.reset_running_stats()
    layer.momentum = None
    bn = nn.BatchNorm2d(4, momentum=None)
    x = torch.randn(6, 4, 5, 5) * 3 + 4
    torch.testing.assert_close(layer(x), bn(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.running_mean, bn.running_mean)
    torch.testing.assert_close(layer.running_var, bn.running_var)
    assert int(layer.ramp_step) == 3  # the pass is not a training step: the ramp stays where training left it


def test_affine_false_has_no_parameters() -> None:
    layer = create_norm("brn:affine=false", 4)
    assert list(layer.parameters()) == [] and layer.weight is None and layer.bias is None
    x = torch.randn(6, 4, 3, 3)
    ref = batch_renorm(x, torch.zeros(4), torch.ones(4), 1.0, 0.0)  # step 0: r = 1, d = 0
    torch.testing.assert_close(layer(x), ref)
