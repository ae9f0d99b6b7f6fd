"""GN in the harness: the IN refusal at the dry run, and the groups each layer got in the record (issue 19)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from normlayers import GroupNorm
from tasks.classification.task import CLASSIFICATION
from tasks.cli import main
from tasks.runner import prepare as prepare_module
from tasks.runner import world
from tasks.runner.parse import parse_config
from tasks.runner.prepare import prepare
from tasks.runner.run import execute
from tasks.sweep.expand import expand_sweep
from tasks.sweep.spec import load_sweep
from tasks.uda import task as uda_task

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")  # ResNet-8 at width 4: C = 4, 8, 16


def _config(tmp_path: Path, *args: str):
    return parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--out_dir", str(tmp_path), *args], raise_errors=True)


def test_a_gn_that_is_in_on_every_layer_is_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    code = main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--norm", "gn"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "norm gn:num_groups=32: every GN layer has 1 channel per group (C=4/8/16), so it is IN: use `in`" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not any(tmp_path.iterdir())


def test_allow_instance_runs_it_and_a_partly_in_gn_is_not_refused(tmp_path: Path) -> None:
    assert prepare(_config(tmp_path, "--norm", "gn:allow_instance=true"), CLASSIFICATION).norm == \
        "gn:allow_instance=true,num_groups=32"
    assert prepare(_config(tmp_path, "--norm", "gn:num_groups=8"), CLASSIFICATION).norm == "gn:num_groups=8"


def test_the_record_has_each_layers_groups_and_the_label_what_ran(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "--norm", "gn:num_groups=8", "--trainer.epochs", "1")
    outcome = execute(cfg, CLASSIFICATION)
    assert outcome.status == "finished", outcome.message
    record = outcome.record
    net = CLASSIFICATION.build_network(cfg)
    expected = {f"net.{n}": m.num_groups for n, m in net.named_modules() if isinstance(m, GroupNorm)}
    assert record["norm_groups_per_layer"] == expected and set(expected.values()) == {4, 8}
    assert record["norm_channels_per_group"] == {
        f"net.{n}": m.num_channels // m.num_groups for n, m in net.named_modules() if isinstance(m, GroupNorm)}
    assert record["norm"] == "gn:num_groups=8" and record["norm_num_groups"] == 8
    assert record["norm_label"] == "GN (G<=8: 4/8/8 at C=4/8/16)"  # what tables show: 4 and 8 channels got G=C


def test_channels_per_group_runs_with_its_own_label(tmp_path: Path) -> None:
    outcome = execute(_config(tmp_path, "--norm", "gn:channels_per_group=2", "--trainer.epochs", "1"), CLASSIFICATION)
    assert outcome.status == "finished", outcome.message
    assert outcome.record["norm_label"] == "GN (C/G=2)" and outcome.record["norm_num_groups"] is None
    assert set(outcome.record["norm_channels_per_group"].values()) == {2}
    assert set(outcome.record["norm_groups_per_layer"].values()) == {2, 4, 8}


SWEEPS = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in SWEEPS if "gn" in repr(yaml.safe_load(p.read_text())).replace("bgn", "")],
                         ids=lambda p: p.name)
def test_every_shipped_sweeps_gn_is_gn_on_every_layer(path: Path, tmp_path: Path, monkeypatch) -> None:
    """Issue 19: shipped grids use a GN with >= 2 channels per group on every layer of every network they build."""
    monkeypatch.setattr(world, "gpu_count", lambda: 8)
    monkeypatch.setattr(prepare_module, "gpu_count", lambda: 8)
    monkeypatch.setattr(prepare_module, "_dry_run_verdicts", {})  # build every model again, here
    monkeypatch.setattr(uda_task, "_dry_run_verdicts", {})  # UDA caches its own dry pass too
    seen: list[tuple[str, list]] = []
    original = prepare_module.instance_only_reason
    monkeypatch.setattr(prepare_module, "instance_only_reason",
                        lambda spec, built: seen.append((spec, list(built))) or original(spec, built))
    planned = expand_sweep(dataclasses.replace(load_sweep(path), out_dir=tmp_path))
    assert planned and not [r.reason for r in planned if r.state == "invalid"]
    layers = [(spec, c, g) for spec, built in seen if spec.startswith("gn") for c, g, _ in built]
    assert layers, "no GN layer was built"
    assert not [(spec, c, g) for spec, c, g in layers if c // g < 2]  # (spec, channels, groups) of IN layers
