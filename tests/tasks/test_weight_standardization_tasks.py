"""model.weight_standardization in every task: the networks are standardized and train, MAML adapts, DARTS takes
its unrolled step, checkpoints round-trip, and the run says so (record field, run directory, table row)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from normlayers import WSConv2d, is_standardized
from reports.schema import parse_record
from tasks.fewshot.data.episodes import Episode
from tasks.fewshot.module import build_learner
from tasks.models import build_model
from tasks.nas.bilevel import stateless_loss, unrolled_gradient
from tasks.nas.search_module import SearchModule
from tasks.registry import get_task, list_tasks
from tasks.runner.identity import identity_fields
from tasks.runner.parse import parse_config
from tasks.runner.run import execute, run_directory
from tasks.runner.rundir import semantic_differences

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(task_name: str, *args: str):
    task = get_task(task_name)
    return task, task.shrink(parse_config(task, ["--config", str(CONFIGS / task_name / "quick.yaml"), *args],
                                          raise_errors=True))


@pytest.mark.parametrize("task_name", list_tasks())
def test_every_tasks_network_is_standardized_and_trains(task_name: str) -> None:
    task, cfg = _cfg(task_name, "--model.weight_standardization", "true")
    _, plain_cfg = _cfg(task_name)
    net, plain = task.build_network(cfg).train(), task.build_network(plain_cfg)
    assert is_standardized(net) and not is_standardized(plain)
    assert list(net.state_dict()) == list(plain.state_dict())
    out = net(torch.randn(2, *task.input_shape(cfg)))
    (out[0] if isinstance(out, tuple) else out).square().mean().backward()
    assert all(m.weight.grad is not None for m in net.modules() if isinstance(m, WSConv2d))
    fields = identity_fields(cfg, task)
    assert fields["weight_standardization"] is True and identity_fields(plain_cfg, task)["weight_standardization"] is False
    assert run_directory(cfg, task).name == run_directory(plain_cfg, task).name.replace(
        f"-{fields['norm']}-", f"-{fields['norm']}+ws-")


def test_maml_adapts_a_standardized_cnn4() -> None:
    learner = build_learner("maml", in_channels=1, filters=8, norm="gn:num_groups=2", image_size=28, ways=2,
                            joint=False, inner={"inner_lr": 0.5, "train_steps": 1, "test_steps": 1, "first_order": False},
                            weight_standardization=True)
    assert is_standardized(learner)
    g = torch.Generator().manual_seed(0)
    episode = Episode(torch.randn(4, 1, 28, 28, generator=g), torch.tensor([0, 0, 1, 1]),
                      torch.randn(4, 1, 28, 28, generator=g), torch.tensor([0, 1, 0, 1]), ways=2)
    clone = learner.adaptive.clone()
    before = clone(episode.query).detach()
    clone.adapt(F.cross_entropy(clone(episode.support), episode.support_labels))
    assert isinstance(clone.module.features.blocks[0], WSConv2d)
    assert not torch.allclose(clone(episode.query), before)
    learner.meta_loss(episode).backward()  # second order through the standardized clone
    conv = learner.adaptive.module.features.blocks[0]
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_darts_unrolled_step_with_standardized_convolutions() -> None:
    module = SearchModule(norm="gn:num_groups=2", in_channels=1, num_classes=3, layers=3, channels=4, order="second",
                          fd_epsilon=0.01, weight_lr=0.025, weight_lr_min=0.001, momentum=0.9, weight_decay=3e-4,
                          grad_clip=5.0, arch_lr=3e-4, arch_betas=(0.5, 0.999), arch_weight_decay=1e-3,
                          weight_standardization=True)
    net = module.net
    assert is_standardized(net)
    named = net.named_weight_parameters()
    opt = torch.optim.SGD([p for _, p in named], lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    batch = lambda: (torch.randn(3, 1, 16, 16, generator=g), torch.tensor([0, 1, 2]))  # noqa: E731
    train, val = batch(), batch()
    result = unrolled_gradient(net, named, net.arch_parameters(), opt, train, val)
    assert all(torch.isfinite(gr).all() and gr.abs().sum() > 0 for gr in result.grads)
    # the functional (stateless) loss standardizes the weights it is handed: doubling a conv's weight changes nothing
    weights = {name: p.detach().clone() for name, p in named}
    doubled = {name: (2 * w if name.endswith("stem.0.weight") else w) for name, w in weights.items()}
    torch.testing.assert_close(stateless_loss(net, val, doubled), stateless_loss(net, val, weights), rtol=1e-4, atol=1e-5)


def test_checkpoint_round_trip_of_a_standardized_model() -> None:
    model = build_model("resnet8", norm="gn:num_groups=2", num_classes=10, in_channels=1, width=4,
                        weight_standardization=True)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    again = build_model("resnet8", norm="gn:num_groups=2", num_classes=10, in_channels=1, width=4,
                        weight_standardization=True)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(again.eval()(x), model.eval()(x))


def test_a_ws_run_records_the_option_and_reads_as_its_own_row(tmp_path: Path) -> None:
    task = get_task("classification")
    args = ["--config", str(CONFIGS / "classification" / "test.yaml"), "--out_dir", str(tmp_path),
            "--norm", "gn:num_groups=2", "--trainer.epochs", "1"]
    cfg = parse_config(task, [*args, "--model.weight_standardization", "true"], raise_errors=True)
    outcome = execute(cfg, task, use_wandb=False)
    assert outcome.status == "finished", outcome.message
    assert outcome.run_dir.name.endswith("-gn_num_groups=2+ws-bs8-s0")
    data = json.loads((outcome.run_dir / "result.json").read_text())
    assert data["weight_standardization"] is True and data["norm_label"] == "GN (G=2)"
    record = parse_record(data, outcome.run_dir / "result.json")
    assert record.norm_label == "GN (G=2) + WS" and record.norm == "gn:num_groups=2+ws"
    assert record.weight_standardization and record.norm_name == "gn"
    # a config.yaml written before the option existed resumes as the same run
    saved = {"model": {"name": "resnet8", "width": 4, "zero_init_residual": False}}
    assert semantic_differences(saved, {"model": {**saved["model"], "weight_standardization": False}}) == []
