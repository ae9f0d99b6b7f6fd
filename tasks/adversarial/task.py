"""The adversarial task: what it declares (metrics, selection, protocol, method coordinate) and how it builds."""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning as L
from torch import nn

from ..data import get_dataset_info
from ..data.registry import locate_dataset
from ..runner.checks import suggest
from ..runner.config import RunConfig
from ..runner.errors import ConfigError
from ..runner.task import MetricSpec, SelectionRule, Stage, StageResult, Task, best_on
from ..runner.world import world_size_of
from .attacks import training_attack_name
from .config import AdversarialConfig
from .data import TEST_SET_SIZES, RobustDataModule
from .ensemble import EnsembleSettings
from .evaluation import PGD_STEPS
from .models import build_network, list_networks

__all__ = ["AdversarialTask", "ADVERSARIAL"]

# Evaluation is in fp32: half-precision weights ("*-true") would attack a different network.
_EVAL_PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed")


def _cfg(cfg: RunConfig) -> AdversarialConfig:
    assert isinstance(cfg, AdversarialConfig)
    return cfg


def robust_attack_name(cfg: AdversarialConfig) -> str:
    """The attack behind ``test/robust_acc``: the ensemble's name, or PGD-20 without an ensemble."""
    return EnsembleSettings.from_config(cfg.eval).name() if cfg.eval.ensemble else f"pgd-{PGD_STEPS}"


