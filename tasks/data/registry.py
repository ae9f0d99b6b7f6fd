"""Known image-classification data sets: shapes, statistics and how to load them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import cifar, fashion_mnist, imagenet
from .errors import DataMissingError

__all__ = ["DatasetInfo", "DATASETS", "get_dataset_info", "resolve_data_root", "UnknownDatasetError"]


class UnknownDatasetError(ValueError):
    pass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    standard_augment: str
    crop_padding: int
    embedded: bool  # available without a data root
    # tensor data sets: (root, split, download) -> (uint8 images, labels); None for folder data sets
    load_tensors: Callable[[Path | None, str, bool], tuple[torch.Tensor, torch.Tensor]] | None
    # (root, download) -> None: raises DataMissingError when the files are absent and may not be downloaded.
    # Checks the disk only (no loading), so a run can be refused before its directory exists.
    locate: Callable[[Path | None, bool], None] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)


def _fashion(root: Path | None, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return fashion_mnist.load_fashion_mnist(root, split, download=download)


def _cifar(name: str):
    def load(root: Path | None, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
        assert root is not None
        return cifar.load_cifar(name, root, split, download)

    return load


def _cifar_locate(name: str):
    def locate(root: Path | None, download: bool) -> None:
        assert root is not None
        if not download:
            cifar.locate_cifar(name, root)

    return locate


def _imagenet_locate(root: Path | None, download: bool) -> None:
    assert root is not None
    imagenet.imagenet_dir(root)


DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", 10, 1, 28, (0.2860,), (0.3530,), "crop_flip", 2, True, _fashion,
        fashion_mnist.locate_fashion_mnist,
    ),
    "cifar10": DatasetInfo(
        "cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "crop_flip", 4, False, _cifar("cifar10"),
        _cifar_locate("cifar10"),
    ),
    "cifar100": DatasetInfo(
        "cifar100", 100, 3, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "crop_flip", 4, False, _cifar("cifar100"),
        _cifar_locate("cifar100"),
    ),
    "imagenet": DatasetInfo("imagenet", 1000, 3, 224, imagenet.MEAN, imagenet.STD, "crop_flip", 0, False, None, _imagenet_locate),
}


def get_dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}") from None


def resolve_data_root(root: str | None, info: DatasetInfo) -> Path | None:
    """The data root to read from: the config's, else $NORMBENCH_DATA, else the user cache.

    An explicitly given root that does not exist is an error (a typo should not
    silently fall back to another copy of the data).
    """
    if root:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DataMissingError(f"data root {path} does not exist (from --data.root)")
        return path
    env = os.environ.get("NORMBENCH_DATA")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataMissingError(f"data root {path} does not exist (from $NORMBENCH_DATA)")
        return path
    if info.embedded:
        return None
    return Path.home() / ".cache" / "normbench" / "data"


def locate_dataset(name: str, root: str | None, download: bool) -> None:
    """Check, before a run starts, that data set ``name`` is where a run will read it (or fetch it if allowed).

    Raises UnknownDatasetError for an unknown name and DataMissingError (one line: where it
    looked, how to get it) for missing files; data sets without a locator are always found.
    """
    info = get_dataset_info(name)
    path = resolve_data_root(root, info)
    if info.locate is not None:
        info.locate(path, download)
