"""GN in the harness: the IN refusal at the dry run, and the groups each layer got in the record (issue 19)."""

from __future__ import annotations

from pathlib import Path

from normlayers import GroupNorm
from tasks.classification.task import CLASSIFICATION
from tasks.cli import main
from tasks.runner.parse import parse_config
from tasks.runner.prepare import prepare
from tasks.runner.run import execute

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
