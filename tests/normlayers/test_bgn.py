"""Batch Group Normalization against its definition, BatchNorm2d and BN's conventions."""

from __future__ import annotations

from collections.abc import Iterator

import norm_reference as ref
import pytest
import torch
from torch import nn

from normlayers import BatchGroupNorm, NormSpecError, create_norm
from normlayers.bgn_paths import TRAIN_PATHS, forced_train_path

# (input shape, G): G divides C, G = C, C divides G, G and C crossing (C=3, G=4), G = 1, 2-D input.
LAYOUTS = [
    ((4, 8, 5, 5), 2),
    ((4, 8, 5, 5), 8),
    ((4, 8, 5, 5), 40),
    ((3, 3, 2, 2), 4),
    ((2, 6, 3, 3), 1),
    ((1, 6, 3, 3), 3),
    ((5, 6), 3),
    ((2, 4, 3, 2, 2), 6),
]


@pytest.fixture(params=TRAIN_PATHS)
def path(request) -> Iterator[str]:
    """Run a test once per train-mode implementation (they must agree with the definition)."""
    with forced_train_path(request.param):
        yield request.param


def _layer(channels: int, groups: int, **kwargs) -> BatchGroupNorm:
    layer = create_norm({"name": "bgn", "num_groups": groups, **kwargs}, channels).double()
    with torch.no_grad():
        if layer.weight is not None:
            layer.weight.normal_()
            layer.bias.normal_()
    return layer


@pytest.mark.parametrize("shape, groups", LAYOUTS)
def test_train_output_and_gradients_match_definition(shape, groups, path) -> None:
    layer = _layer(shape[1], groups)
    x = (torch.randn(*shape, dtype=torch.double) * 2 + 0.5).requires_grad_(True)
    y = layer(x)
    expected = ref.batch_group_norm(x, groups, layer.weight, layer.bias)
    torch.testing.assert_close(y, expected)
    grad = torch.randn_like(y)
    params = (x, layer.weight, layer.bias)
    for got, want in zip(torch.autograd.grad(y, params, grad), torch.autograd.grad(expected, params, grad)):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("shape, groups", [((4, 8, 5, 5), 2), ((3, 3, 2, 2), 4), ((2, 6, 3, 3), 1)])
def test_running_statistics_follow_bn_conventions(shape, groups, path) -> None:
    layer = _layer(shape[1], groups, momentum=0.3)
    mean_ref, var_ref = torch.zeros(groups, dtype=torch.double), torch.ones(groups, dtype=torch.double)
    count = shape[0] * torch.Size(shape[1:]).numel() // groups
    for step in range(4):
        x = torch.randn(*shape, dtype=torch.double) * (step + 1) + step
        layer(x)
        mean, var = ref.bgn_batch_stats(x, groups)
        mean_ref = 0.7 * mean_ref + 0.3 * mean
        var_ref = 0.7 * var_ref + 0.3 * var * count / (count - 1)  # unbiased, as BN
    torch.testing.assert_close(layer.running_mean, mean_ref)
    torch.testing.assert_close(layer.running_var, var_ref)
    assert layer.stats.num_batches_tracked.item() == 4


def test_momentum_none_is_a_cumulative_average(path) -> None:
    layer = _layer(4, 2, momentum=None)
    batches = [torch.randn(3, 4, 2, 2, dtype=torch.double) + i for i in range(3)]
    for x in batches:
        layer(x)
    means = torch.stack([ref.bgn_batch_stats(x, 2)[0] for x in batches])
    torch.testing.assert_close(layer.running_mean, means.mean(0))


