"""Every YAML under configs/ is parsed, checked and dry-run: a renamed key breaks this test, not a cluster job.

Run configs go through exactly what ``normbench run`` does before training
(parse, field rules, shared rules, the task's checks, a dry forward pass on
zeros of the data set's shape at batch 2), without needing the data on disk.
Sweep files are expanded the same way, grid point by grid point. GPU profiles
are checked with a pretended GPU count, since this machine has none.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tasks.registry import get_task, list_tasks
from tasks.runner import prepare as prepare_module
from tasks.runner import world
from tasks.runner.parse import parse_config
from tasks.runner.prepare import prepare
from tasks.sweep.expand import expand_sweep
from tasks.sweep.spec import load_sweep

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RUN_CONFIGS = sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name != "sweeps")
SWEEP_FILES = sorted((CONFIGS / "sweeps").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _pretend_gpus(monkeypatch) -> None:
    monkeypatch.setattr(world, "gpu_count", lambda: 8)
    monkeypatch.setattr(prepare_module, "gpu_count", lambda: 8)


def test_every_config_folder_belongs_to_a_task() -> None:
    folders = {p.parent.name for p in RUN_CONFIGS}
    assert folders <= set(list_tasks()), f"config folders without a task: {folders - set(list_tasks())}"
    assert "classification" in folders and RUN_CONFIGS and SWEEP_FILES


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_run_config_parses_checks_and_dry_runs(path: Path) -> None:
    task = get_task(path.parent.name)
    cfg = parse_config(task, ["--config", str(path)], raise_errors=True)
    checked = prepare(cfg, task)  # raises ConfigError on any problem, dry forward pass included
    assert checked.profile in ("quick", "medium", "full", "paper", "custom")
    small = prepare(dataclasses.replace(checked, batch_size=2), task)  # the dry pass at batch 2 as well
    assert small.batch_size == 2


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_sweep_file_expands_into_valid_runs(path: Path, tmp_path: Path) -> None:
    sweep = dataclasses.replace(load_sweep(path), out_dir=tmp_path)
    planned = expand_sweep(sweep)
    invalid = [f"{r.label}: {r.reason}" for r in planned if r.state == "invalid"]
    assert planned and not invalid, invalid
    assert len({r.run_dir for r in planned}) == len(planned)
