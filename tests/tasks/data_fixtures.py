"""Builders of tiny on-disk data sets in the formats tasks.data reads (IDX, CIFAR pickles, ImageFolder).

Every builder writes deterministic content whose pixels encode where they come
from, so a test can check that a loader put each value in the right place.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np

from tasks.data.idx import write_idx

FASHION_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


# ----------------------------------------------------------------------------- Fashion-MNIST (IDX)


def fashion_arrays(count: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 images and (count,) labels; ``offset`` tells copies of the data set apart."""
    rng = np.random.default_rng(offset)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = offset  # a marker: which copy was loaded
    labels = (np.arange(count) + offset) % 10
    return images, labels.astype(np.uint8)


def write_fashion(directory: Path, counts: dict[str, int], offset: int = 0, gz: bool = True) -> dict:
    """Write the four Fashion-MNIST files into ``directory``; returns {split: (images, labels)}."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, (images_name, labels_name) in FASHION_NAMES.items():
        images, labels = fashion_arrays(counts[split], offset + (0 if split == "train" else 100))
        if not gz:
            images_name, labels_name = images_name[: -len(".gz")], labels_name[: -len(".gz")]
        write_idx(directory / images_name, images)
        write_idx(directory / labels_name, labels)
        out[split] = (images, labels)
    return out


def idx_sha256(path: Path) -> str:
    """SHA-256 of the decompressed content, as fashion_mnist.SHA256 records it."""
    with gzip.open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


# ----------------------------------------------------------------------------- CIFAR (python pickles)

CIFAR_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def cifar_value(i: np.ndarray, c: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The pixel value of global image ``i``, channel ``c``, row ``y``, column ``x``."""
    return ((i * 37 + c * 85 + y * 7 + x * 3) % 256).astype(np.uint8)


def cifar_rows(first: int, count: int) -> np.ndarray:
    """(count, 3072) rows laid out channel-major (R plane, G plane, B plane, each row by row)."""
    i = np.arange(first, first + count)[:, None]
    k = np.arange(3072)[None, :]
    return cifar_value(i, k // 1024, (k % 1024) // 32, k % 32)


def cifar_expected_images(first: int, count: int) -> np.ndarray:
    """The same images as (count, 3, 32, 32), computed from the 4-d index (independent of any reshape)."""
    i, c, y, x = np.meshgrid(np.arange(first, first + count), np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return cifar_value(i, c, y, x)


def cifar_labels(first: int, count: int, num_classes: int) -> list[int]:
    return [(i * 3) % num_classes for i in range(first, first + count)]


def write_cifar_batch(path: Path, first: int, count: int, name: str, labels: list[int] | None = None) -> None:
    key, num_classes = (b"labels", 10) if name == "cifar10" else (b"fine_labels", 100)
    entry = {b"data": cifar_rows(first, count), key: labels if labels is not None else cifar_labels(first, count, num_classes)}
    if name == "cifar100":
        entry[b"coarse_labels"] = [0] * count
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(entry, fh, protocol=2)


def write_cifar(root: Path, name: str, per_batch: int, test_count: int) -> dict[str, tuple[int, int]]:
    """Write a tiny CIFAR-10/100 under ``root``; returns {split: (first global index, count)}.

    Training images get global indices 0..N-1 in file order, test images follow them.
    """
    folder = root / CIFAR_DIRS[name]
    if name == "cifar10":
        for b in range(5):
            write_cifar_batch(folder / f"data_batch_{b + 1}", b * per_batch, per_batch, name)
        n_train = 5 * per_batch
        write_cifar_batch(folder / "test_batch", n_train, test_count, name)
    else:
        n_train = per_batch
        write_cifar_batch(folder / "train", 0, n_train, name)
        write_cifar_batch(folder / "test", n_train, test_count, name)
    return {"train": (0, n_train), "test": (n_train, test_count)}


# ----------------------------------------------------------------------------- ImageFolder (ImageNet layout)


def write_image(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode="RGB").save(path)


def solid(colour: tuple[int, int, int], height: int, width: int) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (height, width, 3)).copy()


def two_tone(left: tuple[int, int, int], right: tuple[int, int, int], size: int = 64) -> np.ndarray:
    """Left half ``left``, right half ``right``: shows orientation and channel order after the transforms."""
    image = solid(left, size, size)
    image[:, size // 2 :] = right
    return image
