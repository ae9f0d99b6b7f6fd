"""Generating an attack never touches running statistics, for every registry norm that keeps them.

torchattacks finds batch norms by class name; normbench sets layer modes from
the registry metadata instead. These tests ask the registry which norms keep
running statistics (so a norm registered later is covered without edits) and
attack a network built with each of them, in both attack modes, with every
attack the task uses (training and evaluation).
"""

from __future__ import annotations

import pytest
import torch
from test_adversarial_attacks import one_thread  # noqa: F401  (tiny networks: one torch thread)
from torch import nn

from normlayers import create_norm, find_norm_layers, get_norm_entry, list_norms
from tasks.adversarial.attacks import fgsm, generate, pgd, training_attack
from tasks.adversarial.config import AdversarialConfig
from tasks.adversarial.ensemble import EnsembleSettings, build_ensemble
from tasks.adversarial.layer_mode import attack_layer_mode, running_statistics
from tasks.adversarial.models import InputNormalization

STATEFUL_NORMS = [name for name in list_norms() if get_norm_entry(name).keeps_running_stats]
SPECS = {"bgn": "bgn:num_groups=4"}


def small_network(norm: str) -> nn.Module:
    """Input normalization, two conv + registry-norm layers, a classifier (12x12 grey images)."""
    torch.manual_seed(0)
    net = nn.Sequential(InputNormalization((0.3,), (0.35,)),
                        nn.Conv2d(1, 8, 3, padding=1), create_norm(norm, 8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, stride=2, padding=1), create_norm(norm, 8), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    net.train()
    with torch.no_grad():  # give the running statistics values that differ from their initial ones
        for _ in range(3):
            net(torch.rand(8, 1, 12, 12))
    return net


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in running_statistics(net).items()}


def every_attack(net: torch.nn.Module) -> dict[str, object]:
    attacks: dict[str, object] = {}
    for method in ("pgd_at", "trades", "fgsm_rs"):
        attacks[method] = training_attack(AdversarialConfig(method=method), net)
    attacks["fgsm"] = fgsm(net, 0.1)
    attacks["pgd-10"] = pgd(net, 0.1, 10)
    settings = EnsembleSettings(apgd_steps=3, fab_steps=3, target_classes=2, square_queries=20)
    attacks.update(build_ensemble(net, 0.1, settings, 10))
    return attacks


def test_the_registry_names_norms_with_running_statistics() -> None:
    assert {"bn", "bgn"} <= set(STATEFUL_NORMS)  # the test below covers at least these


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("norm", STATEFUL_NORMS)
def test_generating_an_attack_leaves_running_statistics_untouched(norm: str, mode: str) -> None:
    net = small_network(SPECS.get(norm, norm))
    before = snapshot(net)
    assert before and any(name.endswith(("running_mean", "running_var")) for name in before)  # EvoNorm-B0: var only
    images, labels = torch.rand(6, 1, 12, 12), torch.randint(0, 10, (6,))
    for name, attack in every_attack(net).items():
        adversarial = generate(attack, net, images, labels, mode)  # type: ignore[arg-type]
        assert adversarial.shape == images.shape, name
        if name not in ("apgd-ce", "apgd-t", "fab-t", "square"):  # these return the images they could not break
            assert not torch.equal(adversarial, images), name
        after = snapshot(net)
        for key, value in before.items():
            assert torch.equal(after[key], value), f"{name} ({mode} mode) changed {key}"
        assert net.training, f"{name}: the model's train mode was not restored"
        assert all(m.training for m in net.modules())


def test_a_train_step_after_the_attack_still_updates_running_statistics() -> None:
    net = small_network("bgn:num_groups=4")
    before = snapshot(net)
    images, labels = torch.rand(6, 1, 12, 12), torch.randint(0, 10, (6,))
    generate(pgd(net, 0.1, 3), net, images, labels, "train")
    net(images)  # the training forward pass, in train mode
    assert any(not torch.equal(snapshot(net)[k], v) for k, v in before.items())


def test_train_mode_attacks_use_batch_statistics_and_eval_mode_running_ones() -> None:
    net = small_network("bn")
    images = torch.rand(6, 1, 12, 12)
    with torch.no_grad():
        with attack_layer_mode(net, "eval"):
            eval_logits = net(images)
            assert not any(m.training for _, m, _ in find_norm_layers(net))
        with attack_layer_mode(net, "train"):
            train_logits = net(images)
            assert all(m.training for _, m, _ in find_norm_layers(net))
    assert not torch.allclose(eval_logits, train_logits)
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net(images), eval_logits)


def test_modes_are_restored_module_by_module() -> None:
    net = small_network("bn")
    net.eval()
    first_norm = next(m for _, m, _ in find_norm_layers(net))
    first_norm.train()  # a mixed state, e.g. a frozen backbone with one trainable norm
    flags = [m.training for m in net.modules()]
    with attack_layer_mode(net, "train"):
        pass
    assert [m.training for m in net.modules()] == flags
    with pytest.raises(ValueError, match="choose eval or train"):
        with attack_layer_mode(net, "inference"):  # type: ignore[arg-type]
            pass
