"""DARTS' bilevel optimization: the alpha gradients against autograd, the optimizers' split, the running statistics."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tasks.nas.bilevel import first_order_gradient, stateless_loss, unrolled_gradient, virtual_sgd_step
from tasks.nas.search_module import SearchModule
from tasks.nas.supernet import SuperNet

pytestmark = pytest.mark.usefixtures("one_thread")


def _module(**overrides) -> SearchModule:
    hp = dict(norm="bn", in_channels=1, num_classes=10, layers=3, channels=4, order="first", fd_epsilon=0.01,
              weight_lr=0.025, weight_lr_min=0.001, momentum=0.9, weight_decay=3e-4, grad_clip=5.0, arch_lr=3e-4,
              arch_betas=(0.5, 0.999), arch_weight_decay=1e-3)
    return SearchModule(**{**hp, **overrides})


def _batches(dtype=torch.float32, size=16, classes=10, n=4):
    g = torch.Generator().manual_seed(1)
    make = lambda: (torch.randn(n, 1, size, size, generator=g, dtype=dtype), torch.randint(0, classes, (n,), generator=g))  # noqa: E731
    return make(), make()


def _smooth(net: nn.Module) -> nn.Module:
    """ReLU -> softplus, max -> average pooling: the same network made twice differentiable everywhere.

    The exact hypergradient is a local derivative; on a piecewise-linear network a finite difference over
    DARTS' step crosses ReLU and max-pool kinks, so the two only meet where the function is smooth.
    """
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.Softplus())
            elif isinstance(child, nn.MaxPool2d):
                setattr(module, name, nn.AvgPool2d(3, child.stride, 1, count_include_pad=False))
    return net


def test_alpha_is_excluded_from_the_weight_optimizer_and_its_weight_decay() -> None:
    module = _module(weight_decay=0.5, weight_lr=0.1)
    weights, alphas = module.build_optimizers()
    arch_ids = {id(a) for a in module.net.arch_parameters()}
    sgd_ids = {id(p) for group in weights.param_groups for p in group["params"]}
    assert not arch_ids & sgd_ids and len(sgd_ids) == len(module.net.weight_parameters())
    assert {id(p) for group in alphas.param_groups for p in group["params"]} == arch_ids
    assert isinstance(alphas, torch.optim.Adam) and alphas.defaults["betas"] == (0.5, 0.999)
    assert alphas.defaults["weight_decay"] == 1e-3 and weights.defaults["weight_decay"] == 0.5
    # a weight step with strong weight decay moves the weights and leaves alpha exactly as it was
    net = module.net.train()
    with torch.no_grad():
        net.alphas_normal.normal_()
    before = [a.detach().clone() for a in net.arch_parameters()]
    stem_before = net.stem[0].weight.detach().clone()
    (train, _) = _batches()
    F.cross_entropy(net(train[0]), train[1]).backward()
    assert net.alphas_normal.grad is not None  # the weight loss reaches alpha, but SGD does not hold it
    weights.step()
    assert all(torch.equal(a, b) for a, b in zip(net.arch_parameters(), before))
    assert not torch.equal(net.stem[0].weight, stem_before)


def test_first_order_gradient_is_autograd_of_the_validation_loss_and_keeps_running_statistics() -> None:
    net = SuperNet(4, 10, 3, "bgn:num_groups=2", 1).train()
    _, val = _batches()
    reference = copy.deepcopy(net)
    F.cross_entropy(reference(val[0]), val[1]).backward()
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    result = first_order_gradient(net, net.arch_parameters(), val)
    for got, want in zip(result.grads, reference.arch_parameters()):
        torch.testing.assert_close(got, want.grad, rtol=1e-5, atol=1e-8)
    assert all(torch.equal(buffers[n], b) for n, b in net.named_buffers())  # the extra forward changed no statistic
    assert any(not torch.equal(buffers[n], b) for n, b in reference.named_buffers())  # a plain forward would have
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("nesterov, dampening, first_step", [(False, 0.0, False), (False, 0.0, True),
                                                            (True, 0.0, False), (False, 0.3, False)])
def test_virtual_step_is_the_step_sgd_would_take(nesterov: bool, dampening: float, first_step: bool) -> None:
    net = SuperNet(4, 10, 3, "bn", 1)
    named = net.named_weight_parameters()
    opt = torch.optim.SGD([p for _, p in named], lr=0.07, momentum=0.9, weight_decay=3e-3, nesterov=nesterov,
                          dampening=dampening)
    train, val = _batches()
    if not first_step:  # a momentum buffer exists
        F.cross_entropy(net(train[0]), train[1]).backward()
        opt.step()
        opt.zero_grad()
    grads = torch.autograd.grad(F.cross_entropy(net(val[0]), val[1]), [p for _, p in named])
    virtual = virtual_sgd_step(named, list(grads), opt)
    for (_, p), g in zip(named, grads):
        p.grad = g
    opt.step()
    for name, p in named:
        torch.testing.assert_close(virtual[name], p.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("norm", ["bn", "bgn:num_groups=2"])
def test_second_order_hypergradient_matches_the_exact_double_backward(norm: str) -> None:
    torch.manual_seed(0)
    net = _smooth(SuperNet(2, 3, 3, norm, 1, steps=2, multiplier=2)).double().train()
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.normal_(0, 0.5)
    named = net.named_weight_parameters()
    opt = torch.optim.SGD([p for _, p in named], lr=0.05, momentum=0.9, weight_decay=3e-4)
    train, val = _batches(torch.float64, size=8, classes=3, n=3)
    stateless_loss(net, train).backward()  # one real step: the virtual step then includes a momentum buffer
    opt.step()
    opt.zero_grad()
    alphas = net.arch_parameters()
    for alpha in alphas:
        alpha.grad = None
    # exact: w' = w - xi (m buf + dL_train/dw + wd w) as a function of alpha, differentiated through
    weights = [p for _, p in named]
    grads = torch.autograd.grad(stateless_loss(net, train), weights, create_graph=True)
    unrolled = {name: w - 0.05 * (0.9 * opt.state[w]["momentum_buffer"] + g + 3e-4 * w)
                for (name, w), g in zip(named, grads)}
    exact = torch.autograd.grad(stateless_loss(net, val, unrolled), alphas)
    buffers = {n: b.clone() for n, b in net.named_buffers()}

    def relative_error(eps: float) -> float:
        got = unrolled_gradient(net, named, alphas, opt, train, val, eps).grads
        return max(float((g - e).norm() / e.norm()) for g, e in zip(got, exact))

    assert relative_error(0.01) < 2e-2  # DARTS' step: r = 0.01 / ||v||
    assert relative_error(1e-4) < 1e-5  # central differences converge as O(r^2)
    assert all(torch.equal(buffers[n], b) for n, b in net.named_buffers())  # no running statistic moved
    # the implicit term matters: the first-order gradient at w is a different vector
    first = first_order_gradient(net, alphas, val).grads
    assert max(float((f - e).norm() / e.norm()) for f, e in zip(first, exact)) > 1e-2


def test_unrolled_gradient_with_xi_zero_is_the_first_order_gradient() -> None:
    net = SuperNet(4, 10, 3, "bn", 1).train()
    named = net.named_weight_parameters()
    opt = torch.optim.SGD([p for _, p in named], lr=0.0, momentum=0.9, weight_decay=3e-4)
    train, val = _batches()
    unrolled = unrolled_gradient(net, named, net.arch_parameters(), opt, train, val)
    first = first_order_gradient(net, net.arch_parameters(), val)
    for u, f in zip(unrolled.grads, first.grads):
        torch.testing.assert_close(u, f, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(unrolled.val_loss, first.val_loss)
