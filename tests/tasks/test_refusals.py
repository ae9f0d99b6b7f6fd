"""Every invalid value is refused before anything runs: exit code 2, one line naming the key, nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.classification.task import CLASSIFICATION
from tasks.cli import main
from tasks.optim import scaled_lr
from tasks.runner import prepare as prepare_module
from tasks.runner import world
from tasks.runner.identity import identity_fields
from tasks.runner.parse import parse_config
from tasks.runner.prepare import prepare

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = str(REPO / "configs" / "classification" / "test.yaml")


def run_cli(*args: str) -> int:
    try:
        return main(list(args))
    except SystemExit as exc:  # jsonargparse's parse errors exit directly
        return int(exc.code or 0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trainer.epochs", "0"], "trainer.epochs=0 is not allowed: it must be an integer >= 1"),
        (["--trainer.max_steps", "0"], "trainer.max_steps=0 is not allowed: it must be -1 (no limit) or an integer >= 1"),
        (["--optim.base_lr", "-1"], "optim.base_lr=-1.0 is not allowed: it must be a finite number > 0"),
        (["--optim.base_lr", "nan"], "optim.base_lr='nan' is not allowed: it must be a finite number"),
        (["--optim.momentum", "1.5"], "optim.momentum=1.5 is not allowed: it must be a number in [0, 1)"),
        (["--optim.milestones", "[0.5, 1.5]"], "optim.milestones=[0.5, 1.5] (element 1.5) is not allowed"),
        (["--optim.schedule", "cosin"],
         "optim.schedule='cosin' is not allowed: choose one of cosine, step, constant (did you mean 'cosine'?)"),
        (["--data.augment", "foo"], "data.augment='foo' is not allowed: choose one of standard, none, flip, crop"),
        (["--batch_size", "two"], "batch_size='two' is not allowed: it must be an integer"),
        (["--trainer.devices", "two"], "trainer.devices='two' is not allowed: it must be an integer or auto"),
        (["--data.fraction", "0"], "data.fraction=0.0 is not allowed: it must be a number in (0, 1]"),
        (["--data.val_size", "0"], "data.val_size=0 is not allowed: it must be an integer >= 1"),
        (["--wandb.mode", "sometimes"], "wandb.mode='sometimes' is not allowed: choose one of auto, online, offline"),
        (["--trainer.precision", "17"], "trainer.precision='17' is not allowed: choose one of 32-true"),
        (["--trainer.devices", "0"], "trainer.devices=0 is not allowed: it must be an integer >= 1, -1"),
        (["--trainer.devices", "-1", "--trainer.accelerator", "cpu"], "trainer.devices=-1 means every visible GPU"),
        (["--trainer.accelerator", "gpu"], "trainer.accelerator=gpu but no GPU is visible"),
        (["--trainer.strategy", "ddp_spawn"], "spawn-based strategies"),
        (["--trainer.strategy", "dpp"], "trainer.strategy='dpp' is unknown (did you mean 'ddp'?)"),
        (["--trainer.sync_norm", "true", "--norm", "gn"], "it has no batch statistics to synchronize"),
        (["--seed", "-1"], "seed=-1 is not allowed"),
        (["--label_smoothing", "1.0"], "label_smoothing=1.0 is not allowed: it must be a number in [0, 1)"),
        (["--model.width", "0"], "model.width=0 is not allowed"),
        (["--data.name", "fashion_mnst"], "unknown data set 'fashion_mnst' (did you mean 'fashion_mnist'?)"),
        (["--model.name", "resnet9"], "unknown model 'resnet9' (did you mean 'resnet8'?)"),
        (["--norm", "bgn:num_groups=128"], "num_groups=128 does not divide"),
        (["--batch_size", "1"], "uses batch statistics, which are undefined for a batch of 1"),
        (["--coordinate_keys", "[optim.base_rl]"], "coordinate_keys: 'optim.base_rl' is not a config key"),
        (["--norm", "bgx"], "unknown norm 'bgx' (did you mean 'bgn'?)"),
        (["--norm", "bgn:groups=2"], "unknown argument 'groups'"),
        (["--data.name", "mnist"], "unknown data set 'mnist'"),
        (["--batch_size", "1", "--norm", "bgn"], "uses batch statistics"),
        (["--data.root", "/nonexistent/normbench"], "data root /nonexistent/normbench does not exist"),
        (["--no_such_option", "1"], "unrecognized arguments"),
    ],
)
def test_invalid_values_are_refused_before_anything_is_written(tmp_path: Path, capsys, args, message) -> None:
    code = run_cli("run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path), *args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2  # one line (+ the --help pointer)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args, hint",
    [
        (["--optim.schedul", "cosine"], "did you mean '--optim.schedule'?"),  # abbreviations are not accepted
        (["--optim.base_rl", "0.1"], "did you mean '--optim.base_lr'?"),
        (["--trainer.epoch", "2"], "did you mean '--trainer.epochs'?"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_valid_one(tmp_path: Path, capsys, args, hint) -> None:
    assert run_cli("run", "classification", "--config", TEST_CONFIG, "--out_dir", str(tmp_path), *args) == 2
    err = capsys.readouterr().err
    assert hint in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_an_unknown_key_in_a_yaml_file_gets_a_suggestion(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  schedul: cosine\n")
    assert run_cli("run", "classification", "--config", TEST_CONFIG, "--config", str(bad),
                   "--out_dir", str(tmp_path / "runs")) == 2
    err = capsys.readouterr().err
    assert "schedul" in err and "did you mean '--optim.schedule'?" in err


def test_devices_minus_one_and_auto_use_the_real_gpu_count(monkeypatch) -> None:
    monkeypatch.setattr(world, "gpu_count", lambda: 4)
    monkeypatch.setattr(prepare_module, "gpu_count", lambda: 4)
    for devices in ("-1", "auto"):
        cfg = prepare(parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--trainer.devices", devices,
                                                    "--trainer.accelerator", "gpu", "--trainer.strategy", "ddp"],
                                   raise_errors=True), CLASSIFICATION)
        assert world.world_size_of(cfg) == 4
        fields = identity_fields(cfg, CLASSIFICATION)
        assert fields["world_size"] == 4 and fields["global_batch_size"] == 4 * cfg.batch_size
        module, _ = CLASSIFICATION.build(cfg, CLASSIFICATION.stages(cfg)[0], {})
        assert module.global_batch_size == 32  # the learning rate scales with the real global batch
        assert scaled_lr(cfg.optim, module.global_batch_size) == pytest.approx(cfg.optim.base_lr * 32 / 128)
    two_nodes = parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--trainer.devices", "-1",
                                              "--trainer.num_nodes", "2"], raise_errors=True)
    assert world.world_size_of(two_nodes) == 8  # accelerator auto picks the (pretended) GPUs


def test_devices_auto_on_a_cpu_is_one_process(monkeypatch) -> None:
    monkeypatch.setattr(world, "gpu_count", lambda: 0)
    cfg = parse_config(CLASSIFICATION, ["--config", TEST_CONFIG, "--trainer.devices", "auto"], raise_errors=True)
    assert world.world_size_of(prepare(cfg, CLASSIFICATION)) == 1
