"""The few-shot data sets by name, and where each is read from."""

from __future__ import annotations

from pathlib import Path

from ...data.registry import resolve_data_root
from .base import FewShotDataset
from .cifar_fs import CIFAR_FS
from .digits import DIGITS
from .fashion_rot import FASHION_MNIST_ROT
from .mini_imagenet import MINI_IMAGENET
from .omniglot import OMNIGLOT

__all__ = ["FEWSHOT_DATASETS", "CROSS_DOMAIN", "get_fewshot_dataset", "data_root"]

FEWSHOT_DATASETS: dict[str, FewShotDataset] = {
    d.name: d for d in (FASHION_MNIST_ROT, CIFAR_FS, OMNIGLOT, MINI_IMAGENET)
}
CROSS_DOMAIN: dict[str, FewShotDataset] = {DIGITS.name: DIGITS}


def get_fewshot_dataset(name: str) -> FewShotDataset:
    return FEWSHOT_DATASETS[name] if name in FEWSHOT_DATASETS else CROSS_DOMAIN[name]


def data_root(root: str | None, dataset: FewShotDataset) -> Path | None:
    """``--data.root``, else $NORMBENCH_DATA, else None for an embedded set (the shared rule of tasks.data)."""
    return resolve_data_root(root, dataset)  # type: ignore[arg-type]  # reads .embedded only
