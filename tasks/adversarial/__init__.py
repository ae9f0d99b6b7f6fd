"""Adversarial training: PGD-AT, TRADES and FGSM-RS with torchattacks, robust evaluation up to AutoAttack."""

from ..registry import register_task

register_task(
    "adversarial",
    "tasks.adversarial.task:ADVERSARIAL",
    description="Adversarial training (PGD-AT, TRADES, FGSM-RS) and robust evaluation (FGSM, PGD-20, AutoAttack).",
    requires={"torchattacks": "pip install --no-deps torchattacks==3.5.1"},
)
