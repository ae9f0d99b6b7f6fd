"""Every registered task, through the contract: its quick config, shrunk, runs end to end into a record
that agrees with what the task declares. A task added later is covered without a line of test code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tasks.registry import get_task, list_tasks
from tasks.runner.config import RunConfig
from tasks.runner.outcomes import eval_items_hash, read_outcomes
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
    check_outcomes(name, cfg, record, outcome.run_dir)


def expected_items(name: str, cfg: Any) -> dict[str, int] | None:
    """Items per outcome set of the shrunk quick runs (their test splits have 10,000 images); None: not known here."""
    images = max(1, round(cfg.data.test_fraction * 10000)) if hasattr(cfg.data, "test_fraction") else 0
    if name in ("classification", "nas"):
        return {"test": images}
    if name == "adversarial":
        return {"test": images, "robust": cfg.eval.robust_samples or images}
    if name == "uda":
        return {"source_test": images, "target_test": images}
    if name == "fewshot":
        cross = [cfg.data.cross_domain] if cfg.data.cross_domain != "none" else []
        return {s: cfg.episodes.test_episodes for s in ["test", *cross]}
    return None


def check_outcomes(name: str, cfg: RunConfig, record: dict[str, Any], run_dir: Path) -> None:
    """outcomes.json: the expected items, and every column named after a record metric has that metric as its mean."""
    assert record["outcome_file"] == "outcomes.json"
    sets = read_outcomes(run_dir / "outcomes.json")
    assert record["eval_items_hash"] == eval_items_hash([s.item_ids_hash for s in sets])
    expected = expected_items(name, cfg)
    if expected is not None:
        assert {s.name: s.n for s in sets} == expected
    reproduced = set()
    for s in sets:
        for key, column in [*s.columns.items(), *s.values.items()]:
            assert len(column) == s.n
            if key in record:  # the record keeps float32 values as logged
                assert abs(float(np.mean(column)) - record[key]) <= 1e-6, (s.name, key, np.mean(column), record[key])
                reproduced.add(key)
    tested = {m.name for m in get_task(name).metrics(cfg) if m.name.startswith("test/") and m.unit == "fraction"}
    assert tested and tested | {f"last/{m}" for m in tested} <= reproduced, reproduced
