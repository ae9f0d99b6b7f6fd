"""Unsupervised domain adaptation: source-only, DANN, CDAN, AdaBN and a target oracle, per norm."""

from ..registry import register_task

register_task(
    "uda",
    "tasks.uda.task:UDA",
    description="Unsupervised domain adaptation (source-only, DANN, CDAN, AdaBN, target oracle) from a labelled "
                "source domain to an unlabelled target domain.",
)
