"""Same seed, same training batches for every norm (train_order_hash), in every task; the record's
comparison key and overrides from a real command line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from tasks.classification.task import CLASSIFICATION, ClassificationTask
from tasks.cli import main as cli_main
from tasks.registry import get_task, list_tasks
from tasks.runner import stage as stage_module
from tasks.runner.comparison import comparison_hash
from tasks.runner.parse import parse_config
from tasks.runner.run import execute
from tasks.runner.train_order import MAX_BATCHES, batch_digest, data_stream_seed

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")
SHORT = ["--trainer.epochs", "1", "--trainer.max_steps", str(MAX_BATCHES)]


def short_run(out: Path, norm: str, seed: int = 0) -> dict:
    argv = ["--config", TEST_CONFIG, "--out_dir", str(out), "--norm", norm, "--seed", str(seed), *SHORT]
    outcome = execute(parse_config(CLASSIFICATION, argv, raise_errors=True), CLASSIFICATION, argv=argv,
                      use_wandb=False)
    assert outcome.status == "finished", outcome.message
    assert outcome.record is not None
    return outcome.record


def test_batch_digest_sees_dtype_shape_values_and_nesting() -> None:
    x = torch.arange(6, dtype=torch.float32).view(2, 3)
    assert batch_digest((x, torch.tensor([1, 2]))) == batch_digest((x.clone(), torch.tensor([1, 2])))
    assert batch_digest(x) != batch_digest(x.view(3, 2))
    assert batch_digest(x) != batch_digest(x.double())
    assert batch_digest({"a": x, "b": x + 1}) != batch_digest({"a": x + 1, "b": x})
    assert batch_digest([x]) != batch_digest([x, x])


def test_the_data_seed_depends_on_the_run_seed_and_the_stage_only() -> None:
    assert data_stream_seed(0, "train") == data_stream_seed(0, "train")
    assert len({data_stream_seed(0, "train"), data_stream_seed(1, "train"), data_stream_seed(0, "search")}) == 3
    assert 0 <= data_stream_seed(7, "retrain") < 2**32


def test_two_norms_with_one_seed_see_the_same_batches_and_another_seed_does_not(tmp_path: Path) -> None:
    bn, sn = short_run(tmp_path / "bn", "bn"), short_run(tmp_path / "sn", "sn")
    other = short_run(tmp_path / "bn1", "bn", seed=1)
    assert bn["train_order_batches"] == sn["train_order_batches"] == MAX_BATCHES
    assert len(bn["train_order_hash"]) == 16
    assert bn["train_order_hash"] == sn["train_order_hash"]
    assert other["train_order_hash"] != bn["train_order_hash"]
    # test.yaml augments (crop and flip): the hash covers the draws, and the comparison is one key
    assert bn["comparison_hash"] == sn["comparison_hash"] == other["comparison_hash"]
    assert bn["overrides"] == {"out_dir": str(tmp_path / "bn"), "trainer.epochs": 1, "trainer.max_steps": MAX_BATCHES}
    assert sn["overrides"]["norm"] == "sn" and other["overrides"]["seed"] == 1


def _greedy_build(original):
    """A task build where one norm draws extra random numbers while the network is built (its own init)."""
    def build(self, cfg, stage, earlier):
        built = original(self, cfg, stage, earlier)
        if str(cfg.norm).startswith("gn"):
            torch.randn(1000)
            random.random()
        return built
    return build


def test_a_norm_that_draws_at_initialisation_still_gets_the_same_batches(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ClassificationTask, "build", _greedy_build(ClassificationTask.build))
    assert short_run(tmp_path / "bn", "bn")["train_order_hash"] == short_run(tmp_path / "gn", "gn:num_groups=2")[
        "train_order_hash"]
    # the control: without the data stream's own seed, the extra draws move the data order
    monkeypatch.setattr(stage_module, "seed_data_stream", lambda seed, stage: 0)
    moved = short_run(tmp_path / "gn-unseeded", "gn:num_groups=2")
    plain = short_run(tmp_path / "bn-unseeded", "bn")
    assert moved["train_order_hash"] != plain["train_order_hash"]


def test_the_command_line_records_its_overrides_and_the_comparison_key(tmp_path: Path) -> None:
    code = cli_main(["run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path),
                     "--data.fraction", "0.004", "--batch_size", "8", *SHORT])
    assert code == 0
    record = json.loads(next(tmp_path.glob("*/result.json")).read_text())
    # batch_size 8 is what test.yaml says: not an override
    assert record["overrides"] == {"out_dir": str(tmp_path), "data.fraction": 0.004, "trainer.epochs": 1,
                                   "trainer.max_steps": MAX_BATCHES}
    assert record["comparison"]["data.fraction"] == 0.004 and record["comparison"]["task"] == "classification"
    assert record["comparison_hash"] == comparison_hash(record["comparison"])
    assert record["profile"] == "custom"


def _task_run(name: str, out: Path, norm: str, seed: int) -> dict:
    task = get_task(name)
    argv = ["--config", str(REPO / "configs" / name / "quick.yaml"), "--out_dir", str(out), "--norm", norm,
            "--seed", str(seed)]
    cfg = task.shrink(parse_config(task, argv, raise_errors=True))
    outcome = execute(cfg, task, argv=argv, use_wandb=False,
                      trainer_overrides={"limit_train_batches": MAX_BATCHES, "limit_val_batches": 1})
    assert outcome.status == "finished", outcome.message
    assert outcome.record is not None
    return outcome.record


@pytest.mark.slow
@pytest.mark.parametrize("name", list_tasks())
def test_every_task_gives_two_norms_with_one_seed_the_same_batches(name: str, tmp_path: Path) -> None:
    bn = _task_run(name, tmp_path / "bn", "bn", 0)
    bgn = _task_run(name, tmp_path / "bgn", "bgn:num_groups=2", 0)
    other = _task_run(name, tmp_path / "s1", "bn", 1)
    assert bn["train_order_batches"] == bgn["train_order_batches"] >= 1
    assert bn["train_order_hash"] == bgn["train_order_hash"] != other["train_order_hash"]
    assert bn["comparison_hash"] == bgn["comparison_hash"] == other["comparison_hash"]
    for stage in bn.get("stages", []):  # nas: search, then retrain; the plain key is the last stage's
        assert bn[f"{stage}/train_order_hash"] == bgn[f"{stage}/train_order_hash"]
        assert bn[f"{stage}/train_order_hash"] != other[f"{stage}/train_order_hash"]
    if bn.get("stages"):
        assert bn["train_order_hash"] == bn[f"{bn['stages'][-1]}/train_order_hash"]
