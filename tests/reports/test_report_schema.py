"""Record schemas: schema-2 validation messages, the schema-1 upgrade, and the full grid key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from report_records import ACC, FEWSHOT_AXIS, declare, fewshot_fields, make_record

from reports.collect import RecordError, collect_runs, load_record, parse_record
from reports.record import MetricDeclaration, TableAxis


def _drop(record: dict[str, Any], dotted: str) -> None:
    *outer, last = dotted.split(".")
    target = record
    for key in outer:
        target = target[key]
    del target[last]


ACC5 = declare("test/acc5", "top-5 test accuracy")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"drop": "axis_label"}, "missing key 'axis_label'"),
        ({"drop": "coordinates"}, "missing key 'coordinates'"),
        ({"drop": "table_axis.label"}, "missing key 'table_axis.label'"),
        ({"drop": "selection.monitor"}, "missing key 'selection.monitor'"),
        ({"axis_order": "2"}, "key 'axis_order' must be int or float, got str '2'"),
        ({"axis_average": 1}, "key 'axis_average' must be bool, got int 1"),
        ({"axis_value": None}, "key 'axis_value' must be str or int or float or bool, got NoneType None"),
        ({"axis_value": 4}, "key 'axis_value' must equal batch_size (2) on the batch_size axis, got 4"),
        ({"coordinates": {"method": None}},
         "key 'coordinates.method' must be str, int, float or bool, got None"),
        ({"coordinates": {"seed": 1}}, "key 'coordinates.seed' repeats a field of the record itself"),
        ({"table_axis": FEWSHOT_AXIS}, "key 'table_axis.coordinates' names 'ways', which 'coordinates' lacks"),
        ({"metric_declarations": []}, "key 'metric_declarations' must declare at least one metric"),
        ({"metric_declarations": [{**ACC, "direction": "up"}]},
         "key 'metric_declarations[0].direction' must be 'max' or 'min', got 'up'"),
        ({"metric_declarations": [{**ACC, "unit": "%"}]},
         "key 'metric_declarations[0].unit' must be one of 'fraction', 'percent', 'count', 'seconds', '', got '%'"),
        ({"metric_declarations": [ACC, {**ACC5, "primary": "no"}]},
         "key 'metric_declarations[1].primary' must be bool, got str 'no'"),
        ({"metric_declarations": [{**ACC, "primary": False}, ACC5]},
         "key 'metric_declarations' must mark exactly one metric primary, found none"),
        ({"metric_declarations": [ACC, {**ACC5, "primary": True}]},
         "key 'metric_declarations' must mark exactly one metric primary, found 'test/acc', 'test/acc5'"),
        ({"metric_declarations": [ACC, ACC]}, "key 'metric_declarations[1]' declares 'test/acc' a second time"),
        ({"metric_declarations": [{**ACC, "interval": "test/acc"}]},
         "key 'metric_declarations[0].interval' names the metric itself ('test/acc')"),
        ({"metric_declarations": [{**ACC, "interval": "test/acc_ci95"}]},
         "metric 'test/acc' declares interval 'test/acc_ci95', which this finished run lacks"),
        ({"primary_metric": "test/acc5"}, "key 'primary_metric' is 'test/acc5' but 'metric_declarations' says 'test/acc'"),
        ({"primary_mode": "min"}, "key 'primary_mode' is 'min' but 'metric_declarations' says 'max'"),
        ({"world_size": 0}, "key 'world_size' must be >= 1, got 0"),
        ({"schema": 3}, "record schema 3 is not supported (this reporter reads schemas 1, 2)"),
    ],
)
def test_bad_schema2_record_is_skipped_with_file_and_key(tmp_path: Path, write_record, change, expected) -> None:
    good = write_record("bn", 2, 0)
    record = json.loads(good.read_text())
    if "drop" in change:
        _drop(record, change["drop"])
    else:
        record.update(change)
    bad = write_record("bn", 2, 1, raw=json.dumps(record))
    with pytest.raises(RecordError) as info:
        load_record(bad)
    assert str(info.value) == f"{bad}: {expected}"
    collection = collect_runs(tmp_path / "runs")
    assert [r.path for r in collection.records] == [good]
    assert collection.problems == [f"skipped {bad}: {expected}"]


def test_failed_run_may_lack_its_interval(write_record) -> None:
    record = load_record(write_record("ln", 2, 0, acc=None, status="failed", **fewshot_fields(5, 1, ci95=None)))
    assert record.status == "failed" and record.metrics == {}


def test_schema2_record_fields(write_record) -> None:
    record = load_record(write_record("bn", 4, 1, acc=0.6, **fewshot_fields(5, 1, ci95=0.01)))
    assert record.schema == 2 and record.coordinates == {"method": "protonet", "ways": 5, "shots": 1}
    assert record.table_axis == TableAxis("ways_shots", "ways/shots", ("ways", "shots"))
    assert (record.axis_value, record.axis_label, record.axis_order) == ("5w1s", "5-way 1-shot", 501.0)
    assert record.metrics == {"test/acc": 0.6, "test/acc_ci95": 0.01}  # the interval travels with its metric
    assert (record.primary_metric, record.primary_mode, record.report_metrics) == ("test/acc", "max", ("test/acc",))
    assert (record.selection, record.selection_monitor) == ("best val/acc", "val/acc")
    context = record.context
    assert context.coordinates == (("method", "protonet"),)  # ways and shots are the axis
    assert (context.axis, context.batch_size, context.protocol) == ("ways_shots", 4, (("norm_mode", "transductive"),))
    assert context.parts() == ("method=protonet", "bs=4", "norm_mode=transductive")


def test_schema1_is_upgraded_on_read(write_record) -> None:
    path = write_record("bgn:num_groups=4", 8, 2, acc=0.8125, schema=1,
                        report_metrics=["test/acc", "test/acc5"], **{"test/acc5": 0.99})
    record = load_record(path)
    assert record.schema == 1 and record.coordinates == {} and record.protocol == {}
    assert record.table_axis == TableAxis("batch_size", "batch size per device", ())
    assert (record.axis_value, record.axis_label, record.axis_order, record.axis_average) == (8, "bs=8", 8.0, False)
    assert record.declarations == (
        MetricDeclaration("test/acc", "test accuracy", "max", "fraction", True, None),
        MetricDeclaration("test/acc5", "top-5 test accuracy", "max", "fraction", False, None),
    )
    assert (record.selection, record.selection_monitor) == ("last", None)  # schema 1 tested the final weights
    assert record.metrics == {"test/acc": 0.8125, "test/acc5": 0.99} and record.notes == ()


def test_schema1_primary_mode_is_the_primary_direction() -> None:
    record = parse_record(make_record("bn", 2, 0, schema=1, primary_mode="min"), Path("r.json"))
    assert record.primary.direction == "min"


def test_schema1_metric_outside_the_legacy_table_is_left_out_with_a_warning(tmp_path: Path, write_record) -> None:
    path = write_record("bn", 2, 0, acc=0.9, schema=1, report_metrics=["test/acc", "test/loss"],
                        **{"test/loss": 0.3})
    collection = collect_runs(tmp_path / "runs")
    (record,) = collection.records
    assert record.report_metrics == ("test/acc",) and "test/loss" not in record.metrics
    assert collection.problems == []  # kept: only the metric is left out
    assert collection.warnings == [
        f"{path}: schema-1 metric 'test/loss' left out: schema 1 did not declare what it means "
        "(known: test/acc, test/acc5)"]


def test_schema1_record_whose_primary_is_unknown_is_skipped(tmp_path: Path, write_record) -> None:
    path = write_record("bn", 2, 0, acc=None, schema=1, primary_metric="test/loss", primary_mode="min",
                        report_metrics=["test/loss"], **{"test/loss": 0.3})
    collection = collect_runs(tmp_path / "runs")
    assert collection.records == []
    assert collection.problems == [
        f"skipped {path}: schema-1 primary metric 'test/loss' has no known meaning (schema 1 wrote only "
        "test/acc, test/acc5); rewrite the record as schema 2"]


def test_duplicate_check_uses_the_full_grid_key(tmp_path: Path, write_record) -> None:
    # One norm, batch size and seed, but another method, world size, precision or protocol: all kept.
    kept = [
        write_record("bn", 2, 0, coordinates={"method": "pgd_at"}),
        write_record("bn", 2, 0, coordinates={"method": "trades"}),
        write_record("bn", 2, 0, world_size=2),
        write_record("bn", 2, 0, precision="bf16-mixed"),
        write_record("bn", 2, 0, protocol={"domain_batches": "separate"}, run_id="separate"),
    ]
    # sorts after quick/: the earlier path is kept
    twin = write_record("bn", 2, 0, coordinates={"method": "trades"}, sweep="rerun")
    collection = collect_runs(tmp_path / "runs")
    assert sorted(r.path for r in collection.records) == sorted(kept)
    assert collection.problems == [f"skipped {twin}: same grid point and seed as {kept[1]} (counted once)"]


def test_records_that_disagree_on_a_metric_are_not_averaged(tmp_path: Path, write_record) -> None:
    first = write_record("bn", 2, 0, acc=0.9)
    second = write_record("bn", 2, 1, acc=90.0, metric_declarations=[{**ACC, "unit": "percent"}])
    collection = collect_runs(tmp_path / "runs")
    assert [r.path for r in collection.records] == [first]
    (problem,) = collection.problems
    assert problem.startswith(f"skipped {second}: declares metric 'test/acc' as max/percent/")
    assert f"but {first} declares it as max/fraction/" in problem and "never averaged" in problem


def test_records_that_name_different_primaries_are_not_averaged(tmp_path: Path, write_record) -> None:
    first = write_record("bn", 2, 0, acc=0.9)
    second = write_record("bn", 2, 1, acc=None, metric_declarations=[declare("test/acc5", primary=True)],
                          **{"test/acc5": 0.99})
    collection = collect_runs(tmp_path / "runs")
    assert [r.path for r in collection.records] == [first]
    assert collection.problems == [
        f"skipped {second}: declares primary metric 'test/acc5', but {first} declares 'test/acc' for the same "
        "table (runs that disagree on a metric are never averaged)"]
