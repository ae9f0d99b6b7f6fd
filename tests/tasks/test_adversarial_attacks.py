"""The attacks attack: a model trained without adversarial training falls to PGD; the ensemble is a worst case.

A tiny convolutional network with a registry norm is trained for a few hundred
steps on real Fashion-MNIST images (downsampled to 14x14 so the test takes
seconds) and attacked with the task's own evaluation code.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normlayers import create_norm
from tasks.adversarial.attacks import generate, within_threat_model
from tasks.adversarial.config import RobustEvalConfig
from tasks.adversarial.ensemble import EnsembleSettings, build_ensemble, run_ensemble
from tasks.adversarial.evaluation import RobustEvaluator, summarize
from tasks.adversarial.models import InputNormalization
from tasks.data.fashion_mnist import load_fashion_mnist

EPS = 0.1


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run fastest on one thread (and do not fight other processes for cores); restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fashion_images(split: str, count: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_fashion_mnist(None, split)
    x = F.avg_pool2d(images[offset:offset + count].float() / 255.0, 2)
    return x, labels[offset:offset + count]


def tiny_net(norm: str = "bn") -> nn.Module:
    return nn.Sequential(InputNormalization((0.286,), (0.353,)),
                         nn.Conv2d(1, 16, 3, padding=1), create_norm(norm, 16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, stride=2, padding=1), create_norm(norm, 32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def train(net: nn.Module, steps: int, attack_steps: int = 0) -> nn.Module:
    """Adam on 4,000 training images; with ``attack_steps``, PGD adversarial training (torchattacks PGD)."""
    import torchattacks

    torch.manual_seed(0)
    x, y = fashion_images("train", 4000)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    attack = torchattacks.PGD(net, eps=EPS, alpha=2.5 * EPS / max(1, attack_steps), steps=attack_steps)
    for step in range(steps):
        idx = torch.randint(0, len(y), (64,))
        images, labels = x[idx], y[idx]
        if attack_steps:
            images = generate(attack, net, images, labels, "eval")
        net.train()
        loss = F.cross_entropy(net(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


@functools.lru_cache(maxsize=1)
def trained_tiny_model() -> nn.Module:
    """The tiny network after 300 steps of ordinary (not adversarial) training; shared by the test modules."""
    torch.manual_seed(0)
    return train(tiny_net(), 300)


@pytest.fixture(scope="module")
def standard_model() -> nn.Module:
    return trained_tiny_model()


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def test_pgd_drives_a_standard_model_near_zero_and_nothing_is_flagged(standard_model: nn.Module) -> None:
    x, y = fashion_images("test", 200)
    cfg = RobustEvalConfig(ensemble=["apgd-ce", "apgd-t"], apgd_steps=20, target_classes=3)
    evaluator = RobustEvaluator(standard_model, EPS, cfg, 10)
    outcomes = evaluator.evaluate(x, y)
    summary = summarize(outcomes, EnsembleSettings.from_config(cfg))
    m = summary.metrics
    assert m["test/subset_acc"] > 0.7  # it learned
    assert m["test/fgsm_acc"] < m["test/subset_acc"] - 0.3  # one step already hurts
    assert m["test/pgd20_acc"] <= 0.05  # and PGD drives it near zero
    assert m["test/robust_acc"] <= m["test/pgd20_acc"] and m["test/pgd200_acc"] <= m["test/pgd20_acc"]
    assert summary.robust_attack == "apgd-ce(20 it)+apgd-t(20 it, 3 targets)"
    assert summary.samples == 200 and summary.warnings == []
    assert not standard_model.training  # evaluation leaves eval mode as it found it


def test_evaluation_is_seeded_and_leaves_the_global_random_stream_alone(standard_model: nn.Module) -> None:
    x, y = fashion_images("test", 64)
    cfg = RobustEvalConfig(ensemble=["apgd-ce", "square"], apgd_steps=5, square_queries=30, convergence_check=False)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = RobustEvaluator(standard_model, EPS, cfg, 10).evaluate(x, y)
    assert torch.equal(torch.get_rng_state(), state)  # APGD and Square reseed torch: confined to a forked state
    second = RobustEvaluator(standard_model, EPS, cfg, 10).evaluate(x, y)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_autoattack_members_have_the_authors_settings(standard_model: nn.Module) -> None:
    settings = EnsembleSettings(seed=7)
    assert settings.is_standard() and settings.name() == "autoattack-standard"
    members = dict(build_ensemble(standard_model, 8 / 255, settings, 10))
    assert list(members) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    apgd, apgdt, fab, square = members["apgd-ce"], members["apgd-t"], members["fab-t"], members["square"]
    assert (apgd.steps, apgd.n_restarts, apgd.loss, apgd.eps, apgd.seed) == (100, 1, "ce", 8 / 255, 7)
    assert (apgdt.steps, apgdt.n_restarts, apgdt.n_target_classes, apgdt.seed) == (100, 1, 9, 7)
    assert (fab.steps, fab.n_restarts, fab.n_target_classes, fab.multi_targeted, fab.seed) == (100, 1, 9, True, 7)
    assert (square.n_queries, square.n_restarts, square.p_init, square.rescale_schedule, square.seed) == \
        (5000, 1, 0.8, False, 7)
    reduced = EnsembleSettings(attacks=("apgd-ce", "apgd-t"), apgd_steps=20, target_classes=3)
    assert reduced.name() == "apgd-ce(20 it)+apgd-t(20 it, 3 targets)"
    assert EnsembleSettings(attacks=("apgd-ce", "apgd-t")).name() == "apgd-ce+apgd-t"


class _ThresholdModel(nn.Module):
    """Class 1 when the first pixel is above 0.5, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.flatten(1)[:, 0] - 0.5
        return torch.stack([-score, score], 1)