@pytest.mark.parametrize("shape", [(8, 16, 6, 6), (2, 4, 3, 3)])
def test_num_groups_equal_channels_is_batchnorm(shape, path) -> None:
    channels = shape[1]
    bgn = _layer(channels, channels)
    bn = nn.BatchNorm2d(channels).double()
    bn.load_state_dict({**{k: v for k, v in bgn.state_dict().items() if not k.startswith("stats.")},
                        **{k.removeprefix("stats."): v for k, v in bgn.state_dict().items() if k.startswith("stats.")}})
    opt_bgn = torch.optim.SGD(bgn.parameters(), lr=0.1)
    opt_bn = torch.optim.SGD(bn.parameters(), lr=0.1)
    for step in range(5):
        x = (torch.randn(*shape, dtype=torch.double) * 3 + step).requires_grad_(True)
        y_bgn, y_bn = bgn(x), bn(x)
        torch.testing.assert_close(y_bgn, y_bn)
        grad = torch.randn_like(y_bn)
        g_bgn = torch.autograd.grad(y_bgn, (x, bgn.weight, bgn.bias), grad)
        g_bn = torch.autograd.grad(y_bn, (x, bn.weight, bn.bias), grad)
        for a, b in zip(g_bgn, g_bn):
            torch.testing.assert_close(a, b)
        bgn.weight.grad, bgn.bias.grad = g_bgn[1], g_bgn[2]
        bn.weight.grad, bn.bias.grad = g_bn[1], g_bn[2]
        opt_bgn.step()
        opt_bn.step()
    torch.testing.assert_close(bgn.running_mean, bn.running_mean)
    torch.testing.assert_close(bgn.running_var, bn.running_var)
    x = torch.randn(*shape, dtype=torch.double)
    torch.testing.assert_close(bgn.eval()(x), bn.eval()(x))


def test_general_paths_reduce_to_batchnorm_when_groups_equal_channels() -> None:
    """The layer shortcuts G=C to F.batch_norm; the general group code must agree with it."""
    from normlayers.bgn_functional import bgn_train_local
    from normlayers.bgn_two_phase import bgn_train_two_phase
    from normlayers.group_layout import group_layout

    shape = (4, 6, 3, 3)
    bn = nn.BatchNorm2d(6).double()
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
    x = torch.randn(*shape, dtype=torch.double) * 2 + 1
    layout = group_layout(shape, 6)
    torch.testing.assert_close(bgn_train_local(x, layout, bn.weight, bn.bias, bn.eps)[0], bn(x))
    torch.testing.assert_close(bgn_train_two_phase(x, layout, bn.weight, bn.bias, bn.eps, None)[0], bn(x))


def test_single_group_standardizes_the_whole_batch_tensor(path) -> None:
    layer = BatchGroupNorm(5, num_groups=1, eps=0.0).double()
    x = torch.randn(3, 5, 4, 4, dtype=torch.double) * 4 + 7
    y = layer(x)
    assert abs(y.mean().item()) < 1e-12
    assert abs(y.var(unbiased=False).item() - 1) < 1e-12
    # ... as a whole, not per channel: channels whose inputs differ keep different means
    x = torch.randn(3, 5, 4, 4, dtype=torch.double) + torch.arange(5, dtype=torch.double).view(1, 5, 1, 1)
    assert layer(x).mean(dim=(0, 2, 3)).std() > 0.5


