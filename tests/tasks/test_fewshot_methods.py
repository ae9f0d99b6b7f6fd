"""Few-shot methods: prototypes, MAML's second-order meta-gradient through every norm, ANIL, and the protocol.

The shared-buffer guarantee: a MAML clone shares its running buffers with the
base model, so meta-testing could move the model the next episode starts from;
the module must put every buffer back after each episode, for every norm.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normlayers import create_norm, find_norm_layers, list_norms, resolve_norm
from tasks.fewshot.data.episodes import Episode, FixedTaskset, fixed_episode_indices, meta_dataset
from tasks.fewshot.data.fashion_rot import load_fashion_rot
from tasks.fewshot.l2l import l2l
from tasks.fewshot.methods import ANIL, prototype_logits
from tasks.fewshot.module import FewShotModule
from tasks.fewshot.protocol import set_evaluation_modes

NORMS = list_norms() + ["bgn:num_groups=16"]
TEST_SPLIT = load_fashion_rot(None, "test", 0, 20)
TASKS = FixedTaskset(meta_dataset(TEST_SPLIT), fixed_episode_indices(TEST_SPLIT, 5, 1 + 3, 3, seed=0, split_code=2))


def _module(method: str, norm: str, norm_mode: str, forward: str = "separate") -> FewShotModule:
    inner = {"inner_lr": 0.4, "train_steps": 1, "test_steps": 2, "first_order": False}
    return FewShotModule(norm=norm, method=method, ways=5, shots=1, in_channels=1, image_size=28, filters=16,
                         forward=forward, norm_mode=norm_mode, mean=[0.286], std=[0.353], lr=1e-3, lr_halve_every=0,
                         inner=None if method == "protonet" else inner)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("norm", NORMS)
def test_meta_testing_never_changes_the_model_the_next_episode_starts_from(norm: str) -> None:
    module = _module("maml", norm, "transductive")
    keeps_stats = resolve_norm(norm).entry.keeps_running_stats
    if keeps_stats:  # the hazard: one adapt plus forward of a clone moves the base model's buffers
        before = _snapshot(module)
        clone = module.learner.adaptive.clone()
        images = module.episode(*TASKS[0][1:]).support
        clone.adapt(F.cross_entropy(clone(images), torch.arange(5)))
        clone(images)
        moved = [k for k, v in module.state_dict().items() if not torch.equal(v, before[k])]
        assert any(k.endswith("num_batches_tracked") for k in moved)
        assert any("running_mean" in k or "running_var" in k for k in moved)  # EvoNorm-B0 keeps only a variance
        module.load_state_dict(before)
    start = _snapshot(module)
    for norm_mode in ("transductive", "running"):
        module.norm_mode = norm_mode
        module._begin_evaluation(["test"])
        for i in range(len(TASKS)):
            module._evaluate(TASKS[i], "test")
            assert all(torch.equal(v, start[k]) for k, v in module.state_dict().items())
        forward_order = module.accuracies["test"]
        module._begin_evaluation(["test"])
        for i in reversed(range(len(TASKS))):
            module._evaluate(TASKS[i], "test")
        assert sorted(module.accuracies["test"]) == sorted(forward_order)  # no episode depends on the ones before


@pytest.mark.parametrize("method", ["protonet", "anil"])
def test_the_guarantee_holds_for_every_method(method: str) -> None:
    module = _module(method, "bn", "transductive", forward="joint")
    start = _snapshot(module)
    module._begin_evaluation(["test"])
    for i in range(len(TASKS)):
        module._evaluate(TASKS[i], "test")
    assert all(torch.equal(v, start[k]) for k, v in module.state_dict().items())
    assert len(module.accuracies["test"]) == 3 and all(0 <= a <= 1 for _, a in module.accuracies["test"])


@pytest.mark.parametrize("norm", list_norms())
def test_evaluation_modes_come_from_the_registry_metadata(norm: str) -> None:
    module = _module("maml", norm, "transductive")
    layers = list(find_norm_layers(module.learner))
    assert len(layers) == (4 if norm != "none" else 0) or norm == "none"
    set_evaluation_modes(module.learner, "transductive")
    assert all(layer.training == resolved.entry.uses_batch_stats for _, layer, resolved in layers)
    set_evaluation_modes(module.learner, "running")
    assert not any(m.training for m in module.learner.modules())


# ----------------------------------------------------------------------------- MAML's meta-gradient


class _SmoothNet(nn.Module):
    """Two conv -> norm -> tanh blocks and a linear head: smooth (no ReLU or max-pool kinks), so that central
    differences are exact to many digits. At 96x96 inputs a norm layer sees >= 2**18 elements per batch, BGN's
    two-phase path. Norms with a built-in activation are built without it (FRN's TLU and EvoNorm-B0's max are
    kinks that a central difference can straddle; tests/normlayers checks them), and a norm with a ramp (BRN)
    is held at step 0, where r = 1 and d = 0: elsewhere r and d are stop-gradient by definition, so its
    gradient is not the derivative finite differences measure."""

    def __init__(self, norm: str) -> None:
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(1, 8, 3, padding=1), create_norm(norm, 8, activation=False)
        self.conv2, self.norm2 = nn.Conv2d(8, 8, 3, padding=1), create_norm(norm, 8, activation=False)
        self.head = nn.Linear(8, 3)
        for norm_layer in (self.norm1, self.norm2):
            if hasattr(norm_layer, "ramp_driver"):
                norm_layer.ramp_driver = "external"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(torch.tanh(self.norm1(self.conv1(x))), 2)
        return self.head(torch.tanh(self.norm2(self.conv2(x))).mean((2, 3)))


def _meta_loss(net: nn.Module, xs, ys, xq, yq, first_order: bool) -> torch.Tensor:
    learner = l2l.algorithms.MAML(net, lr=0.3, first_order=first_order).clone()
    learner.adapt(F.cross_entropy(learner(xs), ys))
    return F.cross_entropy(learner(xq), yq)


@pytest.mark.parametrize("norm, big", [(n, False) for n in NORMS] + [("bgn", True), ("bgn:num_groups=4", True)])
def test_second_order_meta_gradients_through_every_norm_match_finite_differences(norm: str, big: bool) -> None:
    torch.manual_seed(0)
    net = _SmoothNet(norm).double().train()
    side = 96 if big else 12
    xs, xq = torch.randn(6, 1, side, side).double(), torch.randn(6, 1, side, side).double()
    ys, yq = torch.arange(6) % 3, torch.arange(6) % 3
    assert (xs.numel() * 8 >= 1 << 18) == big  # big: the first norm layer takes BGN's two-phase path
    params = list(net.parameters())
    grads = torch.autograd.grad(_meta_loss(net, xs, ys, xq, yq, first_order=False), params)
    direction = [torch.randn_like(p) for p in params]
    analytic = sum((g * d).sum() for g, d in zip(grads, direction))

    def loss_at(step: float) -> float:
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(d, alpha=step)
        value = float(_meta_loss(net, xs, ys, xq, yq, first_order=True).detach())  # the value is the same
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.sub_(d, alpha=step)
        return value

    eps = 1e-5
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert float(analytic) == pytest.approx(numeric, rel=1e-6, abs=1e-9)
    first = torch.autograd.grad(_meta_loss(net, xs, ys, xq, yq, first_order=True), params, allow_unused=True)
    first_dir = sum((g * d).sum() for g, d in zip(first, direction) if g is not None)
    assert abs(float(first_dir) - numeric) > 10 * abs(float(analytic) - numeric)  # second-order terms matter


# ----------------------------------------------------------------------------- ProtoNet and ANIL


def test_prototype_logits_are_negative_squared_distances_to_class_means() -> None:
    torch.manual_seed(0)
    support, query = torch.randn(6, 4), torch.randn(5, 4)
    labels = torch.tensor([2, 0, 1, 2, 0, 1])
    logits = prototype_logits(support, labels, query, ways=3)
    for q in range(5):
        for c in range(3):
            prototype = support[labels == c].mean(0)
            assert logits[q, c] == pytest.approx(-float(((query[q] - prototype) ** 2).sum()), rel=1e-5)


def test_anil_adapts_the_head_alone_and_meta_learns_the_body() -> None:
    torch.manual_seed(0)
    anil = ANIL(1, 16, "bn", 28, 5, joint=False, inner_lr=0.5, train_steps=1, test_steps=2, first_order=False)
    x = torch.randn(20, 1, 28, 28)
    labels = torch.arange(5).repeat_interleave(4)
    rest = (1, 2, 3)
    episode = Episode(x[::4], labels[::4], torch.cat([x[i::4] for i in rest]), torch.cat([labels[i::4] for i in rest]),
                      ways=5)
    body_before = {k: v.clone() for k, v in anil.body.state_dict().items()}
    anil.train()
    loss = anil.meta_loss(episode)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in anil.body.parameters())
    head = anil.adaptive.clone()
    head.adapt(F.cross_entropy(head(anil.body(episode.support)), episode.support_labels))
    assert not torch.equal(head.module.weight, anil.adaptive.module.weight)  # the clone's head moved ...
    assert all(torch.equal(anil.body.state_dict()[k], v) for k, v in body_before.items()
               if "running" not in k and "num_batches" not in k)  # ... the body did not
