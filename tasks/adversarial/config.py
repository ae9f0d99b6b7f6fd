"""The adversarial-training run configuration: the training method, its attack, and the robust evaluation.

Every number an attack uses is a config value with a documented default. The
dataclass defaults are the Fashion-MNIST ones (the embedded data set); the
CIFAR profiles write theirs in their YAML, each with its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from ..data.config import DataConfig
from ..models.config import ModelConfig
from ..optim import OptimConfig
from ..runner.checks import NON_NEGATIVE, POSITIVE, Rule, between, checked, non_negative_int, positive_int
from ..runner.config import RunConfig

__all__ = ["AdversarialConfig", "PGDTrainingConfig", "TradesConfig", "FGSMRSConfig", "RobustEvalConfig",
           "METHODS", "ENSEMBLE_ATTACKS", "Method"]

Method = Literal["pgd_at", "trades", "fgsm_rs"]
METHODS = ("pgd_at", "trades", "fgsm_rs")
EnsembleAttack = Literal["apgd-ce", "apgd-t", "fab-t", "square"]
ENSEMBLE_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")  # AutoAttack's standard version, in its order

EPSILON = between(0, 1, low_open=True)  # L-inf radius on [0, 1] pixels
_OPTIONAL_POSITIVE = Rule(lambda v: v is None or POSITIVE.accepts(v), "a finite number > 0, or null")
_OPTIONAL_COUNT = Rule(lambda v: v is None or positive_int.accepts(v), "an integer >= 1, or null (every image)")


@dataclass
class PGDTrainingConfig:
    """PGD adversarial training (Madry et al., 2018): train on L-inf PGD examples with a random start.

    Attributes:
        epsilon: L-inf radius on [0, 1] pixels (training and evaluation).
        step_size: PGD step.
        steps: PGD steps per training batch.
    """

    epsilon: float = checked(0.1, EPSILON)
    step_size: float = checked(0.025, POSITIVE)
    steps: int = checked(7, positive_int)


@dataclass
class TradesConfig:
    """TRADES (Zhang et al., 2019): cross-entropy on clean images + beta * KL(f(x) || f(x_adv)), batch mean.

    The inner maximization is torchattacks' TPGD (KL loss, start at x + 0.001 * N(0, 1)).

    Attributes:
        epsilon: L-inf radius on [0, 1] pixels (training and evaluation).
        step_size: TPGD step.
        steps: TPGD steps per training batch.
        beta: weight of the KL (robustness) term; 6 in the paper.
    """

    epsilon: float = checked(0.1, EPSILON)
    step_size: float = checked(0.025, POSITIVE)
    steps: int = checked(7, positive_int)
    beta: float = checked(6.0, NON_NEGATIVE)


@dataclass
class FGSMRSConfig:
    """FGSM with a uniform random start, "fast" adversarial training (Wong et al., 2020).

    Attributes:
        epsilon: L-inf radius on [0, 1] pixels (training and evaluation).
        step_size: FGSM step; null means 1.25 * epsilon, the paper's choice. Above 2 * epsilon is refused
            (catastrophic overfitting sets in there).
    """

    epsilon: float = checked(0.1, EPSILON)
    step_size: Optional[float] = checked(None, _OPTIONAL_POSITIVE)

    @property
    def step(self) -> float:
        return self.step_size if self.step_size is not None else 1.25 * self.epsilon


@dataclass
class RobustEvalConfig:
    """Robust evaluation: attacks on fixed subsets, in eval mode and fp32, at the training epsilon.

    Selection: PGD-10 on the validation subset (Rice et al., 2020). Test: FGSM,
    PGD-20 and the ensemble; PGD has step epsilon/4 and a uniform random start.

    Every attack of the test runs on the same fixed subset of the test set; an
    ensemble's accuracy is the per-sample worst case over its attacks.

    Attributes:
        robust_samples: test images every attack runs on (a fixed subset); null: the whole test set.
        val_robust_samples: validation images of the selection attack (PGD-10 at the training epsilon).
        convergence_check: also run PGD-200 (10x PGD-20's steps) on the images PGD-20 left unbroken; a drop of more
            than one point flags the evaluation (the attack had not converged).
        ensemble: attacks of the strongest evaluation, run in this order on the images still robust;
            the four (apgd-ce, apgd-t, fab-t, square) are AutoAttack's standard version; empty: PGD is the strongest.
        apgd_steps: iterations of APGD-CE and APGD-T (100 in AutoAttack).
        fab_steps: iterations of FAB-T (100 in AutoAttack).
        target_classes: target classes of APGD-T and FAB-T (9 in AutoAttack).
        square_queries: queries of Square (5000 in AutoAttack).
        seed: seed of every evaluation attack (random starts, Square's search): the same for every run.
    """

    robust_samples: Optional[int] = checked(1000, _OPTIONAL_COUNT)
    val_robust_samples: int = checked(500, positive_int)
    convergence_check: bool = True
    ensemble: list[EnsembleAttack] = field(default_factory=lambda: list(ENSEMBLE_ATTACKS))
    apgd_steps: int = checked(100, positive_int)
    fab_steps: int = checked(100, positive_int)
    target_classes: int = checked(9, positive_int)
    square_queries: int = checked(5000, positive_int)
    seed: int = checked(0, non_negative_int)


@dataclass
class AdversarialConfig(RunConfig):
    """Adversarial training run: a ResNet with the norm under test in every slot, trained on attacks.

    The data pipeline hands the model [0, 1] images (attacks clip to that box);
    the model normalizes its own input. Training attacks are generated with the
    model's layers in ``attack_mode`` (eval, torchattacks' default); the best
    checkpoint is selected on robust validation accuracy.

    Example:
        >>> from tasks.adversarial.config import AdversarialConfig
        >>> cfg = AdversarialConfig(norm="bgn:num_groups=4", batch_size=16, method="trades")
        >>> cfg.trades.beta, cfg.pgd_at.epsilon, cfg.eval.ensemble
        (6.0, 0.1, ['apgd-ce', 'apgd-t', 'fab-t', 'square'])

    Attributes:
        method: pgd_at (default), trades or fgsm_rs; each reads its own section below.
        attack_mode: layer mode while a training attack is generated: eval (running statistics, torchattacks'
            default) or train (batch statistics, set from the registry metadata; running statistics are restored
            afterwards, so the attack never updates them).
    """

    method: Method = "pgd_at"
    attack_mode: Literal["eval", "train"] = "eval"
    pgd_at: PGDTrainingConfig = field(default_factory=PGDTrainingConfig)
    trades: TradesConfig = field(default_factory=TradesConfig)
    fgsm_rs: FGSMRSConfig = field(default_factory=FGSMRSConfig)
    eval: RobustEvalConfig = field(default_factory=RobustEvalConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(augment="none"))
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    @property
    def method_config(self) -> PGDTrainingConfig | TradesConfig | FGSMRSConfig:
        return getattr(self, self.method)

    @property
    def epsilon(self) -> float:
        return self.method_config.epsilon

