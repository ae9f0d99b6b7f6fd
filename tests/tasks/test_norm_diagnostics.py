"""The norm diagnostics callback (tasks/runner/diagnostics.py) on tiny classification runs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from normlayers import create_norm, find_norm_layers
from tasks.classification.task import CLASSIFICATION
from tasks.registry import get_task, list_tasks
from tasks.runner.config import DiagnosticsConfig
from tasks.runner.diagnostics import NormDiagnostics, planned_steps, preserved_state
from tasks.runner.errors import ConfigError
from tasks.runner.parse import parse_config
from tasks.runner.prepare import prepare
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")
ON = ["--diagnostics.norm_stats", "true", "--diagnostics.probe_size", "64", "--diagnostics.points", "2"]


def config(out: Path, *args: str):
    return parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--out_dir", str(out), "--trainer.epochs", "1",
                                         *args], raise_errors=True)


def test_planned_steps_spread_over_the_run_or_as_listed() -> None:
    assert planned_steps(DiagnosticsConfig(points=4), 100) == [25, 50, 75, 100]
    assert planned_steps(DiagnosticsConfig(points=3), 2) == [1, 2]
    assert planned_steps(DiagnosticsConfig(steps=[0, 7, 500]), 100) == [0, 7]


def test_a_probe_smaller_than_two_batches_is_refused_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="probe_size"):
        execute(config(tmp_path, "--diagnostics.norm_stats", "true", "--diagnostics.probe_size", "15"), CLASSIFICATION)
    assert not any(tmp_path.iterdir())


def test_the_probe_restores_buffers_modes_and_random_states() -> None:
    net = torch.nn.Sequential(create_norm("bn", 3), torch.nn.Dropout(0.5), create_norm("bgn:num_groups=1", 3))
    net.train()
    net[1].eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(3), random.seed(3), np.random.seed(3)
    expected = (torch.rand(1), random.random(), np.random.rand())
    torch.manual_seed(3), random.seed(3), np.random.seed(3)
    with preserved_state(net), torch.no_grad():
        net(torch.randn(4, 3, 2, 2))
        net.eval()
        random.random(), np.random.rand()
    assert (torch.rand(1), random.random(), np.random.rand()) == expected
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training and net[0].training and not net[1].training


def test_probe_pass_measures_every_pooling_of_the_registry_layers() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), create_norm("bgn:num_groups=2", 8),
                              create_norm("pn", 8), create_norm("bn", 8))
    callback = NormDiagnostics.__new__(NormDiagnostics)
    callback.batch = 4
    layers = callback.probe(net, torch.randn(16, 1, 5, 5))
    assert [(e["name"], e["groups"], e["elements_per_stat"]) for e in layers] == [
        ("1", 2, 4 * 8 * 25 // 2), ("2", 1, 8), ("3", 8, 4 * 25)]
    bgn, pn, bn = layers
    assert bgn["noise_mean"] > 0 and bgn["noise_std"] > 0 and 0 < bgn["confusion"] < 1
    assert pn["noise_mean"] is None and 0 < pn["confusion"] < 1  # per-sample statistics have no batch noise
    assert bn["confusion"] == 0.0 and not bn["mixes_channels"]  # one channel per statistic


def test_diagnostics_write_the_file_and_the_record_summary(tmp_path: Path) -> None:
    outcome = execute(config(tmp_path, "--norm", "bgn:num_groups=4", *ON), CLASSIFICATION)
    assert outcome.status == "finished"
    stats = json.loads((outcome.run_dir / "norm_stats.json").read_text())
    record = outcome.record
    steps = record["steps"]
    assert stats["planned_steps"] == [round(steps / 2), steps]
    assert [m["step"] for m in stats["measurements"]] == stats["planned_steps"] == record["diagnostics/steps"]
    layers = stats["measurements"][-1]["layers"]
    assert len(layers) == 9  # the ResNet-8's registry norms: stem, 2 per block, 2 shortcuts
    for entry in layers:
        assert set(entry) >= {"name", "role", "pooling", "shape", "groups", "elements_per_stat", "noise_mean",
                              "noise_std", "confusion"}
        assert entry["groups"] == 4 and entry["shape"][0] == 8
        assert entry["elements_per_stat"] == 8 * entry["shape"][1] * entry["shape"][2] * entry["shape"][3] // 4
    for key in ("noise_mean", "noise_std", "confusion", "elements_per_stat"):
        assert record[f"diagnostics/{key}"] == pytest.approx(stats["summary"][key])
    assert record["diagnostics/file"] == "norm_stats.json" and record["diagnostics/probe_size"] == 64


def test_training_results_are_unchanged_by_the_diagnostics(tmp_path: Path) -> None:
    plain = execute(config(tmp_path / "off", "--norm", "bn"), CLASSIFICATION).record
    measured = execute(config(tmp_path / "on", "--norm", "bn", *ON), CLASSIFICATION).record
    assert "diagnostics/noise_mean" in measured and "diagnostics/noise_mean" not in plain
    for key in ("test/acc", "test/loss", "val/acc", "val/loss", "last/test/acc", "steps"):
        assert measured[key] == plain[key], key
    # which is why diagnostics.* stay out of the comparison key: the two runs share a table
    assert measured["comparison_hash"] == plain["comparison_hash"]
    assert measured["train_order_hash"] == plain["train_order_hash"]


@pytest.mark.parametrize("task_name", list_tasks())
def test_every_task_either_has_a_probe_or_refuses_diagnostics_before_the_run(task_name: str) -> None:
    task = get_task(task_name)
    cfg = task.shrink(parse_config(task, ["--config", str(REPO / "configs" / task_name / "quick.yaml"), *ON],
                                   raise_errors=True))
    reason = task.diagnostics_support(cfg)
    if reason:  # refused in one line, before anything runs
        with pytest.raises(ConfigError, match=f"^diagnostics.norm_stats=true: {task_name} is not supported"):
            prepare(cfg, task, dry_run=False)
        return
    module, datamodule = task.build(cfg, task.stages(cfg)[0], {})
    datamodule.setup("fit")
    net, probe = task.diagnostics_probe(cfg, module, datamodule, 16, 0)
    assert probe.shape[0] == 16 and any(True for _ in find_norm_layers(net))
