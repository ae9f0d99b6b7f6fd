"""Collecting records: recursive search, validation, skipped files, incomplete runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.collect import RecordError, collect_runs, load_record


def test_collects_every_record_and_the_incomplete_run(golden_runs: Path) -> None:
    collection = collect_runs(golden_runs)
    assert len(collection.records) == 32  # all seeds of the golden grid
    assert collection.count("finished") == 25
    assert collection.count("failed") == 4
    assert collection.count("diverged") == 3
    assert collection.problems == []
    assert [p.name for p in collection.incomplete] == ["classification-fashion_mnist-pn-bs2-s0"]
    paths = [r.path for r in collection.records]
    assert paths == sorted(paths)  # deterministic order


def test_record_fields(write_record) -> None:
    path = write_record("bgn:num_groups=4", 8, 2, acc=0.8125)
    record = load_record(path)
    assert (record.task, record.dataset, record.model) == ("classification", "fashion_mnist", "resnet20")
    assert (record.norm, record.norm_name, record.norm_label, record.norm_num_groups) == (
        "bgn:num_groups=4", "bgn", "BGN (G=4)", 4)
    assert (record.batch_size, record.seed, record.sweep, record.status) == (8, 2, "quick", "finished")
    assert record.metrics == {"test/acc": 0.8125}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"drop": "batch_size"}, "missing key 'batch_size'"),
        ({"batch_size": "8"}, "key 'batch_size' must be int, got str '8'"),
        ({"batch_size": True}, "key 'batch_size' must be int, got bool True"),
        ({"norm_num_groups": 1.5}, "key 'norm_num_groups' must be int or null"),
        ({"status": "running"}, "key 'status' must be one of 'finished', 'failed', 'diverged'"),
        ({"primary_mode": "up"}, "key 'primary_mode' must be 'max' or 'min'"),
        ({"schema": 3}, "record schema 3 is not supported (this reporter reads schemas 1, 2)"),
        ({"test/acc": "high"}, "metric 'test/acc' must be a number"),
        ({"drop": "test/acc"}, "finished run lacks its primary metric 'test/acc'"),
        ({"report_metrics": "test/acc"}, "key 'report_metrics' must be list"),
    ],
)
def test_malformed_record_is_skipped_with_file_and_key(
    tmp_path: Path, write_record, change, expected
) -> None:
    good = write_record("bn", 2, 0)
    record = json.loads(good.read_text())
    if "drop" in change:
        del record[change["drop"]]
    else:
        record.update(change)
    bad = write_record("bn", 2, 1, raw=json.dumps(record))
    with pytest.raises(RecordError, match="^" + str(bad).replace("\\", "\\\\")):
        load_record(bad)
    collection = collect_runs(tmp_path / "runs")
    assert [r.path for r in collection.records] == [good]
    assert len(collection.problems) == 1
    assert str(bad) in collection.problems[0] and expected in collection.problems[0]


def test_invalid_json_and_non_object(tmp_path: Path, write_record) -> None:
    write_record("bn", 2, 0, raw="{not json")
    write_record("bn", 2, 1, raw="[1, 2]")
    write_record("bn", 2, 2)
    collection = collect_runs(tmp_path / "runs")
    assert len(collection.records) == 1
    assert any("not valid JSON (line 1" in p for p in collection.problems)
    assert any("expected a JSON object, got list" in p for p in collection.problems)


def test_failed_run_without_metrics_is_valid(write_record) -> None:
    record = load_record(write_record("ln", 2, 0, acc=None, status="failed"))
    assert record.status == "failed" and record.metrics == {} and record.error == "run failed"


def test_duplicate_grid_point_counted_once(tmp_path: Path, write_record) -> None:
    first = write_record("bn", 2, 0, acc=0.5, sweep="a")
    second = write_record("bn", 2, 0, acc=0.6, sweep="b")
    collection = collect_runs(tmp_path / "runs")
    assert [r.path for r in collection.records] == [first]
    assert str(second) in collection.problems[0] and "same grid point and seed" in collection.problems[0]


def test_incomplete_detection_ignores_wandb_and_excluded_dirs(tmp_path: Path, write_record) -> None:
    done = write_record("bn", 2, 0).parent
    (done / "wandb" / "offline-run-1" / "files").mkdir(parents=True)
    (done / "wandb" / "offline-run-1" / "files" / "config.yaml").write_text("x: 1\n")
    running = tmp_path / "runs" / "quick" / "running"
    (running / "checkpoints").mkdir(parents=True)
    (running / "wandb" / "files").mkdir(parents=True)
    (running / "wandb" / "files" / "config.yaml").write_text("x: 1\n")
    out = tmp_path / "runs" / "report"
    (out / "plots").mkdir(parents=True)
    (out / "metrics.csv").write_text("")  # would look like a run if not excluded
    collection = collect_runs(tmp_path / "runs", exclude=[out])
    assert collection.incomplete == [running]
    assert len(collection.records) == 1


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="runs folder not found"):
        collect_runs(tmp_path / "nope")
