"""The classification run configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..data.config import DataConfig
from ..models.config import ModelConfig
from ..optim import OptimConfig
from ..runner.checks import between, checked
from ..runner.config import RunConfig

__all__ = ["ClassificationConfig"]


@dataclass
class ClassificationConfig(RunConfig):
    """Image classification run: a ResNet with the norm under test in every slot, trained with SGD.

    Example:
        >>> from tasks.classification.config import ClassificationConfig
        >>> cfg = ClassificationConfig(norm="bgn:num_groups=4", batch_size=16)
        >>> cfg.model.name, cfg.optim.schedule
        ('resnet20', 'cosine')

    Attributes:
        label_smoothing: label smoothing of the cross-entropy loss.
        selection: which checkpoint the plain test metrics report: last (the final model, as the
            normalization papers report it) or best_val (the epoch with the best validation accuracy).
            The last checkpoint's metrics are in the record either way, under last/. median_last5 is
            the GN paper's reporting rule: the primary metric is val/acc_median_last5, the median of
            the last 5 epochs' validation accuracy (needs trainer.epochs >= 5); the test metrics are
            the last checkpoint's. val/acc_median_last5 is recorded under every rule when there are
            5 epochs or more.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    label_smoothing: float = checked(0.0, between(0, 1, high_open=True))
    selection: Literal["last", "best_val", "median_last5"] = "last"
