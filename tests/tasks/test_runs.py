"""End-to-end classification runs: records, skip, resume, divergence, failures, refused configs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from run_helpers import interrupt

from normlayers import list_norms, resolve_norm
from tasks.classification.module import ClassificationModule
from tasks.classification.task import CLASSIFICATION
from tasks.cli import main as cli_main
from tasks.runner.parse import parse_config
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")
RECORD_KEYS = {
    "schema", "run_id", "sweep", "task", "dataset", "model", "coordinates", "norm", "norm_name", "norm_label",
    "norm_num_groups", "norm_args", "uses_batch_stats", "batch_size", "batch_size_meaning", "world_size",
    "global_batch_size", "sync_norm", "seed", "profile", "epochs", "precision", "compile", "weight_standardization",
    "status", "error", "primary_metric",
    "primary_mode", "report_metrics", "metric_declarations", "table_axis", "axis_value", "axis_label", "axis_order",
    "axis_average", "selection", "protocol", "images_per_step", "selected_epoch", "epochs_completed", "steps",
    "wall_time_s", "train_images_per_s", "started_at", "finished_at", "host", "device", "git_commit", "git_dirty",
    "normbench_version", "torch_version", "lightning_version", "python_version",
    "comparison", "comparison_hash", "overrides", "train_order_hash", "train_order_batches",
}


def config(tmp_path: Path, *args: str):
    return parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--out_dir", str(tmp_path), *args], raise_errors=True)


def run_cli(*args: str) -> int:
    """Exit code of ``normbench ARGS`` (argument errors exit through SystemExit)."""
    try:
        return cli_main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def interrupt_run(tmp_path: Path, monkeypatch, when) -> Path:
    """Run until ``when(module)`` is true at a training step, then Ctrl-C; return the run directory."""
    return interrupt(monkeypatch, ClassificationModule, lambda: execute(config(tmp_path), CLASSIFICATION),
                     lambda module, batch_idx: when(module), tmp_path)


def record_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


# plain gn (G=32) is IN on every layer of the test ResNet (C=4/8/16) and refused (test_group_norm_runs.py): G=2 instead
@pytest.mark.parametrize("norm", [n if n != "gn" else "gn:num_groups=2" for n in list_norms()] + ["bgn:num_groups=4"])
def test_short_run_writes_a_complete_record(tmp_path: Path, norm: str) -> None:
    outcome = execute(config(tmp_path, "--norm", norm), CLASSIFICATION)
    assert outcome.status == "finished", outcome.message
    record = record_of(outcome.run_dir)
    resolved = resolve_norm(norm)
    assert RECORD_KEYS <= set(record)
    assert record["status"] == "finished" and record["error"] is None
    assert record["norm"] == str(resolved.spec) and record["norm_label"] == resolved.label
    assert record["norm_num_groups"] == (resolved.kwargs.get("num_groups"))
    assert record["task"] == "classification" and record["dataset"] == "fashion_mnist" and record["model"] == "resnet8"
    assert record["batch_size"] == 8 and record["world_size"] == 1 and record["global_batch_size"] == 8
    # 0.3% of the 59,000 training images is 177: 22 full batches of 8 per epoch, 2 epochs
    assert record["steps"] == 44 and record["epochs_completed"] == 2
    for metric in ("test/acc", "test/acc5", "val/acc", "last/test/acc", "last/test/acc5", "last/val/acc"):
        assert 0.0 <= record[metric] <= 1.0
    assert record["test/acc5"] >= record["test/acc"] and record["last/test/acc5"] >= record["last/test/acc"]
    # selection: the final model (as the papers report it); the same numbers under last/
    assert record["selection"] == {"rule": "last", "monitor": None, "mode": "max"}
    assert record["selected_epoch"] == 1
    assert all(record[m] == record[f"last/{m}"] for m in ("test/acc", "test/acc5", "test/loss", "val/acc"))
    assert record["schema"] == 2 and record["coordinates"] == {} and record["row_coordinates"] == []
    assert record["protocol"] == {"norm_weight_decay": True, "selection": "last"}  # issue 19: declared, not implicit
    assert record["table_axis"] == {"key": "batch_size", "label": "batch size per device", "coordinates": [],
                                   "batch_size_follows": False}
    assert (record["axis_value"], record["axis_label"], record["axis_order"]) == (8, "bs=8", 8)
    assert [d["name"] for d in record["metric_declarations"]] == ["test/acc", "test/acc5"] == record["report_metrics"]
    assert record["metric_declarations"][0]["primary"] and record["metric_declarations"][0]["unit"] == "fraction"
    assert record["wall_time_s"] > 0 and record["train_images_per_s"] > 0
    norm_slug = str(resolved.spec).replace(":", "_").replace(",", "_")
    assert outcome.run_dir.name == f"classification-fashion_mnist-resnet8-{norm_slug}-bs8-s0"
    assert (outcome.run_dir / "config.yaml").is_file()
    assert (outcome.run_dir / "checkpoints" / "last.ckpt").is_file()
    rows = list(csv.DictReader(open(outcome.run_dir / "metrics.csv")))
    assert [int(r["step"]) for r in rows if r.get("train/loss")][:3] == [0, 5, 10]
    assert any(r.get("val/acc") for r in rows) and any(r.get("test/acc") for r in rows)


def test_runs_are_reproducible_for_a_seed(tmp_path: Path) -> None:
    a = execute(config(tmp_path / "a", "--norm", "bgn"), CLASSIFICATION).record
    b = execute(config(tmp_path / "b", "--norm", "bgn"), CLASSIFICATION).record
    c = execute(config(tmp_path / "c", "--norm", "bgn", "--seed", "1"), CLASSIFICATION).record
    assert a["test/loss"] == b["test/loss"]
    assert a["test/loss"] != c["test/loss"]


def test_finished_run_is_skipped(tmp_path: Path) -> None:
    first = execute(config(tmp_path), CLASSIFICATION)
    again = execute(config(tmp_path), CLASSIFICATION)
    assert again.status == "skipped" and again.run_dir == first.run_dir
    assert record_of(first.run_dir)["finished_at"] == first.record["finished_at"]


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch) -> None:
    run_dir = interrupt_run(tmp_path, monkeypatch, lambda module: module.global_step == 30)
    assert not (run_dir / "result.json").exists()  # no record for an unfinished run
    assert (run_dir / "checkpoints" / "interrupted.ckpt").is_file()
    assert torch.load(run_dir / "checkpoints" / "interrupted.ckpt", weights_only=True)["global_step"] == 30

    original = ClassificationModule.training_step
    seen_steps: list[int] = []

    def record_steps(self, batch, batch_idx):
        seen_steps.append(self.global_step)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ClassificationModule, "training_step", record_steps)
    outcome = execute(config(tmp_path), CLASSIFICATION)
    assert outcome.status == "finished"
    assert seen_steps[0] == 30 and outcome.record["steps"] == 44  # continued, not restarted
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    logged = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert logged[:3] == [0, 5, 10] and 40 in logged  # both attempts' curves are kept
    assert not (run_dir / "checkpoints" / "interrupted.ckpt").exists()  # cleaned up after success


def test_diverging_run_ends_with_status_and_exit_code(tmp_path: Path, capsys) -> None:
    code = cli_main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--optim.base_lr", "1e6"])
    err = capsys.readouterr().err
    assert code == 1
    assert "diverged" in err and "training loss became nan" in err and "Traceback" not in err
    record = record_of(next(tmp_path.iterdir()))
    assert record["status"] == "diverged" and "nan" in record["error"]
    # a diverged run is final: rerunning skips it
    assert cli_main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--optim.base_lr", "1e6"]) == 0


def test_failing_run_records_a_one_line_error_and_keeps_the_traceback(tmp_path: Path, monkeypatch, capsys) -> None:
    def broken(self, batch, batch_idx):
        raise RuntimeError("simulated failure\nwith a second line")

    monkeypatch.setattr(ClassificationModule, "training_step", broken)
    code = cli_main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path)])
    assert code == 1
    run_dir = next(tmp_path.iterdir())
    record = record_of(run_dir)
    assert record["status"] == "failed" and record["error"] == "RuntimeError: simulated failure"
    assert "Traceback" in (run_dir / "error.log").read_text()
    assert "Traceback" not in capsys.readouterr().err
    # a failed run is retried on the next attempt
    monkeypatch.undo()
    assert execute(config(tmp_path), CLASSIFICATION).status == "finished"


def test_bgn_groups_that_do_not_fit_the_feature_maps_are_refused_before_training(tmp_path: Path, capsys) -> None:
    code = run_cli("run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path),
                   "--norm", "bgn:num_groups=128")
    err = capsys.readouterr().err
    assert code == 2
    assert "model resnet8 on 1x28x28 fashion_mnist inputs" in err and "num_groups=128 does not divide" in err
    assert not any(tmp_path.iterdir())  # no run directory, no record: a sweep rerun does not retry it


def test_reusing_a_run_directory_with_another_config_is_refused(tmp_path: Path, capsys) -> None:
    assert cli_main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path)]) == 0
    code = cli_main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--optim.base_lr", "0.3"])
    assert code == 2
    assert "optim.base_lr: 0.1 -> 0.3" in capsys.readouterr().err
    # operational settings may change between attempts
    assert cli_main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--trainer.threads", "1"]) == 0


def test_print_config_shows_the_resolved_config(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(["run", "classification", "--config", TEST_CONFIG, "--norm", "bgn:num_groups=2", "--print_config"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "norm: bgn:num_groups=2" in out and "batch_size: 8" in out and "name: resnet8" in out


def test_resuming_from_an_epoch_end_checkpoint_reproduces_the_uninterrupted_run(tmp_path: Path, monkeypatch) -> None:
    reference = execute(config(tmp_path / "a"), CLASSIFICATION).record
    run_dir = interrupt_run(tmp_path / "b", monkeypatch, lambda module: module.current_epoch == 1)
    (run_dir / "checkpoints" / "interrupted.ckpt").unlink()  # keep the epoch-end checkpoint only
    resumed = execute(config(tmp_path / "b"), CLASSIFICATION).record
    assert resumed["steps"] == reference["steps"]
    assert resumed["test/loss"] == pytest.approx(reference["test/loss"], rel=1e-6)
    assert resumed["val/acc"] == reference["val/acc"]


def test_last_checkpoint_is_the_newest_state_whatever_the_selection(tmp_path: Path) -> None:
    """With a monitored metric, Lightning's own save_last refreshes last.ckpt only on improvement; ours always does."""
    outcome = execute(config(tmp_path, "--selection", "best_val", "--trainer.epochs", "3",
                             "--trainer.checkpoint_every_n_steps", "7"), CLASSIFICATION)
    assert outcome.status == "finished"
    last = torch.load(outcome.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(outcome.run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert last["global_step"] == outcome.record["steps"] == 66
    assert best["global_step"] in (22, 44, 66) and outcome.record["selected_epoch"] == best["epoch"]
    assert outcome.record["selection"]["rule"] == "best validation accuracy"
