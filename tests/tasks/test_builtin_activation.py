"""Every task's models honour a norm's built-in activation, and every registry norm runs in every task's model.

A test-only entry stands in for FRN/EvoNorm: a per-channel affine followed, when
``apply_act`` is on, by a thresholded activation of its own. For each model
builder: no ReLU ever reads the output of such a norm whose activation is on;
the norms whose activation is on are exactly the slots a ReLU follows in the BN
model (the slots before a residual add, at the end of a DARTS op or of the stem
get ``apply_act=False``); and with ordinary norms the model is torchvision's
own computation, with a ReLU after the norm.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch
import torchvision
from torch import Tensor, nn

import normlayers
from normlayers import NormEntry, NormParam, find_norm_layers, get_norm_entry, list_norms
from normlayers.registry import _REGISTRY
from tasks.adversarial.models import build_network as adversarial_network
from tasks.fewshot.models import Conv4Classifier
from tasks.models import build_model
from tasks.nas.genotypes import PUBLISHED
from tasks.nas.network import EvalNetwork
from tasks.nas.supernet import SuperNet
from tasks.registry import get_task, list_tasks
from tasks.runner.parse import parse_config
from tasks.uda.models import build_network as uda_network

ACT = "acttest"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class _ActNorm(nn.Module):
    """y = gamma x + beta, then max(y, tau) when apply_act (a TLU-like activation of its own)."""

    def __init__(self, num_channels: int, apply_act: bool = True) -> None:
        super().__init__()
        self.apply_act = apply_act
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.tau = nn.Parameter(torch.full((num_channels,), -0.5))

    def forward(self, x: Tensor) -> Tensor:
        y = x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return torch.maximum(y, self.tau.view(1, -1, 1, 1)) if self.apply_act else y


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def act_norm() -> Iterator[str]:
    normlayers.register_norm(NormEntry(ACT, _ActNorm, "ACT", "test-only norm with a built-in activation",
                                       params=(NormParam("apply_act", bool, True, "true or false"),),
                                       builtin_activation="TLU-like"), replace=True)
    try:
        yield ACT
    finally:
        _REGISTRY.pop(ACT, None)


# name -> (builder(norm), input shape): each task's model builders, small
MODELS: dict[str, tuple[Callable[[str], nn.Module], tuple[int, ...]]] = {
    "resnet8": (lambda n: build_model("resnet8", norm=n, num_classes=10, in_channels=1, width=4), (2, 1, 16, 16)),
    "resnet18": (lambda n: build_model("resnet18", norm=n, num_classes=10, in_channels=1), (2, 1, 32, 32)),
    "resnet50": (lambda n: build_model("resnet50", norm=n, num_classes=10), (2, 3, 32, 32)),
    "preact_resnet18": (lambda n: adversarial_network("preact_resnet18", norm=n, num_classes=10, in_channels=1,
                                                      mean=(0.5,), std=(0.3,), width=4), (2, 1, 16, 16)),
    "darts_supernet": (lambda n: SuperNet(4, 10, 3, n, 1), (2, 1, 16, 16)),
    "darts_network": (lambda n: EvalNetwork(PUBLISHED["DARTS_V2"], 4, 10, 3, n, 1, auxiliary=True), (2, 1, 32, 32)),
    "conv4": (lambda n: Conv4Classifier(1, 8, n, 28, 5), (2, 1, 28, 28)),
    "lenet": (lambda n: uda_network("lenet", norm=n, num_classes=10, in_channels=3, image_size=28, width=4,
                                    feature_dim=16), (2, 3, 28, 28)),
}
DARTS = ("darts_supernet", "darts_network")


def _relu_fed_norms(model: nn.Module, x: Tensor) -> tuple[set[str], set[str]]:
    """(all registry norms, those whose output tensor is the input of an nn.ReLU) in one training forward."""
    outputs: list[tuple[str, Tensor]] = []
    fed: set[str] = set()
    handles = []
    names = set()
    for name, module, _ in find_norm_layers(model):
        names.add(name)
        handles.append(module.register_forward_hook(
            functools.partial(lambda n, mod, args, out: outputs.append((n, out)), name)))

    def check(module: nn.Module, args: tuple) -> None:
        fed.update(n for n, out in outputs if out is args[0])

    handles += [m.register_forward_pre_hook(check) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        model.train()(x)
    finally:
        for h in handles:
            h.remove()
    return names, fed


@pytest.mark.parametrize("name", list(MODELS))
def test_norms_with_their_own_activation_get_no_relu_and_lose_it_where_none_follows(name: str, act_norm: str) -> None:
    build, shape = MODELS[name]
    x = torch.randn(*shape)
    torch.manual_seed(0)
    bn_names, bn_fed = _relu_fed_norms(build("bn"), x)
    torch.manual_seed(0)
    model = build(act_norm)
    names, fed = _relu_fed_norms(model, x)
    assert names == bn_names and names
    act_on = {n for n, m, _ in find_norm_layers(model) if normlayers.applies_own_activation(m)}
    assert not fed & act_on, f"a ReLU follows a norm that applied its own activation: {sorted(fed & act_on)}"
    if name in DARTS:
        # every state is pre-activation (each op starts with its own ReLU): only the auxiliary head's norms keep it
        assert act_on == {n for n in names if n.startswith("auxiliary_head.")} <= bn_fed
    else:
        assert act_on == bn_fed, "the slots a ReLU follows in the BN model are those that keep their own activation"
    off = {n for n, m, _ in find_norm_layers(model) if not normlayers.applies_own_activation(m)}
    assert all(getattr(m, "apply_act") is False for n, m, _ in find_norm_layers(model) if n in off)
    if name.startswith("resnet"):  # residual models: the norms before an add have it off
        assert off and all(n.endswith(("norm2", "bn2", "bn3", "shortcut.1", "downsample.1")) for n in off)
    assert len(off) + len(act_on) == len(names)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_resnets_compute_what_torchvision_computes_with_ordinary_norms(name: str) -> None:
    torch.manual_seed(0)
    ours = build_model(name, norm="bn", num_classes=10)
    torch.manual_seed(0)
    plain = getattr(torchvision.models, name)(num_classes=10, norm_layer=normlayers.norm_layer("bn"))
    assert list(ours.state_dict()) == list(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(ours.train()(x), plain.train()(x), rtol=0, atol=0)
    assert isinstance(ours.relu, nn.ReLU) and isinstance(ours.layer1[0].act1, nn.ReLU)


@pytest.mark.parametrize("name", list(MODELS))
def test_ordinary_norms_keep_their_relu_and_parameter_names(name: str) -> None:
    build, shape = MODELS[name]
    model = build("gn:num_groups=2")
    names, fed = _relu_fed_norms(model, torch.randn(*shape))
    assert fed, "some norm is followed by a ReLU"
    assert all(isinstance(normlayers.activation_after(m), nn.ReLU) for _, m, _ in find_norm_layers(model))
    assert not any(k.endswith(("act1.weight", "act2.weight")) for k in model.state_dict())


# --- every registry norm in every task's smallest model -------------------------------------------------------


def _fitting_spec(name: str) -> str:
    """The registry default, with the group parameter at 1 (divides every width of a tiny model)."""
    group = get_norm_entry(name).group_param
    return f"{name}:{group}=1" if group else name


@functools.lru_cache(maxsize=None)
def _shrunk(task_name: str, spec: str):
    task = get_task(task_name)
    cfg = parse_config(task, ["--config", str(CONFIGS / task_name / "quick.yaml"), "--norm", spec], raise_errors=True)
    return task, task.shrink(cfg)


@pytest.mark.parametrize("task_name", list_tasks())
@pytest.mark.parametrize("norm", list_norms())
def test_every_registry_norm_trains_in_every_tasks_network(task_name: str, norm: str) -> None:
    task, cfg = _shrunk(task_name, _fitting_spec(norm))
    net = task.build_network(cfg).train()
    out = net(torch.randn(2, *task.input_shape(cfg)))
    out = out[0] if isinstance(out, tuple) else out
    out.square().mean().backward()
    assert torch.isfinite(out).all()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


@pytest.mark.parametrize("task_name", list_tasks())
def test_a_norm_with_its_own_activation_trains_in_every_tasks_network(task_name: str, act_norm: str) -> None:
    task = get_task(task_name)
    cfg = task.shrink(parse_config(task, ["--config", str(CONFIGS / task_name / "quick.yaml"), "--norm", act_norm],
                                   raise_errors=True))
    net = task.build_network(cfg).train()
    out = net(torch.randn(2, *task.input_shape(cfg)))
    (out[0] if isinstance(out, tuple) else out).square().mean().backward()
    assert any(normlayers.applies_own_activation(m) for _, m, _ in find_norm_layers(net)) or task_name == "nas"
