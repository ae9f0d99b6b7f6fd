"""CIFAR-10 and CIFAR-100 in torchvision's on-disk format (the python pickles).

``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}`` and
``<root>/cifar-100-python/{train,test}``: each pickle holds ``data`` as
(N, 3072) uint8 rows in channel-major order and the labels.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .errors import DataCorruptError, DataMissingError

LAYOUT = {
    "cifar10": (
        "cifar-10-batches-py",
        {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
        b"labels",
        10,
    ),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}, b"fine_labels", 100),
}
URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}


def _download(name: str, root: Path) -> None:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    try:
        cls(str(root), train=True, download=True)
    except Exception as exc:
        raise DataMissingError(f"{name}: download into {root} failed ({type(exc).__name__}: {exc})") from None


def _missing_error(name: str, root: Path, missing: list[str]) -> DataMissingError:
    folder = LAYOUT[name][0]
    return DataMissingError(
        f"{name} not found: looked for {', '.join(str(root / folder / f) for f in missing)}. "
        f"Download {URLS[name]} and extract it into {root} (it creates {folder}/), "
        "or pass --data.download true to let torchvision fetch it"
    )


def locate_cifar(name: str, root: Path) -> None:
    """Raise DataMissingError unless every file of both splits is on disk."""
    folder, files, _, _ = LAYOUT[name]
    missing = [f for split in ("train", "test") for f in files[split] if not (root / folder / f).is_file()]
    if missing:
        raise _missing_error(name, root, missing)


@lru_cache(maxsize=4)
def load_cifar(name: str, root: Path, split: str, download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, 3, 32, 32) and labels as int64 (N,)."""
    folder, files, label_key, num_classes = LAYOUT[name]
    directory = root / folder
    missing = [f for f in files[split] if not (directory / f).is_file()]
    if missing and download:
        _download(name, root)
        missing = [f for f in files[split] if not (directory / f).is_file()]
    if missing:
        raise _missing_error(name, root, missing)
    images, labels = [], []
    for f in files[split]:
        try:
            with open(directory / f, "rb") as fh:
                entry = pickle.load(fh, encoding="bytes")
            data = np.asarray(entry[b"data"], dtype=np.uint8)
            targets = np.asarray(entry[label_key], dtype=np.int64)
        except Exception as exc:
            raise DataCorruptError(f"{directory / f}: not a readable CIFAR batch ({type(exc).__name__}: {exc})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(targets) != len(data):
            raise DataCorruptError(f"{directory / f}: data of shape {data.shape} with {len(targets)} labels; expected (N, 3072)")
        if targets.size and (targets.min() < 0 or targets.max() >= num_classes):
            raise DataCorruptError(f"{directory / f}: labels outside 0..{num_classes - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(targets)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))
