"""Outcome files of real (shrunk) runs: the same items for every norm and seed, selected vs last named like the record.

test_every_task.py checks every task's file against its record; these check what pairing runs relies on.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tasks.registry import get_task
from tasks.runner.outcomes import read_outcomes
from tasks.runner.parse import parse_config
from tasks.runner.run import execute
from tasks.runner.task import best_on

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _run(name: str, out: Path, *args: str, epochs: int | None = None) -> tuple[dict[str, Any], Path]:
    task = get_task(name)
    cfg = task.shrink(parse_config(task, ["--config", str(CONFIGS / name / "quick.yaml"), "--out_dir", str(out),
                                          "--trainer.threads", "1", *args], raise_errors=True))
    if epochs is not None:
        cfg = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, epochs=epochs))
    outcome = execute(cfg, task, use_wandb=False)
    assert outcome.status == "finished", outcome.message
    return json.loads((outcome.run_dir / "result.json").read_text()), outcome.run_dir


@pytest.mark.parametrize("name", ["classification", "fewshot"])
def test_two_norms_with_two_seeds_score_the_same_items(name: str, tmp_path: Path) -> None:
    bn, bn_dir = _run(name, tmp_path, "--norm", "bn", "--seed", "0")
    ln, ln_dir = _run(name, tmp_path, "--norm", "ln", "--seed", "1")
    assert bn["eval_items_hash"] == ln["eval_items_hash"] and len(bn["eval_items_hash"]) == 16
    bn_sets, ln_sets = read_outcomes(bn_dir / "outcomes.json"), read_outcomes(ln_dir / "outcomes.json")
    assert [(s.name, s.item_ids_hash, s.n) for s in bn_sets] == [(s.name, s.item_ids_hash, s.n) for s in ln_sets]


def test_the_selected_checkpoint_takes_the_plain_columns_and_the_last_one_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = type(get_task("classification"))
    # the highest validation loss: the first epoch's checkpoint, tested again after the last one
    monkeypatch.setattr(task, "selection", lambda self, cfg: best_on("val/loss", "max"))
    record, run_dir = _run("classification", tmp_path, epochs=3)
    assert record["selected_epoch"] == 0 and record["epochs_completed"] == 3
    (test,) = read_outcomes(run_dir / "outcomes.json")
    for key in ("test/acc", "last/test/acc", "test/acc5", "last/test/acc5"):
        assert abs(test.columns[key].mean() - record[key]) <= 1e-6, key
    assert not np.array_equal(test.columns["test/acc"], test.columns["last/test/acc"])