def test_eval_uses_running_stats_and_is_per_sample() -> None:
    layer = _layer(8, 4)
    for _ in range(3):
        layer(torch.randn(6, 8, 4, 4, dtype=torch.double) * 2 + 1)
    layer.eval()
    x = torch.randn(5, 8, 4, 4, dtype=torch.double)
    y = layer(x)
    # each sample alone gives the same output: no dependence on the rest of the batch
    torch.testing.assert_close(torch.cat([layer(x[i : i + 1]) for i in range(5)]), y)
    # and it is the affine map defined by the running statistics
    rm = layer.running_mean.repeat_interleave(x[0].numel() // 4).view(1, 8, 4, 4)
    rv = layer.running_var.repeat_interleave(x[0].numel() // 4).view(1, 8, 4, 4)
    expected = (x - rm) / torch.sqrt(rv + layer.eps) * layer.weight.view(1, 8, 1, 1) + layer.bias.view(1, 8, 1, 1)
    torch.testing.assert_close(y, expected)
    before = layer.running_mean.clone()
    layer(x)
    torch.testing.assert_close(layer.running_mean, before)  # eval does not update


def test_without_running_stats_eval_uses_batch_statistics() -> None:
    layer = _layer(4, 2, track_running_stats=False).eval()
    assert layer.running_mean is None
    x = torch.randn(3, 4, 2, 2, dtype=torch.double)
    torch.testing.assert_close(layer(x), ref.batch_group_norm(x, 2, layer.weight, layer.bias))


def test_freezing_the_statistics_child_freezes_the_layer() -> None:
    """Code that calls .eval() on every _BatchNorm (frozen-BN fine-tuning) freezes BGN too."""
    layer = _layer(4, 2)
    layer(torch.randn(3, 4, 2, 2, dtype=torch.double))
    for module in layer.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    before = layer.running_mean.clone()
    layer(torch.randn(3, 4, 2, 2, dtype=torch.double) + 5)
    torch.testing.assert_close(layer.running_mean, before)


@pytest.mark.parametrize("shape, groups", [((4, 8, 5, 5), 2), ((3, 3, 2, 2), 4)])
def test_second_order_gradients_match_definition(shape, groups, path) -> None:
    """MAML's inner loop differentiates through the gradient (create_graph=True)."""
    layer = _layer(shape[1], groups)
    x = torch.randn(*shape, dtype=torch.double, requires_grad=True)

    def outer(fn):
        inner = torch.autograd.grad((fn(x) ** 3).sum(), (x, layer.weight), create_graph=True)
        return torch.autograd.grad(sum(g.square().sum() for g in inner), (x, layer.weight, layer.bias))

    got = outer(layer)
    want = outer(lambda t: ref.batch_group_norm(t, groups, layer.weight, layer.bias))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_half_precision_input_keeps_its_dtype() -> None:
    layer = BatchGroupNorm(8, num_groups=2)
    x = torch.randn(4, 8, 4, 4)
    y = layer(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), ref.batch_group_norm(x.to(torch.bfloat16).float(), 2), atol=0.05, rtol=0.05)


def test_group_count_that_does_not_divide_the_features_names_shape_and_choices() -> None:
    layer = create_norm("bgn:num_groups=7", 16)
    with pytest.raises(NormSpecError) as info:
        layer(torch.randn(2, 16, 4, 4))
    message = str(info.value)
    assert "num_groups=7" in message and "(2, 16, 4, 4)" in message and "16*4*4 = 256" in message
    assert "1, 2, 4, 8, 16, 32, 64, 128, 256" in message


def test_one_value_per_group_is_refused() -> None:
    layer = create_norm("bgn:num_groups=16", 4)
    with pytest.raises(ValueError, match="each group has 1 value"):
        layer(torch.randn(1, 4, 2, 2))


def test_wrong_channel_count_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expects input \(N, 8, \.\.\.\), got \(2, 4, 3, 3\)"):
        create_norm("bgn", 8)(torch.randn(2, 4, 3, 3))


def test_constant_groups_are_finite(path) -> None:
    layer = BatchGroupNorm(4, num_groups=2)
    x = torch.zeros(3, 4, 2, 2)
    x[:, 2:] = torch.randn(3, 2, 2, 2)
    y = layer(x)
    assert torch.isfinite(y).all() and torch.isfinite(layer.running_var).all()
    assert layer.running_var[0].item() == pytest.approx(0.9)  # variance 0 of the constant group


def test_output_can_be_modified_in_place(path) -> None:
    """ResNets apply ReLU(inplace=True) right after the norm."""
    layer = _layer(4, 2)
    x = torch.randn(3, 4, 5, 5, dtype=torch.double, requires_grad=True)
    y = torch.relu_(layer(x))
    y.sum().backward()
    expected = torch.relu(ref.batch_group_norm(x, 2, layer.weight, layer.bias))
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(x.grad, torch.autograd.grad(expected.sum(), x)[0])
