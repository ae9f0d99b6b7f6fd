"""Adversarial protocol of issue 19: attack_mode as a row coordinate, the medium grid, the paper sweep's time limit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tasks.registry import get_task
from tasks.runner import prepare as prepare_module
from tasks.runner import world
from tasks.runner.identity import identity_fields
from tasks.runner.parse import parse_config
from tasks.sweep.estimate import MARGIN, estimate_lines, timeout_minutes
from tasks.sweep.expand import expand_sweep
from tasks.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[2]
SWEEPS = REPO / "configs" / "sweeps"
ADVERSARIAL = get_task("adversarial")


def _pretend_gpus(monkeypatch) -> None:
    monkeypatch.setattr(world, "gpu_count", lambda: 8)
    monkeypatch.setattr(prepare_module, "gpu_count", lambda: 8)


def test_attack_mode_is_a_row_coordinate_only_where_the_run_has_it() -> None:
    quick = str(REPO / "configs" / "adversarial" / "quick.yaml")
    plain = parse_config(ADVERSARIAL, ["--config", quick], raise_errors=True)
    assert identity_fields(plain, ADVERSARIAL)["row_coordinates"] == []
    gridded = parse_config(ADVERSARIAL, ["--config", quick, "--coordinate_keys", '["attack_mode"]',
                                         "--attack_mode", "train"], raise_errors=True)
    fields = identity_fields(gridded, ADVERSARIAL)
    assert fields["coordinates"] == {"method": "pgd_at", "attack_mode": "train"}
    assert fields["row_coordinates"] == ["attack_mode"]
    assert identity_fields(parse_config(get_task("classification"), ["--config", str(
        REPO / "configs" / "classification" / "test.yaml")], raise_errors=True), get_task("classification"))[
        "row_coordinates"] == []


def test_medium_grid_runs_bn_and_bgn_at_the_small_batch_in_both_attack_modes(tmp_path: Path) -> None:
    planned = expand_sweep(dataclasses.replace(load_sweep(SWEEPS / "medium_adversarial.yaml"), out_dir=tmp_path))
    assert planned and all(r.state == "new" for r in planned)
    cells = {(r.config.norm, r.config.batch_size, r.config.attack_mode) for r in planned}
    for norm in ("bn", "bgn:elements=1024,num_groups=auto", "bgn:num_groups=1",
                 "bgn:num_groups=16"):
        assert {(norm, 2, "eval"), (norm, 2, "train"), (norm, 32, "eval")} <= cells, norm
    assert not any(mode == "train" and (norm.startswith(("gn", "ln")) or batch != 2) for norm, batch, mode in cells)
    assert len(planned) == 48 and {r.config.seed for r in planned} == {0, 1, 2}
    assert all(r.config.eval.robust_samples >= 1000 and r.config.coordinate_keys == ["attack_mode"] for r in planned)


def test_paper_sweep_time_limit_follows_from_the_printed_estimate(tmp_path: Path, monkeypatch) -> None:
    _pretend_gpus(monkeypatch)
    sweep = dataclasses.replace(load_sweep(SWEEPS / "adversarial_paper_cifar10.yaml"), out_dir=tmp_path)
    assert "timeout_min" not in sweep.launcher.slurm  # derived, not fixed
    planned = expand_sweep(sweep)
    small = next(r for r in planned if r.config.batch_size == 2)
    assert small.config.trainer.devices == 8  # the GN paper's arrangement: 8 GPUs x 2 per GPU
    steps = ADVERSARIAL.training_steps(small.config)
    assert steps == 200 * (49000 // 16) == 612400
    per_step = sweep.launcher.seconds_per_step
    minutes = timeout_minutes(planned, per_step)
    assert minutes == -(-612400 * per_step[2] * MARGIN // 60)  # the longest run (batch 2) x the margin
    lines = estimate_lines(planned, per_step, None)
    assert f"estimate {small.run_dir.name}: 612,400 steps x 0.05 s = 8.5 h" in lines
    assert lines[-1] == f"longest run: 8.5 h; time limit from it (x1.5): {minutes} min"
    short = estimate_lines(planned, per_step, 600)
    assert short[-1] == "warning: timeout_min=600 is below the estimate; the longest runs would be killed"
    assert estimate_lines(planned, {}) == []


def test_training_steps_counts_full_global_batches() -> None:
    cfg = parse_config(ADVERSARIAL, ["--config", str(REPO / "configs" / "adversarial" / "medium.yaml"),
                                     "--batch_size", "2"], raise_errors=True)
    assert ADVERSARIAL.training_steps(cfg) == 3 * (2975 // 2)  # 0.05 x 59,500 images, 3 epochs
    capped = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, max_steps=100))
    assert ADVERSARIAL.training_steps(capped) == 100


def test_a_bad_seconds_per_step_is_refused_in_one_line(tmp_path: Path) -> None:
    import pytest

    from tasks.runner.errors import ConfigError

    path = tmp_path / "s.yaml"
    path.write_text("name: s\ntasks: [{task: classification, config: %s}]\nnorms: [bn]\nseeds: [0]\n"
                    "launcher: {seconds_per_step: {2: -1}}\n" % (REPO / "configs" / "classification" / "test.yaml"))
    with pytest.raises(ConfigError, match="launcher.seconds_per_step must map batch sizes to seconds per step"):
        load_sweep(path)
