"""Digit domains read from disk in their usual releases: MNIST, MNIST-M, USPS and SVHN.

Where each looks under the data root (the first folder that has the files wins):

- MNIST: ``mnist/`` or ``MNIST/raw/`` (torchvision's layout): the four IDX files
  ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, gzip-compressed or not.
- MNIST-M: ``mnist_m/`` as released by Ganin et al.: image folders ``mnist_m_train/``
  and ``mnist_m_test/`` plus ``mnist_m_train_labels.txt`` / ``mnist_m_test_labels.txt``
  (one ``<file name> <label>`` line per image).
- USPS: ``usps/``, ``USPS/`` or the root itself: ``usps.bz2`` (train) and ``usps.t.bz2``
  (test), the libsvm files of the LIBSVM data page (labels 1..10 for digits 0..9,
  256 features in [-1, 1], 16 x 16 pixels row by row).
- SVHN: ``svhn/``, ``SVHN/`` or the root itself: torchvision's ``train_32x32.mat`` and
  ``test_32x32.mat`` (``X``: 32 x 32 x 3 x N, ``y``: labels 1..10, where 10 is the digit 0).

Every loader returns uint8 images (N, C, H, W) at the native size and int64 labels 0..9.
"""

from __future__ import annotations

import bz2
import gzip
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..data.errors import DataCorruptError, DataMissingError
from ..data.idx import read_idx

__all__ = ["locate_digits", "load_digits", "MNIST_FILES", "USPS_FILES", "SVHN_FILES", "MNIST_M_FILES"]

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_M_FILES = {"train": ("mnist_m_train", "mnist_m_train_labels.txt"), "test": ("mnist_m_test", "mnist_m_test_labels.txt")}
USPS_FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}

HOW_TO_GET = {
    "mnist": "put the four MNIST IDX files (*-ubyte or *-ubyte.gz, from torchvision's MNIST or the original "
             "release) in <data root>/mnist",
    "mnist_m": "extract the MNIST-M release (mnist_m.tar.gz of Ganin et al.) into <data root>, which creates "
               "mnist_m/ with mnist_m_train/, mnist_m_test/ and the two label files",
    "usps": "download usps.bz2 and usps.t.bz2 from the LIBSVM data page (multiclass/usps) into <data root>/usps",
    "svhn": "download train_32x32.mat and test_32x32.mat (SVHN format 2, as torchvision's SVHN does) into "
            "<data root>/svhn",
}


def _candidates(name: str, root: Path) -> list[Path]:
    return {
        "mnist": [root / "mnist", root / "MNIST" / "raw"],
        "mnist_m": [root / "mnist_m", root / "mnist_m" / "mnist_m"],
        "usps": [root / "usps", root / "USPS", root],
        "svhn": [root / "svhn", root / "SVHN", root],
    }[name]


