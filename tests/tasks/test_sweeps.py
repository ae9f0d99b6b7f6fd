"""Sweep files, their expansion, skip/resume through a fake launcher, and the real launchers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tasks.classification.module import ClassificationModule
from tasks.runner.errors import ConfigError
from tasks.runner.record import write_json_atomic
from tasks.sweep import command as sweep_cmd
from tasks.sweep.command import sweep_command
from tasks.sweep.expand import expand_sweep, override_args
from tasks.sweep.launchers import LocalLauncher, RunResult, SubmititLauncher
from tasks.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")


def write_sweep(tmp_path: Path, **fields) -> Path:
    data = {
        "name": "t",
        "out_dir": str(tmp_path / "runs"),
        "tasks": [{"task": "classification", "config": TEST_CONFIG}],
        "norms": ["bn", "bgn:num_groups=2"],
        "batch_sizes": [4, 8],
        "seeds": [0, 1],
        "overrides": {"trainer.epochs": 1, "optim.milestones": [0.5]},
    }
    data.update(fields)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_expansion_covers_the_grid_with_stable_directories(tmp_path: Path) -> None:
    sweep = load_sweep(write_sweep(tmp_path))
    runs = expand_sweep(sweep)
    assert len(runs) == 2 * 2 * 2 and {r.state for r in runs} == {"new"}
    names = [r.run_dir.name for r in runs]
    assert names[0] == "classification-fashion_mnist-resnet8-bn-bs4-s0"
    assert "classification-fashion_mnist-resnet8-bgn_num_groups=2-bs8-s1" in names
    assert all(r.run_dir.parent == tmp_path / "runs" / "t" for r in runs)
    assert runs[0].config.trainer.epochs == 1 and runs[0].config.optim.milestones == [0.5]
    assert runs[0].config.sweep == "t"
    # expanding again gives the same plan
    assert [r.run_dir for r in expand_sweep(sweep)] == [r.run_dir for r in runs]


def test_the_plan_is_seed_major_across_task_entries(tmp_path: Path) -> None:
    entries = [{"task": "classification", "config": TEST_CONFIG},
               {"task": "classification", "config": TEST_CONFIG, "grid": {"data.augment": ["none"]}}]
    runs = expand_sweep(load_sweep(write_sweep(tmp_path, tasks=entries, batch_sizes=[8], seeds=[1, 0])))
    names = [r.run_dir.name for r in runs]
    # every point of seed 0 (both entries, both norms) before any of seed 1; otherwise the file's order
    assert names == [f"classification-fashion_mnist-resnet8{grid}-{norm}-bs8-s{seed}"
                     for seed in (0, 1) for grid in ("", "-data.augment=none") for norm in ("bn", "bgn_num_groups=2")]


def test_override_values_become_cli_arguments() -> None:
    assert override_args({"trainer.epochs": 2, "data.augment": "none", "x.flag": True, "x.list": [1, 2]}) == [
        "--trainer.epochs", "2", "--data.augment", "none", "--x.flag", "true", "--x.list", "[1, 2]",
    ]


def test_run_states_come_from_disk(tmp_path: Path) -> None:
    sweep = load_sweep(write_sweep(tmp_path, seeds=[0], batch_sizes=[4]))
    bn, bgn = expand_sweep(sweep)
    write_json_atomic(bn.run_dir / "result.json", {"status": "finished"})
    (bgn.run_dir / "checkpoints").mkdir(parents=True)
    (bgn.run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert [r.state for r in expand_sweep(sweep)] == ["done", "resume"]
    write_json_atomic(bgn.run_dir / "result.json", {"status": "failed", "error": "boom"})
    (bgn.run_dir / "checkpoints" / "last.ckpt").unlink()
    states = expand_sweep(sweep)
    assert [(r.state, r.reason) for r in states] == [("done", "finished"), ("retry", "boom")]


class FakeLauncher:
    """Writes a finished record for each run it is given, like a launcher whose runs all succeed."""

    calls: list[list[str]] = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def launch(self, runs, progress=print):
        FakeLauncher.calls.append([r.run_dir.name for r in runs])
        for r in runs:
            write_json_atomic(r.run_dir / "result.json", {"status": "finished"})
        return [RunResult(r, "finished") for r in runs]


def test_sweep_skips_finished_runs_and_launches_the_rest(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sweep_cmd, "LocalLauncher", FakeLauncher)
    FakeLauncher.calls = []
    path = write_sweep(tmp_path)
    first = expand_sweep(load_sweep(path))
    write_json_atomic(first[0].run_dir / "result.json", {"status": "finished"})  # done before
    write_json_atomic(first[1].run_dir / "result.json", {"status": "diverged"})  # final too
    assert sweep_command([str(path)]) == 0
    assert FakeLauncher.calls == [[r.run_dir.name for r in first[2:]]]
    assert "6 finished, 2 skipped (done before)" in capsys.readouterr().out
    assert sweep_command([str(path)]) == 0  # everything done: nothing launched
    assert len(FakeLauncher.calls) == 1
    assert "0 finished, 8 skipped" in capsys.readouterr().out


def test_dry_run_lists_states_and_runs_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sweep_cmd, "LocalLauncher", FakeLauncher)
    FakeLauncher.calls = []
    path = write_sweep(tmp_path, norms=["bn", "bgn:num_groups=2", "bn"], batch_sizes=[1, 4], seeds=[0])
    assert sweep_command([str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert FakeLauncher.calls == []
    assert "4 runs: 2 invalid, 2 new" in out  # duplicate norm removed; batch 1 with batch statistics is invalid
    assert "uses batch statistics" in out


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"norms": ["bn", "bgx"]}, "unknown norm 'bgx'"),
        ({"batch_sizes": [0]}, "batch_sizes must be a list of integers >= 1"),
        ({"tasks": []}, "tasks must be a non-empty list"),
        ({"tasks": [{"task": "segmentation"}]}, "unknown task 'segmentation'"),
        ({"tasks": [{"task": "classification", "config": "missing.yaml"}]}, "config file 'missing.yaml' not found"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"overrides": {"norm": "bn"}}, "may not set 'norm'"),
        ({"name": "a b"}, "may only contain"),
    ],
)
def test_bad_sweep_files_give_one_clear_error(tmp_path: Path, fields, message, capsys) -> None:
    path = write_sweep(tmp_path, **fields)
    with pytest.raises(ConfigError, match=None) as info:
        load_sweep(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert sweep_command([str(path)]) == 2
    assert message in capsys.readouterr().err


def test_local_launcher_runs_in_process_and_a_failure_does_not_stop_the_sweep(tmp_path: Path, capsys,
                                                                             monkeypatch) -> None:
    original = ClassificationModule.training_step

    def fails_for_gn(self, batch, batch_idx):
        if self.hparams["norm"].startswith("gn"):
            raise RuntimeError("simulated failure of the gn run")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ClassificationModule, "training_step", fails_for_gn)
    path = write_sweep(tmp_path, norms=["bn", "gn:num_groups=2"], batch_sizes=[8], seeds=[0])
    assert sweep_command([str(path)]) == 1
    out = capsys.readouterr().out
    assert "1 finished, 0 skipped (done before), 1 failed" in out
    assert "RuntimeError: simulated failure of the gn run" in out
    assert "[2/2]" in out and "1 failed so far" in out  # the progress line
    records = sorted((tmp_path / "runs" / "t").glob("*/result.json"))
    statuses = sorted(json.loads(p.read_text())["status"] for p in records)
    assert statuses == ["failed", "finished"]
    finished = next(json.loads(p.read_text()) for p in records if "-bn-" in p.parent.name)
    # what the sweep set beyond test.yaml (batch 8 and seed 0 are test.yaml's own values)
    assert finished["overrides"] == {"trainer.epochs": 1, "optim.milestones": [0.5], "sweep": "t",
                                     "out_dir": str(tmp_path / "runs")}
    # a rerun retries the failed run (which fails again) and skips the finished one
    assert sweep_command([str(path)]) == 1
    assert "0 finished, 1 skipped (done before), 1 failed" in capsys.readouterr().out


def test_a_bgn_group_count_that_does_not_fit_is_an_invalid_grid_point(tmp_path: Path, capsys) -> None:
    path = write_sweep(tmp_path, norms=["bn", "bgn:num_groups=128"], batch_sizes=[8], seeds=[0],
                       overrides={"trainer.epochs": 1})
    runs = expand_sweep(load_sweep(path))
    assert [r.state for r in runs] == ["new", "invalid"]
    assert "num_groups=128 does not divide" in runs[1].reason
    assert sweep_command([str(path)]) == 1  # invalid points make the sweep exit 1
    out = capsys.readouterr().out
    assert "1 finished, 0 skipped (done before), 1 invalid" in out
    assert "invalid  classification bgn:num_groups=128 bs8 s0: model resnet8 on 1x28x28 fashion_mnist" in out
    assert [p.name for p in (tmp_path / "runs" / "t").iterdir()] == [runs[0].run_dir.name]  # nothing for it on disk


def test_parallel_workers_and_submitit_local_give_the_same_records(tmp_path: Path) -> None:
    one_thread = {"trainer.epochs": 1, "trainer.threads": 1}
    path = write_sweep(tmp_path, norms=["bn", "gn:num_groups=2"], batch_sizes=[8], seeds=[0], overrides=one_thread)
    runs = expand_sweep(load_sweep(path))
    results = LocalLauncher(parallel=2, threads_per_run=1).launch(runs, progress=lambda _: None)
    assert sorted(r.status for r in results) == ["finished", "finished"]
    first = {r.run_dir.name: json.loads((r.run_dir / "result.json").read_text())["test/loss"] for r in runs}

    (tmp_path / "b").mkdir()
    other = write_sweep(tmp_path / "b", norms=["bn", "gn:num_groups=2"], batch_sizes=[8], seeds=[0], overrides=one_thread)
    runs_b = expand_sweep(load_sweep(other))
    launcher = SubmititLauncher(tmp_path / "submitit", {"cluster": "local", "timeout_min": 10})
    results_b = launcher.launch(runs_b, progress=lambda _: None)
    assert sorted(r.status for r in results_b) == ["finished", "finished"]
    second = {r.run_dir.name: json.loads((r.run_dir / "result.json").read_text())["test/loss"] for r in runs_b}
    assert second == first  # same runs, same numbers, whichever launcher ran them