class _MovesPixel:
    """A stand-in attack that pushes the first pixel of chosen images across the threshold by ``shift``."""

    def __init__(self, targets: set[int], shift: float, all_images: torch.Tensor) -> None:
        self.targets, self.shift, self.all_images = targets, shift, all_images

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = images.clone()
        for row, image in enumerate(images):
            position = int((self.all_images == image).flatten(1).all(1).nonzero()[0])
            if position in self.targets:
                out[row].view(-1)[0] += self.shift if labels[row] == 0 else -self.shift
        return out


def test_the_ensemble_is_a_per_sample_worst_case_inside_the_threat_model() -> None:
    torch.manual_seed(0)
    images = torch.rand(6, 1, 2, 2) * 0.2 + 0.4
    images.view(6, -1)[:, 0] = torch.tensor([0.45, 0.55, 0.46, 0.54, 0.47, 0.2])
    labels = torch.tensor([0, 1, 0, 1, 0, 0])
    model = _ThresholdModel()
    members = [("a", _MovesPixel({0, 1}, 0.1, images)), ("b", _MovesPixel({1, 2}, 0.1, images)),
               ("c", _MovesPixel({3}, 0.3, images)),  # crosses, but outside epsilon: does not count
               ("d", _MovesPixel({5}, 0.1, images))]  # 0.2 + 0.1 stays below the threshold
    robust = torch.ones(6, dtype=torch.bool)
    broken = run_ensemble(members, model, images, labels, robust, EPS, seed=0)  # type: ignore[arg-type]
    assert robust.tolist() == [False, False, False, True, True, True]
    assert broken["a"].tolist() == [True, True, False, False, False, False]
    assert broken["b"].tolist() == [False, False, True, False, False, False]  # image 1 was already broken
    assert not broken["c"].any() and not broken["d"].any()
    assert within_threat_model(images + 0.1, images, EPS).all()
    assert not within_threat_model(images + 0.11, images, EPS).any()
    outside_box = images.clone()
    outside_box.view(6, -1)[:, 1] = 1.05 * torch.ones(6)
    assert not within_threat_model(outside_box, outside_box - 0.05, EPS).any()  # close enough, but not an image