def _either(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _split_files(name: str, directory: Path, split: str) -> list[Path] | None:
    """The files of ``split`` in ``directory``, or None when one is missing."""
    if name == "mnist":
        found = [_either(directory, stem) for stem in MNIST_FILES[split]]
        return None if None in found else found  # type: ignore[return-value]
    if name == "mnist_m":
        folder, labels = MNIST_M_FILES[split]
        ok = (directory / folder).is_dir() and (directory / labels).is_file()
        return [directory / folder, directory / labels] if ok else None
    file = directory / (USPS_FILES if name == "usps" else SVHN_FILES)[split]
    return [file] if file.is_file() else None


def _find(name: str, root: Path, split: str) -> list[Path]:
    for directory in _candidates(name, root):
        files = _split_files(name, directory, split)
        if files is not None:
            return files
    looked = ", ".join(str(d) for d in _candidates(name, root))
    raise DataMissingError(f"{name} ({split} split) not found: looked in {looked}. To get it, {HOW_TO_GET[name]}, "
                           "and pass --data.root or set $NORMBENCH_DATA")


def locate_digits(name: str, root: Path) -> None:
    """Raise DataMissingError unless both splits of ``name`` are on disk (no loading)."""
    for split in ("train", "test"):
        _find(name, root, split)


def _idx_count(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            header = fh.read(8)
    except OSError as exc:
        raise DataCorruptError(f"{path}: cannot be read ({exc})") from None
    if len(header) < 8:
        raise DataCorruptError(f"{path}: not an IDX file (only {len(header)} bytes)")
    return struct.unpack(">I", header[4:8])[0]


def _check_labels(path: Path, labels: np.ndarray, count: int) -> torch.Tensor:
    if len(labels) != count:
        raise DataCorruptError(f"{path}: {len(labels)} labels for {count} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataCorruptError(f"{path}: labels outside 0..9 (found {labels.min()}..{labels.max()})")
    return torch.from_numpy(labels.astype(np.int64))


def _load_mnist(files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    images_path, labels_path = files
    count = _idx_count(images_path)
    images = read_idx(images_path, (count, 28, 28))
    labels = read_idx(labels_path, (_idx_count(labels_path),)).numpy()
    return images.unsqueeze(1), _check_labels(labels_path, labels, count)


def _load_mnist_m(files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    folder, labels_path = files
    entries = []
    for number, line in enumerate(labels_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataCorruptError(f"{labels_path}:{number}: expected '<file name> <label>', got {line!r}")
        entries.append((parts[0], int(parts[1])))
    if not entries:
        raise DataCorruptError(f"{labels_path}: no images listed")
    images = np.empty((len(entries), 3, 28, 28), dtype=np.uint8)
    for i, (file_name, _) in enumerate(entries):
        path = folder / file_name
        try:
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"))
        except OSError as exc:
            raise DataCorruptError(f"{path}: listed in {labels_path.name} but not a readable image ({exc})") from None
        if array.shape != (28, 28, 3):
            raise DataCorruptError(f"{path}: {array.shape[1]}x{array.shape[0]} pixels, MNIST-M images are 28x28")
        images[i] = array.transpose(2, 0, 1)
    labels = np.array([label for _, label in entries])
    return torch.from_numpy(images), _check_labels(labels_path, labels, len(entries))


def _load_usps(files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    (path,) = files
    try:
        with bz2.open(path, "rt") as fh:
            lines = [line.split() for line in fh if line.strip()]
    except (OSError, EOFError, ValueError) as exc:
        raise DataCorruptError(f"{path}: not a readable bz2 libsvm file ({exc})") from None
    pixels = np.zeros((len(lines), 256), dtype=np.float32)  # libsvm omits zero features: 0 is mid-grey
    labels = np.empty(len(lines), dtype=np.int64)
    for row, parts in enumerate(lines):
        try:
            labels[row] = int(float(parts[0])) - 1
            for item in parts[1:]:
                index, value = item.split(":")
                pixels[row, int(index) - 1] = float(value)
        except (ValueError, IndexError):
            raise DataCorruptError(f"{path}: line {row + 1} is not '<label> <index>:<value> ...' with indices "
                                   "1..256") from None
    if lines and (pixels.min() < -1.0001 or pixels.max() > 1.0001):
        raise DataCorruptError(f"{path}: pixel values outside [-1, 1]")
    images = np.rint((pixels + 1.0) * 127.5).clip(0, 255).astype(np.uint8).reshape(-1, 1, 16, 16)
    return torch.from_numpy(images), _check_labels(path, labels, len(lines))


def _load_svhn(files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    from scipy.io import loadmat

    (path,) = files
    try:
        data = loadmat(str(path))
        images, labels = np.asarray(data["X"]), np.asarray(data["y"]).reshape(-1).astype(np.int64)
    except Exception as exc:  # scipy raises several types for a bad file
        raise DataCorruptError(f"{path}: not a readable SVHN .mat file ({type(exc).__name__}: {exc})") from None
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise DataCorruptError(f"{path}: X has shape {images.shape}, expected (32, 32, 3, N)")
    labels = np.where(labels == 10, 0, labels)  # SVHN labels the digit 0 as 10
    tensor = torch.from_numpy(np.ascontiguousarray(images.transpose(3, 2, 0, 1), dtype=np.uint8))
    return tensor, _check_labels(path, labels, images.shape[3])


_LOADERS = {"mnist": _load_mnist, "mnist_m": _load_mnist_m, "usps": _load_usps, "svhn": _load_svhn}


@lru_cache(maxsize=8)
def load_digits(name: str, root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) uint8 at the native size and labels 0..9 of one split; read once per process."""
    return _LOADERS[name](_find(name, root, split))
