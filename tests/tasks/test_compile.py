"""``trainer.compile``: a compiled run gives the eager run's results (fp32 tolerance), or is refused before it starts.

Each comparison trains the same shrunk config twice in one process, eager and
compiled (inductor, C++ on CPU), and compares the logged training losses step by
step and the recorded metrics. The compiled networks are compiled in place, so
checkpoints keep their keys (the selected-checkpoint test reloads one).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from run_helpers import interrupt

from normlayers import list_norms
from tasks.classification.module import ClassificationModule
from tasks.classification.task import CLASSIFICATION
from tasks.cli import main
from tasks.registry import get_task
from tasks.runner import prepare as prepare_module
from tasks.runner.errors import ConfigError
from tasks.runner.parse import parse_config
from tasks.runner.run import execute
from tasks.runner.rundir import check_config_matches, save_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
TEST_CONFIG = str(CONFIGS / "classification" / "test.yaml")


def run_cli(*args: str) -> int:
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def _config(task_name: str, out: Path, args: list[str], steps: int):
    task = get_task(task_name)
    base = TEST_CONFIG if task_name == "classification" else str(CONFIGS / task_name / "quick.yaml")
    cfg = parse_config(task, ["--config", base, "--out_dir", str(out), *args], raise_errors=True)
    if task_name != "classification":
        cfg = task.shrink(cfg)
    trainer = dataclasses.replace(cfg.trainer, epochs=1, max_steps=steps, threads=1, log_every_n_steps=1)
    return task, dataclasses.replace(cfg, trainer=trainer)


def _run(task_name: str, out: Path, args: list[str], steps: int, compile_: bool) -> tuple[dict, list[float], Path]:
    task, cfg = _config(task_name, out, args, steps)
    cfg = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, compile=compile_))
    outcome = execute(cfg, task, use_wandb=False)
    assert outcome.status == "finished", outcome.message
    record = json.loads((outcome.run_dir / "result.json").read_text())
    with open(outcome.run_dir / "metrics.csv", newline="") as fh:
        losses = [float(r["train/loss"]) for r in csv.DictReader(fh) if r.get("train/loss")]
    return record, losses, outcome.run_dir


def assert_compiled_matches_eager(task_name: str, tmp_path: Path, args: list[str], steps: int = 4,
                                  rel: float = 1e-3) -> Path:
    """Compare an eager and a compiled run of the same config; return the compiled run's directory."""
    from torch._dynamo.utils import counters

    eager, eager_losses, _ = _run(task_name, tmp_path / "eager", args, steps, compile_=False)
    graphs = counters["stats"]["unique_graphs"]
    compiled, compiled_losses, run_dir = _run(task_name, tmp_path / "compiled", args, steps, compile_=True)
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo really captured graphs (not silently eager)
    assert eager["compile"] is False and "compile_time_s" not in eager
    assert compiled["compile"] is True and compiled["compile_time_s"] > 0 and compiled["compiled_networks"]
    assert compiled["train_images_per_s"] > 0 and compiled["steps"] == eager["steps"] > 0
    assert len(compiled_losses) == len(eager_losses) > 0
    assert compiled_losses[0] == pytest.approx(eager_losses[0], rel=1e-4)  # the same weights: only rounding differs
    assert compiled_losses == pytest.approx(eager_losses, rel=rel, abs=1e-4)
    for spec in get_task(task_name).metrics(_config(task_name, tmp_path, args, steps)[1]):
        if spec.name not in eager:
            continue
        a, b = eager[spec.name], compiled[spec.name]
        if spec.unit == "fraction":  # a near-tie may flip one image: 1/32 of the shrunk robust subset
            assert abs(a - b) <= 0.04, (spec.name, a, b)
        elif math.isfinite(a):
            assert b == pytest.approx(a, rel=rel, abs=1e-4), (spec.name, a, b)
    for key in ("test/loss", "val/loss"):
        if key in eager:
            assert compiled[key] == pytest.approx(eager[key], rel=rel, abs=1e-4), key
    return run_dir


