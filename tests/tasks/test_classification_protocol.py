"""Classification protocol options of issue 19: GN's median-of-last-5 rule and paper_imagenet's weight decay."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from tasks.classification.module import median_of_last
from tasks.classification.task import CLASSIFICATION, MEDIAN_METRIC
from tasks.cli import main
from tasks.runner.parse import parse_config
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")


def test_median_of_last_five() -> None:
    assert median_of_last([0.1, 0.5, 0.3, 0.9, 0.2, 0.4]) == pytest.approx(0.4)  # of 0.5, 0.3, 0.9, 0.2, 0.4
    assert median_of_last([0.1, 0.2, 0.3, 0.4]) is None


def test_median_last5_is_the_primary_metric_and_matches_the_logged_epochs(tmp_path: Path) -> None:
    cfg = parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--trainer.epochs", "6",
                                        "--selection", "median_last5", "--data.fraction", "0.001"], raise_errors=True)
    outcome = execute(cfg, CLASSIFICATION)
    assert outcome.status == "finished", outcome.message
    record = outcome.record
    with (outcome.run_dir / "metrics.csv").open() as f:
        logged = [float(row["val/acc"]) for row in csv.DictReader(f) if row["val/acc"]]
    assert len(logged) == 6 and record["val_acc_per_epoch"] == pytest.approx(logged, abs=1e-6)
    assert record[MEDIAN_METRIC] == pytest.approx(statistics.median(logged[-5:]), abs=1e-6)
    assert record["primary_metric"] == MEDIAN_METRIC
    assert record["selection"]["rule"] == "last; median of the last 5 epochs' val/acc"
    assert record["protocol"] == {"norm_weight_decay": True, "selection": "median_last5"}
    assert record["test/acc"] == record["last/test/acc"]  # the test metrics are the last checkpoint's


def test_median_last5_needs_five_epochs(tmp_path: Path, capsys) -> None:
    code = main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path),
                 "--selection", "median_last5", "--trainer.epochs", "3"])
    assert code == 2 and "selection=median_last5 needs trainer.epochs >= 5" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_paper_imagenet_follows_the_gn_recipe_it_cites() -> None:
    cfg = parse_config(CLASSIFICATION, ["--config", str(REPO / "configs" / "classification" / "paper_imagenet.yaml")],
                       raise_errors=True)
    assert cfg.optim.weight_decay == pytest.approx(1e-4) and cfg.optim.norm_weight_decay is True
    assert CLASSIFICATION.protocol(cfg)["norm_weight_decay"] is True
