"""End-to-end adversarial runs: the record, best-versus-last selection, the methods, resume, refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from test_adversarial_attacks import one_thread  # noqa: F401  (runs use one thread; restored after this module)

from tasks.adversarial.module import EVAL_FILE, AdversarialModule
from tasks.adversarial.task import ADVERSARIAL
from tasks.cli import main as cli_main
from tasks.runner.parse import parse_config
from tasks.runner.run import execute

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "adversarial" / "quick.yaml")


def config(tmp_path: Path, *args: str):
    """The quick profile shrunk to seconds (tiny data, model and attack budgets), batch 8, one thread."""
    cfg = parse_config(ADVERSARIAL, ["--config", QUICK, "--out_dir", str(tmp_path), "--batch_size", "8",
                                     "--trainer.threads", "1", *args], raise_errors=True)
    cfg = ADVERSARIAL.shrink(cfg)
    data = dataclasses.replace(cfg.data, fraction=0.001)  # 59 images: 7 steps per epoch
    evaluation = dataclasses.replace(cfg.eval, robust_samples=16, val_robust_samples=16)
    return dataclasses.replace(cfg, data=data, eval=evaluation)


def run_cli(*args: str) -> int:
    try:
        return cli_main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def test_a_run_selects_on_robust_validation_accuracy_and_reports_both_checkpoints(tmp_path: Path, monkeypatch) -> None:
    """Validation says epoch 0 was more robust than epoch 1: its weights are tested again for the plain names."""
    scripted = iter([0.9, 0.1])

    def scripted_selection(self):
        outcomes = self._gathered()  # the real PGD-10 outcomes of the 16 validation images...
        assert len(outcomes["robust"]) == 16
        self.log("val/robust_acc", next(scripted), add_dataloader_idx=False)  # ...then a known best epoch

    monkeypatch.setattr(AdversarialModule, "on_validation_epoch_end", scripted_selection)
    outcome = execute(config(tmp_path, "--norm", "bgn"), ADVERSARIAL)
    assert outcome.status == "finished", outcome.message
    r = outcome.record
    assert r["selection"] == {"rule": "best robust validation accuracy (PGD-10)", "monitor": "val/robust_acc", "mode": "max"}
    assert r["selected_epoch"] == 0 and r["epochs_completed"] == 2 and r["steps"] == 14
    assert r["val/robust_acc"] == pytest.approx(0.9) and r["last/val/robust_acc"] == pytest.approx(0.1)
    assert r["test/loss"] != r["last/test/loss"]  # the selected (epoch 0) weights were tested, not the last ones
    for prefix in ("", "last/"):
        for name in ("test/acc", "test/fgsm_acc", "test/pgd20_acc", "test/robust_acc", "test/subset_acc"):
            assert 0.0 <= r[prefix + name] <= 1.0
        assert r[prefix + "test/robust_acc"] <= r[prefix + "test/subset_acc"]
        assert r[prefix + "eval_warning"] is None or isinstance(r[prefix + "eval_warning"], str)
    assert r["primary_metric"] == "test/robust_acc"
    assert r["report_metrics"] == ["test/acc", "test/fgsm_acc", "test/pgd20_acc", "test/robust_acc"]  # table order
    assert {d["group"] for d in r["metric_declarations"]} == {"robustness"}  # one table in the report
    attack = "apgd-ce(5 it)+apgd-t(5 it, 2 targets)"
    assert r["robust_attack"] == attack and r["metric_declarations"][3]["label"] == f"robust accuracy, {attack}"
    assert r["metric_declarations"][3]["short"] == "APGD-CE+APGD-T"  # not the standard ensemble: its attacks
    assert r["protocol"] == {"attack_mode": "eval", "epsilon": 0.1, "train_attack": "pgd-7 step 0.025",
                             "robust_attack": attack, "robust_samples": 16}
    assert r["robust_samples"] == 16 and r["test_samples"] == 100  # 1% of the test set for test/acc
    assert r["coordinates"] == {"method": "pgd_at"}
    assert outcome.run_dir.name == "adversarial-fashion_mnist-resnet8-method=pgd_at-bgn_num_groups=1-bs8-s0"
    reports = json.loads((outcome.run_dir / EVAL_FILE).read_text())
    assert reports["selected"]["metrics"]["test/robust_acc"] == pytest.approx(r["test/robust_acc"])
    assert reports["last"]["metrics"]["test/robust_acc"] == pytest.approx(r["last/test/robust_acc"])
    assert reports["selected"]["samples"] == 16 and reports["selected"]["counts"]["clean"] <= 16


@pytest.mark.parametrize("method, words, mode", [("trades", "tpgd-7 step 0.025 beta 6", "eval"),
                                                ("fgsm_rs", "fgsm-rs step 0.125", "train")])
def test_trades_and_fgsm_rs_runs_get_their_own_directories(tmp_path: Path, method: str, words: str, mode: str) -> None:
    cfg = config(tmp_path, "--method", method, "--norm", "bgn", "--trainer.epochs", "1", "--attack_mode", mode)
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, ensemble=[]))  # PGD-20 is the strongest
    outcome = execute(cfg, ADVERSARIAL)
    assert outcome.status == "finished", outcome.message
    r = outcome.record
    assert f"method={method}" in outcome.run_dir.name and r["coordinates"] == {"method": method}
    assert r["protocol"]["train_attack"] == words and r["protocol"]["attack_mode"] == mode
    assert r["robust_attack"] == "pgd-20"
    assert r["test/robust_acc"] == r["test/pgd20_acc"] and r["steps"] == 7


def test_an_interrupted_run_resumes_mid_epoch(tmp_path: Path, monkeypatch) -> None:
    original = AdversarialModule.training_step

    def interrupt(self, batch, batch_idx):
        if self.global_step == 10:
            raise KeyboardInterrupt
        return original(self, batch, batch_idx)

    monkeypatch.setattr(AdversarialModule, "training_step", interrupt)
    with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into exit(1)
        execute(config(tmp_path), ADVERSARIAL)
    run_dir = next(tmp_path.iterdir())
    assert not (run_dir / "result.json").exists()
    assert torch.load(run_dir / "checkpoints" / "interrupted.ckpt", weights_only=True)["global_step"] == 10
    seen: list[int] = []

    def record(self, batch, batch_idx):
        seen.append(self.global_step)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(AdversarialModule, "training_step", record)
    outcome = execute(config(tmp_path), ADVERSARIAL)
    assert outcome.status == "finished" and seen[0] == 10 and outcome.record["steps"] == 14
    assert 0.0 <= outcome.record["test/robust_acc"] <= 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pgd_at.epsilon", "0"], "pgd_at.epsilon=0.0 is not allowed: it must be a number in (0, 1]"),
        (["--pgd_at.epsilon", "1.5"], "pgd_at.epsilon=1.5 is not allowed"),
        (["--trades.steps", "0"], "trades.steps=0 is not allowed: it must be an integer >= 1"),
        (["--pgd_at.step_size", "-0.1"], "pgd_at.step_size=-0.1 is not allowed: it must be a finite number > 0"),
        (["--method", "fgsm_rs", "--fgsm_rs.step_size", "0.25"], "fgsm_rs.step_size=0.25 is above 2 * epsilon = 0.2"),
        (["--method", "madry"], "method"),
        (["--eval.robust_samples", "1001"], "eval.robust_samples=1001 is larger than the test set (1000 images"),
        (["--eval.target_classes", "10"], "at most 9 target classes"),
        (["--trainer.precision", "16-true"], "adversarial evaluation runs in fp32"),
        (["--data.name", "imagenet"], "'imagenet' is not available for adversarial training"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    code = run_cli("run", "adversarial", "--config", QUICK, "--out_dir", str(tmp_path), *args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # one line (plus the "see --help" hint of parse errors)
    assert not any(tmp_path.iterdir())


def test_attacks_need_the_evaluation_loops_outside_inference_mode(tmp_path: Path, monkeypatch) -> None:
    """The task's declaration is what makes evaluation work; the other tasks keep inference mode."""
    from tasks.classification.task import CLASSIFICATION

    assert ADVERSARIAL.eval_needs_gradients and not CLASSIFICATION.eval_needs_gradients
    monkeypatch.setattr(type(ADVERSARIAL), "eval_needs_gradients", False)
    outcome = execute(config(tmp_path, "--trainer.epochs", "1"), ADVERSARIAL)
    assert outcome.status == "failed" and "does not require grad" in outcome.message  # no gradient in inference mode


