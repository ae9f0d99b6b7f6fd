"""The test-time robust evaluation: every attack on the same fixed subset, per-sample outcomes, the summary.

Per image of the subset: clean correctness, FGSM, PGD-20 (step epsilon/4,
random start), optionally PGD-200 on the images PGD-20 left correct (the
convergence check), and the ensemble on the clean-correct images, each member
on the images still robust. All in eval mode, fp32, with the evaluation seed.
:func:`summarize` turns the outcomes into metrics, counts and the reasons to
distrust them (:mod:`.sanity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .attacks import fgsm, generate, pgd, within_threat_model
from .config import RobustEvalConfig
from .ensemble import EnsembleSettings, build_ensemble, run_ensemble
from .sanity import EvalCounts, eval_warnings

__all__ = ["RobustEvaluator", "EvalSummary", "summarize", "metric_columns", "PGD_STEPS", "SELECTION_PGD_STEPS",
           "attack_names"]

PGD_STEPS = 20
SELECTION_PGD_STEPS = 10
CONVERGENCE_FACTOR = 10


def attack_names(cfg: RobustEvalConfig) -> list[str]:
    """What the test runs, in order (recorded)."""
    names = ["clean", "fgsm", f"pgd-{PGD_STEPS}"]
    if cfg.convergence_check:
        names.append(f"pgd-{PGD_STEPS * CONVERGENCE_FACTOR}")
    settings = EnsembleSettings.from_config(cfg)
    return names + [settings.member_name(a) for a in settings.attacks]


def _correct(model: nn.Module, adversarial: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
             epsilon: float) -> torch.Tensor:
    """Classified correctly, or (never expected) an example outside the threat model, which does not count."""
    with torch.no_grad():
        right = model(adversarial).argmax(1) == labels
    return right | ~within_threat_model(adversarial, images, epsilon)


class RobustEvaluator:
    """The test attacks on ``model`` (build after the model is on its device; it is attacked in eval mode)."""

    def __init__(self, model: nn.Module, epsilon: float, cfg: RobustEvalConfig, num_classes: int) -> None:
        self.model, self.epsilon, self.seed = model, epsilon, cfg.seed
        self.fgsm = fgsm(model, epsilon)
        self.pgd = pgd(model, epsilon, PGD_STEPS)
        self.pgd_long = pgd(model, epsilon, PGD_STEPS * CONVERGENCE_FACTOR) if cfg.convergence_check else None
        self.settings = EnsembleSettings.from_config(cfg)
        self.members = build_ensemble(model, epsilon, self.settings, num_classes)

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image outcomes (bool): ``clean``, ``fgsm``, ``pgd``, [``pgd_long``], [``ensemble``, ``broken:<name>``]."""
        model, eps = self.model, self.epsilon
        images = images.float()
        with torch.autocast(images.device.type, enabled=False):
            model.eval()
            with torch.no_grad():
                clean = model(images).argmax(1) == labels
            out = {"clean": clean}
            for key, attack in (("fgsm", self.fgsm), ("pgd", self.pgd)):
                adversarial = generate(attack, model, images, labels, "eval", seed=self.seed, fp32=True)
                out[key] = _correct(model, adversarial, images, labels, eps)
            if self.pgd_long is not None:
                out["pgd_long"] = out["pgd"].clone()
                todo = out["pgd"].nonzero().flatten()
                if len(todo):
                    x, y = images[todo], labels[todo]
                    adversarial = generate(self.pgd_long, model, x, y, "eval", seed=self.seed, fp32=True)
                    out["pgd_long"][todo] = _correct(model, adversarial, x, y, eps)
            if self.members:
                robust = clean.clone()
                broken = run_ensemble(self.members, model, images, labels, robust, eps, self.seed)
                out["ensemble"] = robust
                out.update({f"broken:{name}": hit for name, hit in broken.items()})
        return out


@dataclass
class EvalSummary:
    """Metrics (fractions of the subset), counts, the attack behind ``robust_acc`` and the warnings."""

    metrics: dict[str, float]
    counts: dict[str, int]
    samples: int
    robust_attack: str
    warnings: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {"samples": self.samples, "robust_attack": self.robust_attack, "counts": self.counts,
                "metrics": self.metrics, "eval_warning": "; ".join(self.warnings) or None}


def metric_columns(outcomes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-image outcomes under the names of the metrics that are their means (the outcome file's columns too).

    ``test/robust_acc`` is the ensemble's outcome, or PGD-20's without an ensemble.
    """
    columns = {"test/subset_acc": outcomes["clean"], "test/fgsm_acc": outcomes["fgsm"],
               f"test/pgd{PGD_STEPS}_acc": outcomes["pgd"]}
    if "pgd_long" in outcomes:
        columns[f"test/pgd{PGD_STEPS * CONVERGENCE_FACTOR}_acc"] = outcomes["pgd_long"]
    columns["test/robust_acc"] = outcomes.get("ensemble", outcomes["pgd"])
    return columns


def summarize(outcomes: dict[str, torch.Tensor], settings: EnsembleSettings) -> EvalSummary:
    """Metrics and sanity checks of the per-image outcomes of one subset (each image once)."""
    n = len(outcomes["clean"])
    counts = {key: int(value.sum()) for key, value in outcomes.items() if not key.startswith("broken:")}
    gradient_robust = outcomes["fgsm"] & outcomes["pgd"] & outcomes.get("pgd_long", outcomes["pgd"])
    square_only = None
    if "broken:square" in outcomes:
        square_only = int((outcomes["broken:square"] & gradient_robust).sum())
        counts["square_only"] = square_only
    for key, value in outcomes.items():
        if key.startswith("broken:"):
            counts[key] = int(value.sum())
    metrics = {name: int(column.sum()) / n for name, column in metric_columns(outcomes).items()}
    has_ensemble = "ensemble" in counts
    robust_attack = settings.name() if has_ensemble else f"pgd-{PGD_STEPS}"
    warnings = eval_warnings(EvalCounts(
        samples=n, clean=counts["clean"], fgsm=counts["fgsm"], pgd=counts["pgd"], pgd_long=counts.get("pgd_long"),
        ensemble=counts.get("ensemble"), square_only=square_only, pgd_name=f"PGD-{PGD_STEPS}",
        ensemble_name=robust_attack))
    return EvalSummary(metrics, counts, n, robust_attack, warnings)
