"""bgn:num_groups=auto: the snapping rule, when and for which batch G is chosen, state, refusals, sync."""

from __future__ import annotations

import io
import math
import random

import pytest
import torch
from torch import nn

from normlayers import (
    AutoBatchGroupNorm,
    BatchGroupNorm,
    NormSpecError,
    SyncGroupStatistics,
    choose_groups,
    convert_sync_norms,
    create_norm,
    norm_label,
    normalization_batch,
    resolve_norm,
    revert_sync_norms,
    set_normalization_batch,
)
from normlayers.bgn_auto import DEFAULT_ELEMENTS, divisors


# --- the snapping rule -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("batch", "features", "elements", "expected"),
    [
        (16, 12544, 4096, 49),  # target 49 exactly, and 49 divides 12544 = 2^8 * 7^2
        (8, 12544, 4096, 28),  # target 24.5: divisors 16 and 28; 28/24.5 = 1.14 < 24.5/16 = 1.53
        (2, 3136, 4096, 2),  # target 1.53: divisors 1 and 2; 2/1.53 = 1.31 < 1.53/1 = 1.53
        (2, 3136, 8192, 1),  # target 0.77 < 1: clamped to G = 1
        (128, 3136, 1, 3136),  # target 401,408 > C*H*W: clamped to G = C*H*W (one value per sample and group)
        (128, 6272, 4096, 196),  # target exactly 196 = 4 * 49
        (3, 10, 2, 10),  # target 15 > 10: clamped
        (5, 49, 20, 7),  # target 12.25: divisors 7 and 49; 12.25/7 = 1.75 < 49/12.25 = 4
    ],
)
def test_snapping_on_hand_checked_shapes(batch, features, elements, expected) -> None:
    assert choose_groups(batch, features, elements) == expected


def test_snapping_is_the_nearest_divisor_in_log_space() -> None:
    rng = random.Random(0)
    for _ in range(300):
        batch, features, elements = rng.randint(1, 256), rng.choice([12, 49, 3136, 6272, 12544, 1000, 97]), rng.randint(1, 10**5)
        g = choose_groups(batch, features, elements)
        target = min(max(batch * features / elements, 1.0), float(features))
        assert features % g == 0
        best = min(abs(math.log(d / target)) for d in divisors(features))
        assert abs(math.log(g / target)) == pytest.approx(best, abs=1e-12)


def test_ties_cannot_happen() -> None:
    """A tie needs lo*hi == target^2 for neighbouring divisors lo < hi; then target = sqrt(lo*hi) is itself a
    divisor between them (see docs/auto-groups.md), so no two neighbouring divisors have a square product."""
    for features in range(1, 3000):
        divs = divisors(features)
        for lo, hi in zip(divs, divs[1:]):
            assert math.isqrt(lo * hi) ** 2 != lo * hi


def test_choose_groups_refuses_nonpositive_arguments() -> None:
    with pytest.raises(ValueError, match="elements must be an integer >= 1"):
        choose_groups(2, 10, 0)


# --- specs, labels and refusals -------------------------------------------------------------------------------
def test_spec_forms_name_one_layer() -> None:
    canonical = f"bgn:elements={DEFAULT_ELEMENTS},num_groups=auto"
    for spec in ("bgn:num_groups=auto", "bgn:num_groups=AUTO", {"name": "bgn", "num_groups": "auto"},
                 f"bgn:elements={DEFAULT_ELEMENTS}", canonical):
        assert str(resolve_norm(spec).spec) == canonical
    assert norm_label("bgn:num_groups=auto") == f"BGN (G=auto, M={DEFAULT_ELEMENTS})"
    assert norm_label("bgn:elements=512") == "BGN (G=auto, M=512)"
    assert norm_label("bgn:num_groups=4") == "BGN (G=4)" and str(resolve_norm("bgn").spec) == "bgn:num_groups=1"
    assert isinstance(create_norm("bgn:elements=512", 8), AutoBatchGroupNorm)
    assert type(create_norm("bgn:num_groups=2", 8)) is BatchGroupNorm


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bgn:elements=0", "elements=0 is not allowed; elements must be an integer >= 1"),
        ("bgn:elements=-3", "elements=-3 is not allowed"),
        ("bgn:elements=2.5", "elements=2.5 is not allowed"),
        ("bgn:num_groups=many", "num_groups=many is not allowed; num_groups must be an integer >= 1 that divides "
                                "C\\*H\\*W of every layer, or auto"),
        ("bgn:num_groups=4,elements=4096", "num_groups=4 and elements=4096 are both given"),
        ("bgn:num_groups=1,elements=16", "give a fixed num_groups or elements, not both"),
    ],
)
def test_bad_arguments_are_refused_with_one_line(spec, message) -> None:
    with pytest.raises(NormSpecError, match=message) as info:
        resolve_norm(spec)
    assert "\n" not in str(info.value)


# --- when and for which batch G is chosen -------------------------------------------------------------------------
def _net(spec: str = "bgn:num_groups=auto") -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), create_norm(spec, 8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), create_norm(spec, 16))


def test_first_training_forward_chooses_from_its_batch() -> None:
    layer = create_norm("bgn:elements=64", 4)
    assert layer.num_groups is None and layer.running_mean.shape == (0,)
    layer.train()(torch.randn(8, 4, 4, 4))  # 8 * 64 / 64 = 8 groups
    assert layer.num_groups == 8 and layer.running_mean.shape == (8,) and layer.stats.num_features == 8
    layer(torch.randn(2, 4, 4, 4))  # later batches keep the chosen G
    assert layer.num_groups == 8


