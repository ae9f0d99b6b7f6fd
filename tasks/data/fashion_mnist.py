"""Fashion-MNIST, the embedded default: Debian's package files, read once into memory.

Where it looks, in order: ``<root>/fashion_mnist``, ``<root>/FashionMNIST/raw``
(torchvision's layout), and the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``). When none has the files and ``data.download``
is true, torchvision's downloader fetches them into ``<root>/FashionMNIST/raw``;
otherwise the error says where it looked and how to get them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from .errors import DataMissingError
from .idx import read_idx

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
# SHA-256 of the decompressed files of the published data set (identical whatever the compression).
SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def system_dir() -> Path:
    """The Debian package's folder ($NORMBENCH_FASHION_MNIST_SYSTEM_DIR overrides it, e.g. in tests)."""
    return Path(os.environ.get("NORMBENCH_FASHION_MNIST_SYSTEM_DIR", str(DEBIAN_DIR)))


def candidate_dirs(root: Path | None) -> list[Path]:
    dirs = []
    if root is not None:
        dirs += [root / "fashion_mnist", root / "FashionMNIST" / "raw"]
    return dirs + [system_dir()]


def _file(directory: Path, name: str) -> Path | None:
    """``name`` (gzip) or its extracted form (torchvision keeps both, or only the extracted one)."""
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _find(root: Path | None, split: str) -> tuple[Path, Path] | None:
    images, labels, _ = FILES[split]
    for d in candidate_dirs(root):
        found = _file(d, images), _file(d, labels)
        if found[0] is not None and found[1] is not None:
            return found  # type: ignore[return-value]
    return None


def _default_download_root() -> Path:
    return Path.home() / ".cache" / "normbench" / "data"


def _download(root: Path | None) -> None:
    target = root or _default_download_root()
    looked = ", ".join(str(d) for d in candidate_dirs(root))
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(target), train=True, download=True)
        FashionMNIST(str(target), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataMissingError(
            f"Fashion-MNIST not found (looked in {looked}) and downloading it failed ({type(exc).__name__}: {exc}). "
            "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, as root) or put the four "
            "*-ubyte.gz files in <data root>/fashion_mnist"
        ) from None


def _missing(root: Path | None) -> DataMissingError:
    looked = ", ".join(str(d) for d in candidate_dirs(root))
    return DataMissingError(
        f"Fashion-MNIST not found (looked in {looked}). Install it with `apt-get install dataset-fashion-mnist` "
        "(Debian/Ubuntu, as root), put the four *-ubyte.gz files in <data root>/fashion_mnist, "
        "or pass --data.download true to let torchvision fetch them"
    )


def locate_fashion_mnist(root: Path | None, download: bool) -> None:
    """Raise DataMissingError unless both splits are on disk or may be downloaded."""
    if not download and (_find(root, "train") is None or _find(root, "test") is None):
        raise _missing(root)


@lru_cache(maxsize=4)
def load_fashion_mnist(root: Path | None, split: str, verify: bool = True,
                       download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, 1, 28, 28) and labels as int64 (N,); read once per process.

    Downloads only when ``download`` is true (``data.download``); otherwise a
    missing data set is an error that says where it looked.
    """
    images_name, labels_name, count = FILES[split]
    found = _find(root, split)
    if found is None:
        if not download:
            raise _missing(root)
        _download(root)
        found = _find(root if root is not None else _default_download_root(), split)
    if found is None:
        raise DataMissingError(f"Fashion-MNIST: the download finished but the {split} files are not where expected")
    images = read_idx(found[0], (count, 28, 28), SHA256[images_name] if verify else None)
    labels = read_idx(found[1], (count,), SHA256[labels_name] if verify else None)
    return images.unsqueeze(1), labels.long()
