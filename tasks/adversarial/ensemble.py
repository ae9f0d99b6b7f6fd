"""AutoAttack (Croce & Hein, 2020) assembled from torchattacks' attacks with the authors' settings.

torchattacks' own ``AutoAttack(version="standard")`` runs APGD with torchattacks'
default of 10 iterations and seeds from the clock. The standard version of the
original implementation runs, in this order and each on the images still
robust: APGD-CE (100 iterations, 1 restart), APGD-T (targeted DLR loss, 100
iterations, 9 target classes, 1 restart), FAB-T (100 iterations, 9 target
classes, 1 restart) and Square (5000 queries, p_init 0.8, 1 restart, no rescaled
schedule), with a
fixed seed. :func:`build_ensemble` builds exactly that from torchattacks'
APGD, APGDT, FAB and Square; a profile may run fewer attacks, or fewer
iterations, and :meth:`EnsembleSettings.name` then says so.

An image counts as broken only when the returned example is misclassified,
inside the epsilon ball and inside [0, 1] (checked here, not taken on trust).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchattacks
from torch import nn

from .attacks import generate, within_threat_model
from .config import ENSEMBLE_ATTACKS, RobustEvalConfig

__all__ = ["EnsembleSettings", "build_ensemble", "run_ensemble", "STANDARD"]

STANDARD = {"apgd_steps": 100, "fab_steps": 100, "target_classes": 9, "square_queries": 5000}


@dataclass(frozen=True)
class EnsembleSettings:
    """Which attacks the ensemble runs and with which budgets (AutoAttack's standard ones by default)."""

    attacks: tuple[str, ...] = ENSEMBLE_ATTACKS
    apgd_steps: int = 100
    fab_steps: int = 100
    target_classes: int = 9
    square_queries: int = 5000
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: RobustEvalConfig) -> "EnsembleSettings":
        return cls(tuple(cfg.ensemble), cfg.apgd_steps, cfg.fab_steps, cfg.target_classes, cfg.square_queries,
                   cfg.seed)

    def is_standard(self) -> bool:
        return self.attacks == ENSEMBLE_ATTACKS and all(getattr(self, k) == v for k, v in STANDARD.items())

    def member_name(self, attack: str) -> str:
        """``apgd-t``, or ``apgd-t(20 it, 3 targets)`` when a budget differs from AutoAttack's."""
        notes = []
        if attack in ("apgd-ce", "apgd-t") and self.apgd_steps != STANDARD["apgd_steps"]:
            notes.append(f"{self.apgd_steps} it")
        if attack == "fab-t" and self.fab_steps != STANDARD["fab_steps"]:
            notes.append(f"{self.fab_steps} it")
        if attack in ("apgd-t", "fab-t") and self.target_classes != STANDARD["target_classes"]:
            notes.append(f"{self.target_classes} targets")
        if attack == "square" and self.square_queries != STANDARD["square_queries"]:
            notes.append(f"{self.square_queries} queries")
        return f"{attack}({', '.join(notes)})" if notes else attack

    def name(self) -> str:
        """``autoattack-standard`` for the full standard version, else its members joined by ``+``."""
        if self.is_standard():
            return "autoattack-standard"
        return "+".join(self.member_name(a) for a in self.attacks)


def build_ensemble(model: nn.Module, epsilon: float, settings: EnsembleSettings, num_classes: int
                   ) -> list[tuple[str, torchattacks.attack.Attack]]:
    """The ensemble's torchattacks attacks on ``model`` (build after the model is on its device)."""
    targets = min(settings.target_classes, num_classes - 1)
    seed = settings.seed
    builders = {
        "apgd-ce": lambda: torchattacks.APGD(model, norm="Linf", eps=epsilon, steps=settings.apgd_steps,
                                             n_restarts=1, seed=seed, loss="ce", eot_iter=1, rho=0.75),
        # n_classes - 1 target classes: the highest-scoring wrong classes, as in the original.
        "apgd-t": lambda: torchattacks.APGDT(model, norm="Linf", eps=epsilon, steps=settings.apgd_steps,
                                             n_restarts=1, seed=seed, eot_iter=1, rho=0.75, n_classes=targets + 1),
        "fab-t": lambda: torchattacks.FAB(model, norm="Linf", eps=epsilon, steps=settings.fab_steps, n_restarts=1,
                                          alpha_max=0.1, eta=1.05, beta=0.9, seed=seed, multi_targeted=True,
                                          n_classes=targets + 1),
        "square": lambda: torchattacks.Square(model, norm="Linf", eps=epsilon, n_queries=settings.square_queries,
                                              n_restarts=1, p_init=0.8, loss="margin", resc_schedule=False, seed=seed),
    }
    return [(name, builders[name]()) for name in settings.attacks]


def run_ensemble(members: list[tuple[str, torchattacks.attack.Attack]], model: nn.Module, images: torch.Tensor,
                 labels: torch.Tensor, robust: torch.Tensor, epsilon: float, seed: int) -> dict[str, torch.Tensor]:
    """Run each member on the images still robust, in order; per member, the images it broke.

    ``robust`` (bool, per image; clean-correct to start with) is updated in
    place: afterwards it is the per-sample worst case over the ensemble.
    """
    broken: dict[str, torch.Tensor] = {}
    for name, attack in members:
        hit = torch.zeros_like(robust)
        todo = robust.nonzero().flatten()
        if len(todo):
            x, y = images[todo], labels[todo]
            adversarial = generate(attack, model, x, y, "eval", seed=seed, fp32=True)
            with torch.no_grad():
                wrong = model(adversarial).argmax(1) != y
            fooled = wrong & within_threat_model(adversarial, x, epsilon)
            hit[todo[fooled]] = True
            robust[todo[fooled]] = False
        broken[name] = hit
    return broken