def test_eval_before_any_choice_is_refused_clearly() -> None:
    layer = create_norm("bgn:num_groups=auto", 4).eval()
    with pytest.raises(RuntimeError, match="has not chosen its G yet.*training-mode forward.*set_normalization_batch"):
        layer(torch.randn(2, 4, 4, 4))


def test_a_batch_hint_chooses_for_that_batch_in_any_mode() -> None:
    net = _net("bgn:elements=256")
    assert set_normalization_batch(net, 32) == 2
    net.eval()(torch.zeros(2, 1, 8, 8))  # batch 2, eval mode: G for batch 32 all the same
    assert net[1].num_groups == choose_groups(32, 8 * 64, 256) == 64
    assert net[4].num_groups == choose_groups(32, 16 * 16, 256) == 32
    layer = create_norm("bgn:elements=256", 8)
    with normalization_batch(16):
        layer.eval()(torch.zeros(2, 8, 8, 8))
    assert layer.num_groups == choose_groups(16, 512, 256)


def test_auto_layer_computes_what_the_fixed_group_layer_computes() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 8, 5, 5)
    auto = create_norm("bgn:elements=75", 8)  # 6*200/75 = 16 -> G = 20 (nearest divisor of 200 in log space)
    assert choose_groups(6, 200, 75) == 20
    nn.init.normal_(auto.weight), nn.init.normal_(auto.bias)
    auto.train()(x)
    fixed = create_norm(f"bgn:num_groups={auto.num_groups}", 8)
    fixed.load_state_dict({k: v for k, v in auto.state_dict().items() if k != "_extra_state"})
    for _ in range(3):
        xa, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yf = auto(xa), fixed(xf)
        torch.testing.assert_close(ya, yf, rtol=0, atol=0)
        (ya * ya.detach()).sum().backward(), (yf * yf.detach()).sum().backward()
        torch.testing.assert_close(xa.grad, xf.grad, rtol=0, atol=0)
        torch.testing.assert_close(auto.weight.grad, fixed.weight.grad, rtol=0, atol=0)
    torch.testing.assert_close(auto.running_mean, fixed.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(auto.running_var, fixed.running_var, rtol=0, atol=0)
    torch.testing.assert_close(auto.eval()(x), fixed.eval()(x), rtol=0, atol=0)


def test_checkpoint_round_trip_keeps_g_and_running_statistics() -> None:
    net = _net()
    set_normalization_batch(net, 64)
    for _ in range(2):
        net.train()(torch.randn(4, 1, 8, 8))
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    fresh = _net()  # unchosen: running buffers of length 0
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    for i in (1, 4):
        assert fresh[i].num_groups == net[i].num_groups and fresh[i].choice.batch == 64
        torch.testing.assert_close(fresh[i].running_var, net[i].running_var)
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(fresh.eval()(x), net.eval()(x))  # eval works at once: G came with the state


def test_a_learn2learn_style_clone_chooses_for_the_original() -> None:
    """learn2learn's clone() copies each module's __dict__ and shares buffers; MAML forwards only clones."""
    def clone(module: nn.Module) -> nn.Module:
        copy = module.__new__(type(module))
        copy.__dict__ = module.__dict__.copy()
        copy._parameters, copy._buffers = module._parameters.copy(), module._buffers.copy()
        copy._modules = {k: clone(m) for k, m in module._modules.items()}
        return copy

    net = _net("bgn:elements=128")
    clone(net).train()(torch.randn(4, 1, 8, 8))
    assert net[1].num_groups == choose_groups(4, 512, 128) and net[1].running_mean.shape == (net[1].num_groups,)
    assert net.state_dict()["1._extra_state"]["num_groups"] == net[1].num_groups


def test_a_stateless_first_call_leaves_the_layer_usable() -> None:
    """DARTS' architecture step calls functional_call with copies of every buffer; if that is the first forward,
    G is chosen there and the layer's own buffers get their length at its next forward."""
    net = _net("bgn:elements=128")
    copies = {name: b.clone() for name, b in net.named_buffers()}
    torch.func.functional_call(net.train(), copies, (torch.randn(4, 1, 8, 8),))
    assert net[1].num_groups == choose_groups(4, 512, 128) and net[1].running_mean.shape == (0,)
    net(torch.randn(4, 1, 8, 8))
    assert net[1].running_mean.shape == (net[1].num_groups,) and net[1].stats.num_batches_tracked == 1


# --- synchronization --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("when", ["before", "after"])
def test_sync_conversion_works_before_and_after_the_choice(when) -> None:
    x = torch.randn(4, 8, 5, 5)
    reference = create_norm("bgn:elements=50", 8).train()
    reference(x)
    layer = create_norm("bgn:elements=50", 8).train()
    if when == "after":
        layer(x)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(layer))
    assert isinstance(model[0], AutoBatchGroupNorm) and isinstance(model[0].stats, nn.SyncBatchNorm)
    if when == "before":
        model[0](x)  # no process group: the converted layer computes the local BGN, and chooses G now
    assert model[0].num_groups == reference.num_groups and model[0].stats.num_features == reference.num_groups
    torch.testing.assert_close(model[0].running_mean, reference.running_mean)
    converted = convert_sync_norms(nn.Sequential(create_norm("bgn:elements=50", 8)))
    assert isinstance(converted[0].stats, SyncGroupStatistics)
    converted[0].train()(x)
    torch.testing.assert_close(converted[0].running_var, reference.running_var)
    reverted = revert_sync_norms(converted)
    assert reverted[0].num_groups == reference.num_groups and not reverted[0].is_synchronized
    torch.testing.assert_close(reverted[0].eval()(x), reference.eval()(x))
