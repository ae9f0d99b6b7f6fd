"""Domain adaptation's methods against their definitions: gradient reversal, ramps, CDAN, AdaBN, label spaces."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from normlayers import find_norm_layers, list_norms, resolve_norm
from tasks.runner.errors import ConfigError
from tasks.uda.adabn import adapt_running_stats, adaptable_layers, statistics_modules
from tasks.uda.adversarial import (
    DomainDiscriminator,
    MultilinearMap,
    RandomizedMultilinearMap,
    annealed_lr_factor,
    domain_adversarial_loss,
    entropy_weights,
    grl_coefficient,
    reverse_gradient,
)
from tasks.uda.config import CdanConfig, DiscriminatorConfig, UdaModelConfig, UdaOptimConfig
from tasks.uda.domains import DOMAINS, check_pair, get_domain
from tasks.uda.models import build_network
from tasks.uda.module import UdaModule, cdan_map_kind

NORMS = [*list_norms(), "bgn:num_groups=8"]


def tiny_module(method: str, norm: str = "bn", **kwargs) -> UdaModule:
    defaults = dict(norm=norm, method=method, domain_batches="joint", trade_off=1.0, adabn=True, num_classes=10,
                    in_channels=3, image_size=28, model=UdaModelConfig(width=4, feature_dim=8), optim=UdaOptimConfig(),
                    discriminator=DiscriminatorConfig(hidden=16, dropout=0.0), cdan=CdanConfig())
    defaults.update(kwargs)
    return UdaModule(**defaults)


def batch(n: int = 6, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"labelled": (torch.randn(n, 3, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)),
            "unlabelled": torch.randn(n, 3, 28, 28, generator=g) + 1.0}


# ------------------------------------------------------------------------------------------- gradient reversal


def test_gradient_reversal_is_identity_forward_and_minus_coefficient_backward() -> None:
    x = torch.randn(5, 7, requires_grad=True)
    weights = torch.randn(5, 7)
    out = reverse_gradient(x, 0.3)
    assert torch.equal(out, x)
    (out * weights).sum().backward()
    assert torch.allclose(x.grad, -0.3 * weights)


@pytest.mark.parametrize("method", ["dann", "cdan"])
def test_the_features_receive_the_reversed_scaled_transfer_gradient_and_the_discriminator_the_plain_one(method) -> None:
    """d(loss)/d(features) = d(cls)/d(f) - c * trade_off * d(transfer)/d(f); the discriminator descends its loss."""
    torch.manual_seed(0)
    module = tiny_module(method, trade_off=0.7, cdan=CdanConfig(entropy_conditioning=True)).train()
    data, progress = batch(), 0.3
    c = grl_coefficient(progress)
    features = list(module.net.features.parameters())
    disc = list(module.discriminator.parameters())

    def grads(loss, params):
        return torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)

    losses = module.adaptation_losses(data, progress)
    g_total_f, g_total_d = grads(losses["loss"], features), grads(losses["loss"], disc)
    # the same two parts, by hand, without the reversal: f -> (map) -> discriminator
    x, y = data["labelled"]
    f = module.net.features(torch.cat([x, data["unlabelled"]]))
    logits = module.net.classifier(f)
    cls = F.cross_entropy(logits[:6], y)
    weights = None
    d_in = f
    if method == "cdan":
        p = F.softmax(logits, 1).detach()
        d_in, weights = module.conditioning(f, p), entropy_weights(p, (6, 6))
    transfer, _ = domain_adversarial_loss(module.discriminator(d_in), (6, 6), weights)
    g_cls, g_transfer = grads(cls, features), grads(transfer, features)
    for total, a, b in zip(g_total_f, g_cls, g_transfer):
        assert torch.allclose(total, a - c * 0.7 * b, atol=1e-6)
    for total, b in zip(g_total_d, grads(transfer, disc)):
        assert torch.allclose(total, 0.7 * b, atol=1e-6)
    assert torch.allclose(losses["transfer_loss"], transfer) and c > 0.9


def test_dann_ramp_and_learning_rate_schedule_follow_their_formulas() -> None:
    assert grl_coefficient(0.0) == 0.0
    assert grl_coefficient(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)  # 0.4621
    assert grl_coefficient(0.5) == pytest.approx(0.986614, abs=1e-6)
    assert grl_coefficient(1.0) == pytest.approx(0.999909, abs=1e-6)
    values = [grl_coefficient(p / 20) for p in range(21)]
    assert values == sorted(values)
    assert annealed_lr_factor(0.0) == 1.0
    assert annealed_lr_factor(1.0) == pytest.approx(11 ** -0.75) == pytest.approx(0.16556, abs=1e-5)
    assert annealed_lr_factor(0.5) == pytest.approx(6 ** -0.75)


# ------------------------------------------------------------------------------------------------- CDAN and losses


def test_multilinear_map_is_the_outer_product_and_the_randomized_one_is_fixed_by_its_seed() -> None:
    f, g = torch.randn(3, 4), torch.softmax(torch.randn(3, 5), 1)
    out = MultilinearMap(4, 5)(f, g)
    assert out.shape == (3, 20)
    assert torch.allclose(out.view(3, 5, 4), g[:, :, None] * f[:, None, :])
    a, b = RandomizedMultilinearMap(4, 5, 16, seed=1), RandomizedMultilinearMap(4, 5, 16, seed=1)
    assert torch.equal(a(f, g), b(f, g)) and a(f, g).shape == (3, 16)
    assert torch.allclose(a(f, g), (f @ a.r_f) * (g @ a.r_g) / 4.0)
    assert "r_f" in a.state_dict()  # saved with the checkpoint
    assert cdan_map_kind(CdanConfig(), 128, 10) == "multilinear" and cdan_map_kind(CdanConfig(), 256, 31) == "randomized"


def test_entropy_weights_favour_confident_predictions_and_are_normalized_per_domain() -> None:
    uniform = torch.full((2, 4), 0.25)
    confident = torch.tensor([[0.97, 0.01, 0.01, 0.01], [0.01, 0.97, 0.01, 0.01]])
    weights = entropy_weights(torch.cat([uniform, confident, uniform[:1]]), (3, 2))
    source, target = weights.split([3, 2])
    assert source.sum().item() == pytest.approx(3) and target.sum().item() == pytest.approx(2)
    assert source[2] > source[0] == pytest.approx(source[1])  # the confident one weighs more
    raw_uniform, raw_confident = 1 + math.exp(-math.log(4)), 1 + math.exp(-(-(0.97 * math.log(0.97)) - 3 * 0.01 * math.log(0.01)))
    assert (source[2] / source[0]).item() == pytest.approx(raw_confident / raw_uniform, rel=1e-5)


def test_domain_loss_is_the_mean_of_the_two_domain_halves_with_source_labelled_one() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0])
    loss, acc = domain_adversarial_loss(logits, (2, 3))
    source = F.binary_cross_entropy_with_logits(logits[:2], torch.ones(2))
    target = F.binary_cross_entropy_with_logits(logits[2:], torch.zeros(3))
    assert loss.item() == pytest.approx(0.5 * (source + target).item())
    assert acc.item() == pytest.approx(2 / 5)  # 2.0 right, -1.0 wrong, 0.5 wrong, -3.0 right, 1.0 wrong


def test_the_norm_under_test_lives_only_in_the_feature_extractor_and_the_discriminator_is_a_plain_mlp() -> None:
    module = tiny_module("cdan", norm="bgn:num_groups=2")
    names = [name for name, _, _ in find_norm_layers(module)]
    assert len(names) == 2 and all(n.startswith("net.features.") for n in names)
    disc = DomainDiscriminator(8, 16, 0.5)
    kinds = {type(m).__name__ for m in disc.modules()} - {"DomainDiscriminator", "Sequential"}
    assert kinds == {"Linear", "ReLU", "Dropout"}
    assert not any(hasattr(m, "running_mean") for m in module.discriminator.modules())


# ---------------------------------------------------------------------------------------------------------- AdaBN


def trained_like(norm: str) -> torch.nn.Module:
    """A LeNet whose running statistics (if any) come from 'source' batches."""
    torch.manual_seed(0)
    net = build_network("lenet", norm=norm, num_classes=10, in_channels=3, image_size=28, width=4, feature_dim=8)
    net.train()
    with torch.no_grad():
        for _ in range(5):
            net(torch.randn(8, 3, 28, 28))
    return net.eval()


@pytest.mark.parametrize("norm", NORMS)
def test_adabn_changes_running_statistics_only_of_norms_that_keep_them(norm: str) -> None:
    net = trained_like(norm)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    target = [torch.randn(8, 3, 28, 28) * 2 + 1 for _ in range(3)]
    adapted, modules, images = adapt_running_stats(net, target)
    after = adapted.state_dict()
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # the original is untouched
    assert not adapted.training and set(after) == set(before)
    keeps = resolve_norm(norm).entry.keeps_running_stats
    stat_keys = {k for k in after if k.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")}
    assert bool(stat_keys) == keeps and (modules, images) == ((2, 24) if keeps else (0, 0))
    for key, value in after.items():
        if key in stat_keys:
            assert not torch.equal(value, before[key]), key
            if key.endswith("num_batches_tracked"):
                assert value.item() == 3
        else:
            assert torch.equal(value, before[key]), key  # every weight and every other buffer identical
    x = torch.randn(4, 3, 28, 28)
    assert torch.equal(adapted(x), net(x)) != keeps  # the outputs change exactly when statistics did


@pytest.mark.parametrize("norm", ["bn", "bgn:num_groups=1", "bgn:num_groups=8"])
def test_adabn_statistics_are_the_cumulative_average_over_target_batches(norm: str) -> None:
    net = trained_like(norm)
    (name, layer), _ = adaptable_layers(net)
    captured: list[torch.Tensor] = []
    handle = dict(net.named_modules())[name].register_forward_hook(lambda m, inp, out: captured.append(inp[0].clone()))
    batches = [torch.randn(8, 3, 28, 28) * (i + 1) for i in range(3)]
    adapted, _, _ = adapt_running_stats(net, batches)
    handle.remove()
    groups = resolve_norm(norm).kwargs.get("num_groups", layer.num_features if hasattr(layer, "num_features") else 0)
    means, variances = [], []
    for x in captured:  # the statistics of each batch over the batch and each group (BN: each channel)
        g = x.reshape(len(x), groups, -1).transpose(0, 1).reshape(groups, -1)
        means.append(g.mean(1))
        variances.append(g.var(1, unbiased=True))
    stats = statistics_modules(dict(adapted.named_modules())[name])[0]
    assert torch.allclose(stats.running_mean, torch.stack(means).mean(0), atol=1e-5)
    assert torch.allclose(stats.running_var, torch.stack(variances).mean(0), rtol=1e-4)


def test_source_only_module_reports_adabn_only_for_norms_that_keep_running_statistics() -> None:
    assert tiny_module("source_only", "bn").adabn_active
    ln = tiny_module("source_only", "ln")
    assert not ln.adabn_active and ln.adabn_summary.startswith("does not apply: LN keeps no running statistics")
    off = tiny_module("source_only", "bn:track_running_stats=false")
    assert not off.adabn_active and "track_running_stats=false" in off.adabn_summary
    assert tiny_module("dann", "bn").adabn_active and tiny_module("cdan", "bgn:num_groups=4").adabn_active
    assert tiny_module("dann", "ln").adabn_summary.startswith("does not apply: LN")
    assert tiny_module("oracle", "bn").adabn_summary is None and not tiny_module("oracle", "bn").adabn_active


# ---------------------------------------------------------------------------------------------------- label spaces


def test_pairs_are_made_by_declared_class_names_not_by_counts() -> None:
    fashion, mnist = get_domain("fashion_mnist"), get_domain("mnist")
    assert fashion.num_classes == mnist.num_classes == 10
    with pytest.raises(ConfigError, match="different label spaces .*'T-shirt/top'.*'0'"):
        check_pair(fashion, mnist)
    with pytest.raises(ConfigError, match="different label spaces"):
        check_pair(get_domain("amazon"), get_domain("art"))
    with pytest.raises(ConfigError, match="both 'usps'"):
        check_pair(get_domain("usps"), get_domain("usps"))
    for source, target in [("svhn", "mnist"), ("mnist", "mnist_m"), ("usps", "mnist"), ("dslr", "webcam"),
                           ("clipart", "real_world"), ("fashion_mnist_m", "fashion_mnist")]:
        check_pair(get_domain(source), get_domain(target))
    with pytest.raises(ConfigError, match="unknown domain 'mnistm' \\(did you mean 'mnist_m'\\?\\)"):
        get_domain("mnistm")
    assert len(DOMAINS["amazon"].classes) == 31 and len(DOMAINS["art"].classes) == 65


# ------------------------------------------------------------------------------------ gain over source-only


def test_gain_table_subtracts_the_matching_source_only_run(tmp_path, capsys) -> None:
    import json

    from tasks.uda.gain import collect_gains, main, mean_and_ci95

    def write(method: str, norm: str, pair: tuple[str, int], seed: int, acc: float, adabn: float | None = None,
              per_domain: int | None = 32, rule: str = "last") -> None:
        joint = method in ("dann", "cdan")
        record = {"task": "uda", "status": "finished", "dataset": "fmnist_fmnistm", "coordinates": {"method": method},
                  "axis_value": pair[0], "axis_label": pair[0], "axis_order": pair[1], "norm": norm, "norm_name": norm,
                  "norm_label": norm.upper(), "norm_num_groups": None, "selection": {"rule": rule},
                  "batch_size": (per_domain or 32) * (2 if joint else 1), "protocol": {"domain_batches": "joint"},
                  "seed": seed, "test/target_acc": acc}
        if per_domain is not None:  # records before per_domain_batch_size: batch_size was the per-domain batch
            record["per_domain_batch_size"] = per_domain
        else:
            record["batch_size"] = 32
        if adabn is not None:
            record["test/target_acc_adabn"] = adabn
        folder = tmp_path / f"{method}-{norm}-{pair[0]}-{seed}-{rule}"
        folder.mkdir()
        (folder / "result.json").write_text(json.dumps(record))

    for seed, (base, dann) in enumerate([(0.40, 0.46), (0.42, 0.44), (0.41, 0.45)]):
        write("source_only", "bn", ("b->a", 1), seed, base, adabn=base + 0.01)
        write("dann", "bn", ("b->a", 1), seed, dann, adabn=dann + 0.02)  # record batch 64, pairs with 32 per domain
    write("source_only", "ln", ("a->b", 0), 0, 0.5, per_domain=None)  # an old record, no per-domain field
    write("dann", "ln", ("a->b", 0), 0, 0.45, per_domain=None)
    write("dann", "ln", ("b->a", 1), 0, 0.9)  # no source-only run to compare with: left out
    write("dann", "bn", ("b->a", 1), 0, 0.9, rule="best source validation accuracy")  # other selection: left out
    gains = collect_gains(tmp_path)
    dann = {(cell[1], cell[3]): values for cell, values in gains[("fmnist_fmnistm", "joint", 32, "dann")].items()}
    assert dann == {("BN", "b->a"): pytest.approx([6.0, 2.0, 4.0]), ("LN", "a->b"): pytest.approx([-5.0])}
    adabn = gains[("fmnist_fmnistm", "joint", 32, "adabn")]
    assert [v for values in adabn.values() for v in values] == pytest.approx([1.0, 1.0, 1.0])
    dann_adabn = gains[("fmnist_fmnistm", "joint", 32, "dann+adabn")]
    assert [v for values in dann_adabn.values() for v in values] == pytest.approx([8.0, 4.0, 6.0])
    mean, half = mean_and_ci95([6.0, 2.0, 4.0])
    assert mean == pytest.approx(4.0) and half == pytest.approx(4.302653 * 2.0 / 3 ** 0.5, rel=1e-5)  # t(0.975, 2)
    assert mean_and_ci95([1.5]) == (1.5, None)
    assert main([str(tmp_path)]) == 0
    assert "+4.00 ± 4.97 (n=3)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- local weights


def test_local_weights_fill_matching_tensors_and_list_what_does_not_fit(tmp_path) -> None:
    from tasks.models.imagenet_resnet import imagenet_resnet
    from tasks.uda.models import load_matching_weights

    torch.manual_seed(0)
    source = imagenet_resnet("resnet18", norm="bn", num_classes=1000)
    for p in source.parameters():
        p.data.normal_()
    torch.save({"state_dict": source.state_dict()}, tmp_path / "bn.pt")
    target = imagenet_resnet("resnet18", norm="bgn:num_groups=4", num_classes=1000)
    loaded, skipped = load_matching_weights(target, tmp_path / "bn.pt")
    own = target.state_dict()
    assert torch.equal(own["conv1.weight"], source.state_dict()["conv1.weight"])
    assert torch.equal(own["layer1.0.bn1.weight"], source.state_dict()["layer1.0.bn1.weight"])  # per-channel affine
    assert "bn1.running_mean" in skipped and "bn1.stats.running_mean" not in skipped  # BN's statistics do not fit BGN's
    assert loaded == len(source.state_dict()) - len(skipped)
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="none of its 1 tensors fits"):
        load_matching_weights(target, tmp_path / "other.pt")
