"""The comparison key (what may differ inside one table) and the overrides of a command line, without runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from tasks.classification.task import CLASSIFICATION
from tasks.registry import get_task
from tasks.runner.comparison import (
    NOT_COMPUTATIONAL,
    comparison_hash,
    comparison_of,
    config_only_args,
    config_overrides,
    flatten,
)
from tasks.runner.parse import parse_config

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")


def classification(*args: str):
    return parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, *args], raise_errors=True)


def quick(name: str, *args: str):
    task = get_task(name)
    return task, parse_config(task, ["--config", str(REPO / "configs" / name / "quick.yaml"), *args],
                              raise_errors=True)


def test_flatten_gives_dotted_keys_with_lists_as_leaves() -> None:
    assert flatten({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}, "f": {}}) == {"a": 1, "b.c": [1, 2], "b.d.e": None,
                                                                           "f": {}}


def test_the_key_holds_what_changes_results_and_nothing_that_may_vary_in_a_table() -> None:
    key = comparison_of(classification(), CLASSIFICATION)
    assert list(key)[:3] == ["task", "dataset", "model"]
    assert (key["task"], key["dataset"], key["model"]) == ("classification", "fashion_mnist", "resnet8")
    assert key["data.fraction"] == 0.003 and key["trainer.epochs"] == 2 and key["optim.base_lr"] == 0.1
    assert key["trainer.precision"] == "32-true" and key["trainer.devices"] == 1
    for left_out in ("norm", "seed", "batch_size", "out_dir", "sweep", "run_name", "profile", "trainer.threads",
                     "trainer.log_every_n_steps", "trainer.checkpoint_every_n_steps", "data.root"):
        assert left_out not in key
    assert not [k for k in key if k.startswith(("wandb.", "diagnostics.", "summary", "coordinate_keys"))]


def test_the_hash_moves_with_a_computational_value_only() -> None:
    base = comparison_hash(comparison_of(classification(), CLASSIFICATION))
    same = ["--norm", "gn:num_groups=2", "--seed", "3", "--batch_size", "2", "--out_dir", "elsewhere",
            "--trainer.threads", "1", "--wandb.enabled", "true", "--diagnostics.norm_stats", "true",
            "--trainer.log_every_n_steps", "7", "--profile", "quick", "--run_name", "x"]
    assert comparison_hash(comparison_of(classification(*same), CLASSIFICATION)) == base
    for changed in (["--data.fraction", "0.02"], ["--trainer.epochs", "3"], ["--model.width", "8"],
                    ["--trainer.precision", "bf16-mixed"], ["--data.augment", "none"]):
        assert comparison_hash(comparison_of(classification(*changed), CLASSIFICATION)) != base, changed


def test_the_hash_is_sha256_of_the_canonical_json() -> None:
    key = {"task": "t", "b": [1, 2], "a": 0.5}
    expected = hashlib.sha256(b'{"a":0.5,"b":[1,2],"task":"t"}').hexdigest()[:16]
    assert comparison_hash(key) == expected == comparison_hash(dict(reversed(list(key.items()))))


def test_grid_coordinates_and_a_non_batch_axis_are_handled_per_task() -> None:
    uda, cfg = quick("uda")
    key = comparison_of(cfg, uda)
    assert "data.source" not in key and "data.target" not in key and "method" not in key  # coordinates
    # the axis is the domain pair; the per-domain batch is a grid coordinate (per_domain_batch_size), so it is
    # out of the key but still splits tables
    assert "batch_size" not in key and uda.grid_coordinates["per_domain_batch_size"] == "batch_size"
    fewshot, cfg = quick("fewshot")
    key = comparison_of(cfg, fewshot)
    assert not {"ways", "shots", "method", "batch_size"} & set(key)  # the batch follows ways/shots
    adversarial, cfg = quick("adversarial")
    assert "method" not in comparison_of(cfg, adversarial) and "batch_size" not in comparison_of(cfg, adversarial)


def test_coordinate_keys_and_a_tasks_own_declarations_are_left_out(monkeypatch) -> None:
    cfg = classification("--coordinate_keys", '["data.augment"]')
    assert "data.augment" not in comparison_of(cfg, CLASSIFICATION)
    monkeypatch.setattr(type(CLASSIFICATION), "non_computational_keys", ("data.eval_batch_size",))
    assert "data.eval_batch_size" not in comparison_of(classification(), CLASSIFICATION)
    assert "trainer.threads" in NOT_COMPUTATIONAL


def test_overrides_are_what_the_command_line_changed_from_the_config_files() -> None:
    argv = ["--config", TEST_CONFIG, "--data.fraction", "0.02", "--seed", "1", "--batch_size", "8", "--norm", "gn"]
    cfg = parse_config(CLASSIFICATION, argv, raise_errors=True)
    # batch_size 8 is test.yaml's own value: not an override
    assert config_overrides(cfg, CLASSIFICATION, argv) == {"data.fraction": 0.02, "seed": 1, "norm": "gn"}
    # a value given before a --config file that sets it is the file's value: no override either
    late = ["--batch_size", "4", "--config", TEST_CONFIG]
    assert config_overrides(parse_config(CLASSIFICATION, late, raise_errors=True), CLASSIFICATION, late) == {}


def test_without_a_command_line_overrides_are_what_differs_from_the_defaults() -> None:
    cfg = dataclasses.replace(CLASSIFICATION.config_class(), seed=4)
    assert config_overrides(cfg, CLASSIFICATION, None) == {"seed": 4}


@pytest.mark.parametrize("args, expected", [
    (["--config", "a.yaml", "--seed", "1", "--config=b.yaml"], ["--config", "a.yaml", "--config=b.yaml"]),
    (["--seed", "1"], []),
])
def test_config_only_args_keeps_the_files_in_order(args: list[str], expected: list[str]) -> None:
    assert config_only_args(args) == expected


def test_the_key_is_json() -> None:
    for name in ("classification", "nas", "adversarial", "fewshot", "uda"):
        task, cfg = quick(name)
        key = comparison_of(cfg, task)
        assert json.loads(json.dumps(key)) == key