def test_cifar10_runs_with_preact_resnet18_from_the_existing_loader(tmp_path: Path) -> None:
    """The paper profile's data and network on a tiny CIFAR-10 in torchvision's format (written here)."""
    import data_fixtures as fx

    fx.write_cifar(tmp_path / "data", "cifar10", per_batch=40, test_count=60)
    cfg = config(tmp_path / "runs", "--data.name", "cifar10", "--data.root", str(tmp_path / "data"),
                 "--trainer.epochs", "1", "--pgd_at.epsilon", str(8 / 255), "--pgd_at.step_size", str(2 / 255))
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name="preact_resnet18", width=4),
                              data=dataclasses.replace(cfg.data, val_size=50, fraction=1.0, test_fraction=1.0))
    outcome = execute(cfg, ADVERSARIAL)
    assert outcome.status == "finished", outcome.message
    r = outcome.record
    assert (r["dataset"], r["model"], r["steps"]) == ("cifar10", "preact_resnet18", 18)  # 150 images / 8
    assert r["robust_samples"] == 16 and r["test_samples"] == 60 and r["protocol"]["epsilon"] == round(8 / 255, 6)
    assert 0.0 <= r["test/robust_acc"] <= r["test/subset_acc"] <= 1.0


def test_resuming_from_an_epoch_end_reproduces_the_uninterrupted_run(tmp_path: Path, monkeypatch) -> None:
    """The training attacks' random starts come from the checkpointed generators; evaluation attacks use their own."""
    reference = execute(config(tmp_path / "a"), ADVERSARIAL).record
    original = AdversarialModule.training_step

    def interrupt(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise KeyboardInterrupt
        return original(self, batch, batch_idx)

    monkeypatch.setattr(AdversarialModule, "training_step", interrupt)
    with pytest.raises(SystemExit):
        execute(config(tmp_path / "b"), ADVERSARIAL)
    run_dir = next((tmp_path / "b").iterdir())
    (run_dir / "checkpoints" / "interrupted.ckpt").unlink()  # resume from the epoch-end checkpoint
    monkeypatch.setattr(AdversarialModule, "training_step", original)
    resumed = execute(config(tmp_path / "b"), ADVERSARIAL).record
    assert resumed["steps"] == reference["steps"] == 14
    assert resumed["last/test/loss"] == pytest.approx(reference["last/test/loss"], rel=1e-6)
    assert resumed["last/test/robust_acc"] == reference["last/test/robust_acc"]
