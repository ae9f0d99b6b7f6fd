"""Our AutoAttack (torchattacks' attacks, the authors' settings) against the authors' implementation.

The reference is ``pyautoattack`` (Croce & Hein's AutoAttack packaged on PyPI,
requirements.txt). Both run on the same tiny trained network and the same
Fashion-MNIST test images with the same seed, at an epsilon (0.02) where about
half of the correctly classified images resist; the robust flags must agree
image by image. The fast test covers the APGD pair at the authors' 100
iterations and 9 target classes; the slow one the whole standard version.
"""

from __future__ import annotations

import logging

import pyautoattack
import pytest
import torch
from test_adversarial_attacks import fashion_images, one_thread, trained_tiny_model  # noqa: F401
from torch import nn

from tasks.adversarial.ensemble import EnsembleSettings, build_ensemble, run_ensemble

EPS = 0.02


@pytest.fixture(scope="module")
def robust_model() -> nn.Module:
    return trained_tiny_model()


def compare(net: nn.Module, attacks: tuple[str, ...], count: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = fashion_images("test", count, offset=1000)
    with torch.no_grad():
        robust = net(x).argmax(1) == y
    run_ensemble(build_ensemble(net, EPS, EnsembleSettings(attacks=attacks, seed=0), 10), net, x, y, robust, EPS, 0)
    logging.getLogger("auto-attack").setLevel(logging.ERROR)
    reference = pyautoattack.AutoAttack(net, eps=EPS, version="custom", attacks=list(attacks), seed=0, device="cpu")
    # the standard version's settings (its _set_version("standard")), for a custom list of attacks
    reference.apgd.n_restarts, reference.apgd_targeted.n_target_classes = 1, 9
    reference.fab.n_restarts, reference.fab.n_target_classes, reference.square.n_queries = 1, 9, 5000
    _, predicted = reference.run_standard_evaluation(x, y, batch_size=count)
    return robust, predicted == y


def test_the_apgd_pair_agrees_with_the_original_image_by_image(robust_model: nn.Module) -> None:
    ours, theirs = compare(robust_model, ("apgd-ce", "apgd-t"), 32)
    assert 3 <= int(ours.sum()) <= 20  # some images resist, some fall: the comparison says something
    assert torch.equal(ours, theirs)


@pytest.mark.slow
def test_the_standard_version_agrees_with_the_original_image_by_image(robust_model: nn.Module) -> None:
    ours, theirs = compare(robust_model, ("apgd-ce", "apgd-t", "fab-t", "square"), 96)
    assert int(ours.sum()) >= 5
    assert torch.equal(ours, theirs)
