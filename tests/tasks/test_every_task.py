"""Every registered task, through the contract: its quick config, shrunk, runs end to end into a record
that agrees with what the task declares. A task added later is covered without a line of test code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.registry import get_task, list_tasks
from tasks.runner.parse import parse_config
from tasks.runner.run import execute

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", list_tasks())
def test_a_shrunk_quick_run_matches_the_tasks_declarations(name: str, tmp_path: Path) -> None:
    task = get_task(name)
    cfg = task.shrink(parse_config(task, ["--config", str(CONFIGS / name / "quick.yaml"), "--out_dir", str(tmp_path)],
                                   raise_errors=True))
    outcome = execute(cfg, task, use_wandb=False)
    assert outcome.status == "finished", outcome.message
    record = json.loads((outcome.run_dir / "result.json").read_text())
    declared = task.metrics(cfg)
    assert record["metric_declarations"] == [m.declaration() for m in declared]
    assert record["coordinates"] == task.coordinates(cfg)
    assert all(f"{k}=" in outcome.run_dir.name for k in record["coordinates"])
    for metric in declared:
        value = record[metric.name]
        if metric.unit == "fraction":
            assert 0.0 <= value <= 1.0, (metric.name, value)
        if metric.name.startswith("test/"):  # measured on a checkpoint: the last one's value is reported too
            assert f"last/{metric.name}" in record
        if metric.interval:
            assert record[metric.interval] >= 0
    assert record["table_axis"] == task.table_axis.declaration()
    assert record["axis_label"] == task.axis_point(cfg).label and record["batch_size"] == task.normalization_batch(cfg)
    assert record["selection"] == task.selection(cfg).declaration()
    assert record["train_images_per_s"] > 0 and record["steps"] > 0
