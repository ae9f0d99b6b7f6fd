"""The few-shot data sets by name, and where each is read from."""

from __future__ import annotations

from pathlib import Path

from ...data.registry import resolve_data_root
from .base import FewShotDataset
from .cifar_fs import CIFAR_FS
from .digits import DIGITS
from .fashion_rot import BASE_SPLITS, DEFAULT_SPLIT, FASHION_MNIST_ROT, fashion_rot
from .mini_imagenet import MINI_IMAGENET
from .omniglot import OMNIGLOT

__all__ = ["FEWSHOT_DATASETS", "CROSS_DOMAIN", "SPLIT_NAMES", "get_fewshot_dataset", "fewshot_dataset", "split_name",
           "data_root"]

FEWSHOT_DATASETS: dict[str, FewShotDataset] = {
    d.name: d for d in (FASHION_MNIST_ROT, CIFAR_FS, OMNIGLOT, MINI_IMAGENET)
}
CROSS_DOMAIN: dict[str, FewShotDataset] = {DIGITS.name: DIGITS}
# Named class splits (``data.split``); a data set missing here has one split, its benchmark's.
SPLIT_NAMES: dict[str, tuple[str, ...]] = {FASHION_MNIST_ROT.name: tuple(BASE_SPLITS)}
_DEFAULT_SPLIT = {FASHION_MNIST_ROT.name: DEFAULT_SPLIT}


def split_name(name: str, split: str | None) -> str:
    """The split a run uses, for its record: the named one, the data set's default, or ``standard``."""
    return split or _DEFAULT_SPLIT.get(name, "standard")


def fewshot_dataset(name: str, split: str | None = None) -> FewShotDataset:
    """A meta-training data set with its class split (``split`` None: the default; checked by the task)."""
    if name == FASHION_MNIST_ROT.name:
        return fashion_rot(split_name(name, split))
    return FEWSHOT_DATASETS[name]


def get_fewshot_dataset(name: str) -> FewShotDataset:
    return FEWSHOT_DATASETS[name] if name in FEWSHOT_DATASETS else CROSS_DOMAIN[name]


def data_root(root: str | None, dataset: FewShotDataset) -> Path | None:
    """``--data.root``, else $NORMBENCH_DATA, else None for an embedded set (the shared rule of tasks.data)."""
    return resolve_data_root(root, dataset)  # type: ignore[arg-type]  # reads .embedded only