def test_compiled_classification_matches_eager(tmp_path: Path) -> None:
    run_dir = assert_compiled_matches_eager("classification", tmp_path, ["--norm", "bgn:num_groups=2"])
    # compiled in place: the checkpoint's keys are the eager module's, and it loads into one
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)
    _, cfg = _config("classification", tmp_path, ["--norm", "bgn:num_groups=2"], steps=4)
    module, _ = CLASSIFICATION.build(cfg, CLASSIFICATION.stages(cfg)[0], {})
    module.load_state_dict(state)


def test_an_interrupted_compiled_run_resumes(tmp_path: Path, monkeypatch) -> None:
    cfg = parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--out_dir", str(tmp_path), "--trainer.compile", "true",
                                        "--trainer.threads", "1"], raise_errors=True)
    run_dir = interrupt(monkeypatch, ClassificationModule, lambda: execute(cfg, CLASSIFICATION),
                        lambda module, batch_idx: module.current_epoch == 1 and batch_idx == 2, tmp_path)
    assert not (run_dir / "result.json").exists()
    outcome = execute(cfg, CLASSIFICATION)
    assert outcome.status == "finished", outcome.message
    record = json.loads((run_dir / "result.json").read_text())
    assert record["epochs_completed"] == 2 and record["compile"] is True
    assert record["compile_time_s"] > 0 and record["train_images_per_s"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("norm", [n if n != "gn" else "gn:num_groups=2" for n in list_norms()])  # gn: IN at C<=32
def test_compiled_classification_matches_eager_for_every_norm(tmp_path: Path, norm: str) -> None:
    assert_compiled_matches_eager("classification", tmp_path, ["--norm", norm])


@pytest.mark.parametrize("task_name, args", [
    ("uda", ["--method", "dann"]),
    ("uda", ["--method", "source_only"]),  # and its AdaBN evaluation (a deep copy: eager)
    ("fewshot", ["--method", "protonet"]),
    ("fewshot", ["--method", "anil"]),
], ids=["uda-dann", "uda-source_only", "fewshot-protonet", "fewshot-anil"])
def test_compiled_task_matches_eager(tmp_path: Path, task_name: str, args: list[str]) -> None:
    assert_compiled_matches_eager(task_name, tmp_path, args, steps=3)


@pytest.mark.slow
def test_compiled_adversarial_training_matches_eager(tmp_path: Path) -> None:
    # PGD steps along the sign of the input gradient: rounding differences of compiled kernels flip the sign of
    # near-zero entries, so the attacked batches (and losses after the first step) differ by ~0.1%, not ~1e-6.
    assert_compiled_matches_eager("adversarial", tmp_path, [], steps=3, rel=5e-3)


@pytest.mark.parametrize("task_name, args, message", [
    ("nas", [], "trainer.compile=true: nas is not supported: the DARTS search"),
    ("fewshot", ["--method", "maml"], "trainer.compile=true: fewshot method=maml is not supported"),
    ("classification", ["--trainer.sync_norm", "true"], "trainer.compile=true with trainer.sync_norm=true"),
])
def test_compile_is_refused_where_it_cannot_work(tmp_path: Path, capsys, task_name: str, args: list[str],
                                                 message: str) -> None:
    config = TEST_CONFIG if task_name == "classification" else str(CONFIGS / task_name / "quick.yaml")
    code = run_cli("run", task_name, "--config", config, "--out_dir", str(tmp_path), "--trainer.compile", "true", *args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not any(tmp_path.iterdir())


def test_compile_on_cpu_without_a_cpp_compiler_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(prepare_module, "_cpp_compiler_problem", lambda: "no working C++ compiler found")
    code = run_cli("run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path),
                   "--trainer.accelerator", "cpu", "--trainer.compile", "true")
    err = capsys.readouterr().err
    assert code == 2 and "trainer.compile=true on CPU needs a C++ compiler for inductor" in err, err
    assert not any(tmp_path.iterdir())


def test_a_run_directory_from_before_compile_existed_still_matches(tmp_path: Path) -> None:
    _, cfg = _config("classification", tmp_path, [], steps=2)
    save_config(tmp_path, cfg, "classification")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    del saved["trainer"]["compile"]  # a config.yaml written before trainer.compile existed
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    check_config_matches(tmp_path, cfg, "classification")  # means compile: false: resumes
    compiled = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, compile=True))
    with pytest.raises(ConfigError, match="trainer.compile"):
        check_config_matches(tmp_path, compiled, "classification")