TRAIN_SET_SIZES = {"fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000}  # before the validation split


def robust_header(robust: str) -> str:
    """A column header for the robust attack: ``AutoAttack``, else the attacks' names (``APGD-CE+APGD-T``)."""
    if robust == "autoattack-standard":
        return "AutoAttack"
    return "+".join(part.split("(")[0].strip().upper() for part in robust.split("+"))


def evaluated_test_images(cfg: AdversarialConfig) -> int:
    """Images of the test split the run evaluates (data.test_fraction applied as tasks.data.splits does)."""
    full = TEST_SET_SIZES[cfg.data.name]
    return full if cfg.data.test_fraction == 1 else max(1, round(cfg.data.test_fraction * full))


class AdversarialTask(Task):
    name = "adversarial"
    config_class = AdversarialConfig
    description = "Adversarial training (PGD-AT, TRADES, FGSM-RS) and robust evaluation (FGSM, PGD-20, AutoAttack)."
    grid_coordinates = {"method": "method"}
    # A sweep that grids attack_mode (configs/sweeps/medium_adversarial.yaml) shows "BN · train" beside "BN · eval"
    row_coordinates = ("attack_mode",)
    eval_needs_gradients = True  # attacks take gradients in validation and test

    def identity(self, cfg: RunConfig) -> tuple[str, str]:
        cfg = _cfg(cfg)
        return cfg.data.name, cfg.model.name

    def metrics(self, cfg: RunConfig) -> tuple[MetricSpec, ...]:
        cfg = _cfg(cfg)
        robust = robust_attack_name(cfg)
        group = "robustness"  # one table: Clean | FGSM | PGD-20 | AutoAttack, in this order
        return (MetricSpec("test/acc", "clean test accuracy", group=group, short="Clean"),
                MetricSpec("test/fgsm_acc", "FGSM accuracy", group=group, short="FGSM"),
                MetricSpec(f"test/pgd{PGD_STEPS}_acc", f"PGD-{PGD_STEPS} accuracy", group=group,
                           short=f"PGD-{PGD_STEPS}"),
                MetricSpec("test/robust_acc", f"robust accuracy, {robust}", primary=True, group=group,
                           short=robust_header(robust)))

    def selection(self, cfg: RunConfig) -> SelectionRule:
        return best_on("val/robust_acc", "max", "best robust validation accuracy (PGD-10)")

    def protocol(self, cfg: RunConfig) -> dict[str, Any]:
        cfg = _cfg(cfg)
        samples = cfg.eval.robust_samples
        return {"attack_mode": cfg.attack_mode, "epsilon": round(cfg.epsilon, 6), "train_attack": training_attack_name(cfg),
                "robust_attack": robust_attack_name(cfg),
                "robust_samples": min(samples, evaluated_test_images(cfg)) if samples else evaluated_test_images(cfg)}

    def validate(self, cfg: RunConfig) -> None:
        cfg = _cfg(cfg)
        if cfg.data.name not in TEST_SET_SIZES:
            raise ConfigError(f"data.name: {cfg.data.name!r} is not available for adversarial training"
                              f"{suggest(cfg.data.name, TEST_SET_SIZES)}; choose {', '.join(TEST_SET_SIZES)}")
        if cfg.model.name not in list_networks():
            raise ConfigError(f"model.name: unknown model {cfg.model.name!r}{suggest(cfg.model.name, list_networks())}; "
                              f"available: {', '.join(list_networks())}")
        if cfg.method == "fgsm_rs" and cfg.fgsm_rs.step > 2 * cfg.fgsm_rs.epsilon:
            raise ConfigError(f"fgsm_rs.step_size={cfg.fgsm_rs.step:g} is above 2 * epsilon = {2 * cfg.fgsm_rs.epsilon:g}, "
                              "where FGSM training overfits catastrophically (Wong et al., 2020); use at most 2 * epsilon "
                              "(1.25 * epsilon is the paper's)")
        size = evaluated_test_images(cfg)
        if cfg.eval.robust_samples is not None and cfg.eval.robust_samples > size:
            raise ConfigError(f"eval.robust_samples={cfg.eval.robust_samples} is larger than the test set ({size} images of "
                              f"{cfg.data.name} with data.test_fraction={cfg.data.test_fraction:g}); use at most {size}, "
                              "or null for all of them")
        if cfg.eval.val_robust_samples > cfg.data.val_size:
            raise ConfigError(f"eval.val_robust_samples={cfg.eval.val_robust_samples} is larger than the validation split "
                              f"(data.val_size={cfg.data.val_size})")
        classes = get_dataset_info(cfg.data.name).num_classes
        if cfg.eval.target_classes > classes - 1:
            raise ConfigError(f"eval.target_classes={cfg.eval.target_classes}: {cfg.data.name} has {classes} classes, "
                              f"so at most {classes - 1} target classes")
        if len(set(cfg.eval.ensemble)) != len(cfg.eval.ensemble):
            raise ConfigError(f"eval.ensemble={cfg.eval.ensemble} names an attack twice")
        if cfg.trainer.precision not in _EVAL_PRECISIONS:
            raise ConfigError(f"trainer.precision={cfg.trainer.precision}: adversarial evaluation runs in fp32, which "
                              f"needs fp32 weights; use {', '.join(_EVAL_PRECISIONS)}")

    def locate_data(self, cfg: RunConfig) -> None:
        cfg = _cfg(cfg)
        locate_dataset(cfg.data.name, cfg.data.root, cfg.data.download)

    def input_shape(self, cfg: RunConfig) -> tuple[int, ...]:
        return get_dataset_info(_cfg(cfg).data.name).input_shape

    def build_network(self, cfg: RunConfig) -> nn.Module:
        cfg = _cfg(cfg)
        info = get_dataset_info(cfg.data.name)
        return build_network(cfg.model.name, norm=str(cfg.norm), num_classes=info.num_classes, in_channels=info.channels,
                             mean=info.mean, std=info.std, width=cfg.model.width,
                             zero_init_residual=cfg.model.zero_init_residual,
                             weight_standardization=cfg.model.weight_standardization)

    def build(self, cfg: RunConfig, stage: Stage, earlier: dict[str, StageResult]
              ) -> tuple[L.LightningModule, L.LightningDataModule]:
        from .module import AdversarialModule

        cfg = _cfg(cfg)
        datamodule = RobustDataModule(cfg.data, cfg.batch_size, val_robust_samples=cfg.eval.val_robust_samples,
                                      robust_samples=cfg.eval.robust_samples)
        info = datamodule.info
        module = AdversarialModule(cfg, num_classes=info.num_classes, in_channels=info.channels, mean=info.mean,
                                   std=info.std, global_batch_size=cfg.batch_size * world_size_of(cfg))
        return module, datamodule

    def training_steps(self, cfg: RunConfig) -> int | None:
        """epochs x full global batches of the training subset (the loader drops the last partial batch)."""
        cfg = _cfg(cfg)
        images = max(1, round(cfg.data.fraction * (TRAIN_SET_SIZES[cfg.data.name] - cfg.data.val_size)))
        steps = cfg.trainer.epochs * (images // (cfg.batch_size * world_size_of(cfg)))
        return min(steps, cfg.trainer.max_steps) if cfg.trainer.max_steps > 0 else steps

    def stage_outputs(self, cfg: RunConfig, stage: Stage, module: L.LightningModule) -> dict[str, Any]:
        return module.robust_outputs()  # type: ignore[operator]

    def shrink(self, cfg: RunConfig) -> RunConfig:
        """Tiny data, model and attack budgets; every attack and check still runs."""
        cfg = _cfg(super().shrink(cfg))
        data = dataclasses.replace(cfg.data, val_size=64, fraction=min(cfg.data.fraction, 0.003),
                                   test_fraction=min(cfg.data.test_fraction, 0.01), eval_batch_size=64, num_workers=0)
        model = dataclasses.replace(cfg.model, name="resnet8", width=4)
        evaluation = dataclasses.replace(cfg.eval, robust_samples=32, val_robust_samples=32, apgd_steps=5, fab_steps=5,
                                         target_classes=2, square_queries=50)
        return dataclasses.replace(cfg, data=data, model=model, eval=evaluation)


ADVERSARIAL = AdversarialTask()
