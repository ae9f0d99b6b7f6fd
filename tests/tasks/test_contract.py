"""The task contract through a two-stage task: stage results, selection, exact resume inside a stage."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from run_helpers import interrupt
from toy_task import TOY, ToyModule

from tasks.data.datamodule import ImageDataModule
from tasks.runner.parse import parse_config
from tasks.runner.run import execute


def toy_config(out: Path, *args: str):
    return parse_config(TOY, ["--out_dir", str(out), "--batch_size", "8", "--norm", "bn", "--trainer.epochs", "2",
                              "--trainer.log_every_n_steps", "5", *args], raise_errors=True)


def interrupt_toy(monkeypatch, out: Path, when) -> Path:
    """Run until ``when(module, batch_idx)`` is true at a training step, then Ctrl-C; the run directory."""
    return interrupt(monkeypatch, ToyModule, lambda: execute(toy_config(out), TOY), when, out)


def evaluate(run_dir: Path, checkpoint: str) -> float:
    """Test accuracy of a checkpoint, computed here without Lightning."""
    cfg = toy_config(run_dir.parent, "--trainer.epochs", "4")
    module = ToyModule("bn", cfg.width, "finetune")
    state = torch.load(run_dir / "checkpoints" / "finetune" / checkpoint, weights_only=True)["state_dict"]
    module.load_state_dict(state)
    data = ImageDataModule(cfg.data, 8)
    data.setup("test")
    correct = total = 0
    module.eval()
    with torch.no_grad():
        for images, labels in data.test_dataloader():
            correct += int((module.net(data.transform(images, train=False)).argmax(1) == labels).sum())
            total += len(labels)
    return correct / total


def test_two_stages_give_one_record_with_selected_and_last_metrics(tmp_path: Path) -> None:
    TOY.builds.clear()
    outcome = execute(toy_config(tmp_path, "--trainer.epochs", "4"), TOY)
    assert outcome.status == "finished", outcome.message
    record = json.loads((outcome.run_dir / "result.json").read_text())
    assert TOY.builds == ["pretrain", "finetune"]
    assert record["stages"] == ["pretrain", "finetune"] and record["pretrain/steps"] == 22 and record["steps"] == 88
    assert record["pretrain/wall_time_s"] > 0 and record["finetune/wall_time_s"] > 0
    assert record["pretrain_weight_norm"] > 0  # a stage output reaches the record
    # each stage's first batches hashed; the plain key is the last stage's (each stage has its own data stream)
    assert record["pretrain/train_order_batches"] == record["train_order_batches"] == 8
    assert record["train_order_hash"] == record["finetune/train_order_hash"] != record["pretrain/train_order_hash"]
    assert 0 <= record["pretrain/val/acc"] <= 1 and "pretrain/val/acc" in record  # the first stage's own names
    # selection: plain names report best.ckpt, last/ reports last.ckpt; both checked independently
    assert record["selection"]["monitor"] == "val/acc"
    assert record["test/acc"] == pytest.approx(evaluate(outcome.run_dir, "best.ckpt"), abs=1e-6)
    assert record["last/test/acc"] == pytest.approx(evaluate(outcome.run_dir, "last.ckpt"), abs=1e-6)
    assert record["val/acc"] >= record["last/val/acc"]
    assert (outcome.run_dir / "stages" / "pretrain.json").is_file()
    # last.ckpt holds the best checkpointer's score of its own epoch: a run resumed from it keeps best.ckpt
    last = torch.load(outcome.run_dir / "checkpoints" / "finetune" / "last.ckpt", weights_only=False)
    best_state = next(v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint") and "val/acc" in k)
    assert float(best_state["best_model_score"]) == pytest.approx(record["val/acc"])
    assert (outcome.run_dir / "metrics-pretrain.csv").is_file() and (outcome.run_dir / "metrics-finetune.csv").is_file()


def test_resume_inside_the_second_stage_is_exact_and_does_not_redo_the_first(tmp_path: Path, monkeypatch) -> None:
    reference = execute(toy_config(tmp_path / "a"), TOY).record
    run_dir = interrupt_toy(monkeypatch, tmp_path / "b", lambda m, i: m.stage_name == "finetune" and m.current_epoch == 1)
    (run_dir / "checkpoints" / "finetune" / "interrupted.ckpt").unlink()  # resume from the epoch-end checkpoint
    TOY.builds.clear()
    resumed = execute(toy_config(tmp_path / "b"), TOY).record
    assert TOY.builds == ["finetune"]  # the finished stage was not trained again
    assert resumed["steps"] == reference["steps"]
    assert resumed["last/test/loss"] == pytest.approx(reference["last/test/loss"], rel=1e-6)
    assert resumed["test/acc"] == reference["test/acc"]
    for key in ("pretrain/train_order_hash", "finetune/train_order_hash"):  # kept through the interruption
        assert resumed[key] == reference[key]


def test_resume_is_not_exact_without_pythons_random_state(tmp_path: Path, monkeypatch) -> None:
    """The control for the test above: without restoring Python's random, the resumed run differs."""
    reference = execute(toy_config(tmp_path / "a"), TOY).record
    run_dir = interrupt_toy(monkeypatch, tmp_path / "b", lambda m, i: m.stage_name == "finetune" and m.current_epoch == 1)
    (run_dir / "checkpoints" / "finetune" / "interrupted.ckpt").unlink()
    monkeypatch.setattr(random, "setstate", lambda state: None)
    resumed = execute(toy_config(tmp_path / "b"), TOY).record
    assert resumed["last/test/loss"] != pytest.approx(reference["last/test/loss"], rel=1e-6)


def test_resume_inside_the_first_stage(tmp_path: Path, monkeypatch) -> None:
    run_dir = interrupt_toy(monkeypatch, tmp_path, lambda m, i: m.stage_name == "pretrain" and i == 10)
    assert not (run_dir / "stages" / "pretrain.json").exists()
    assert torch.load(run_dir / "checkpoints" / "pretrain" / "interrupted.ckpt", weights_only=True)["global_step"] == 10
    seen: list[tuple[str, int]] = []
    original = ToyModule.training_step

    def watch(self, batch, batch_idx):
        seen.append((self.stage_name, self.global_step))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ToyModule, "training_step", watch)
    outcome = execute(toy_config(tmp_path), TOY)
    assert outcome.status == "finished"
    assert seen[0] == ("pretrain", 10)  # continued inside the stage
    assert outcome.record["pretrain/steps"] == 22 and outcome.record["steps"] == 44
