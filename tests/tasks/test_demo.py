"""`make demo`: its sweep covers what the five-task benchmark promises, and the entry point ends with the summary."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from tasks import demo
from tasks.registry import get_task
from tasks.sweep.expand import expand_sweep
from tasks.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> list:
    """The demo's grid, expanded (each point checked as `normbench run` checks it) into an empty folder."""
    sweep = dataclasses.replace(load_sweep(demo.DEMO_SWEEP), out_dir=tmp_path_factory.mktemp("runs"))
    return expand_sweep(sweep)


def test_the_demo_sweep_runs_four_norms_at_two_axis_settings_of_every_task(planned: list) -> None:
    assert all(run.state == "new" for run in planned), [(run.label, run.reason) for run in planned if run.state != "new"]
    settings: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for run in planned:
        cfg = run.config
        assert cfg is not None and cfg.seed == 0
        settings[run.task][cfg.norm].add(get_task(run.task).axis_point(cfg).label)
    assert list(settings) == ["classification", "nas", "adversarial", "fewshot", "uda"]
    for task, per_norm in settings.items():
        assert sorted(per_norm) == sorted(["bn", "ln", "gn:num_groups=4", "bgn:num_groups=16"]), task
        assert len({frozenset(axis) for axis in per_norm.values()}) == 1, f"{task}: every norm at the same settings"
        assert all(len(axis) == 2 for axis in per_norm.values()), (task, dict(per_norm))
    assert settings["classification"]["bn"] == {"bs=2", "bs=128"}
    assert settings["adversarial"]["bn"] == {"bs=2", "bs=32"}
    assert settings["fewshot"]["bn"] == {"5-way 1-shot", "5-way 5-shot"}
    assert len(planned) == 40


def test_the_demo_declares_the_issues_summary_columns_before_any_run(planned: list) -> None:
    declared = {}
    for run in planned:
        cfg = run.config
        columns = cfg.summary or list(get_task(run.task).summary_columns(cfg))
        declared.setdefault(run.task, [(c.axis, dict(c.where)) for c in columns])
        # and every run of a task declares the same columns (a column is fixed before the results)
        assert declared[run.task] == [(c.axis, dict(c.where)) for c in columns], run.label
    assert declared == {
        "classification": [("min", {}), ("max", {})],
        "nas": [("max", {"genotype": "DARTS_V2"})],
        "adversarial": [("max", {"method": "pgd_at"})],
        "fewshot": [("5-way 1-shot", {"method": "protonet"})],
        "uda": [("average", {"method": "dann"})],
    }


def test_the_demo_entry_point_runs_a_sweep_and_ends_with_the_cross_task_summary(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "tiny",
        "tasks": [{"task": "classification", "config": str(REPO / "configs/classification/test.yaml"),
                   "overrides": {"trainer.epochs": 1, "summary": [{"label": "tiny column", "axis": "max"}]}}],
        "norms": ["bn", "bgn:num_groups=2"],
        "batch_sizes": [8],
        "seeds": [0],
    }))
    assert demo.main([str(tmp_path / "runs"), "--sweep", str(sweep)]) == 0
    out = capsys.readouterr().out
    summary = out[out.index("Cross-task summary"):]
    header = next(line for line in summary.splitlines() if line.startswith("| Norm"))
    assert "tiny column" in header and header.rstrip().endswith("Avg. rank |")
    rows = [line for line in summary.splitlines() if line.startswith(("| BN", "| BGN"))]
    assert [row.split("|")[1].strip() for row in rows] == ["BN", "BGN (G=2)"]
    assert (tmp_path / "runs" / "tiny" / "report" / "summary.md").is_file()
    assert "demo finished in" in out and str(tmp_path / "runs" / "tiny" / "report" / "index.html") in out
