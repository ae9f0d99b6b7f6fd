"""The ``data`` section of tasks that train on an image-classification data set (classification, adversarial, NAS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from ..runner.checks import FRACTION, checked, non_negative_int, positive_int

__all__ = ["DataConfig", "AUGMENT_CHOICES"]

AUGMENT_CHOICES = ("standard", "none", "flip", "crop", "crop_flip")


@dataclass
class DataConfig:
    """Data set and input pipeline.

    Attributes:
        name: data set name (fashion_mnist, cifar10, cifar100, imagenet, ...).
        root: data root (default: $NORMBENCH_DATA, else ~/.cache/normbench/data); embedded data sets need none.
        download: let torchvision download a missing data set into the root (where it can); false never downloads.
        val_size: images held out from the training set for validation (fixed split).
        split_seed: seed of the train/validation split and of the subsets; the same for every run.
        fraction: fraction of the (remaining) training set used, for quick runs.
        test_fraction: fraction of the test set evaluated (1.0 = all; below 1 only for quick runs).
        augment: standard (the data set's usual augmentation), none, flip, crop, crop_flip.
        num_workers: data loader worker processes (0 = load in the training process).
        eval_batch_size: batch size of validation and test (eval mode: results do not depend on it).
    """

    name: str = "fashion_mnist"
    root: Optional[str] = None
    download: bool = False
    val_size: int = checked(5000, positive_int)
    split_seed: int = checked(0, non_negative_int)
    fraction: float = checked(1.0, FRACTION)
    test_fraction: float = checked(1.0, FRACTION)
    augment: Literal["standard", "none", "flip", "crop", "crop_flip"] = "standard"
    num_workers: int = checked(0, non_negative_int)
    eval_batch_size: int = checked(256, positive_int)
