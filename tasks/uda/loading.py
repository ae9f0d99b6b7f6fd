"""Where a domain's data lives and how one split of it is read: one dispatch for every domain.

Tensor domains come back as uint8 (N, C, S, S) at the run's image size
(resized here, once, with the pair's common size); folder domains (Office) as a
list of (path, label) to decode per sample.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import fashion_mnist
from ..data.errors import DataMissingError
from . import digits, office
from .domains import Domain
from .fashion_mnist_m import load_fashion_mnist_m

__all__ = ["data_root", "fashion_mnist_m_cache", "locate_domain", "load_tensor_split", "folder_samples", "resize_uint8"]

_DEFAULT_ROOT = Path.home() / ".cache" / "normbench" / "data"
_DEFAULT_CACHE = Path.home() / ".cache" / "normbench" / "fashion_mnist_m"


def _explicit_root(root: str | None) -> Path | None:
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
    return None


def data_root(root: str | None, source: Domain, target: Domain) -> Path | None:
    """The config's root, else $NORMBENCH_DATA, else none for embedded pairs and the user cache for others."""
    explicit = _explicit_root(root)
    if explicit is not None or (source.embedded and target.embedded):
        return explicit
    return _DEFAULT_ROOT


def fashion_mnist_m_cache(cache_dir: str | None, root: str | None) -> Path:
    """``data.cache_dir``, else <data root>/fashion_mnist_m when a root is set, else ~/.cache/normbench."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    explicit = _explicit_root(root)
    return explicit / "fashion_mnist_m" if explicit is not None else _DEFAULT_CACHE


def locate_domain(domain: Domain, root: Path | None, download: bool) -> None:
    """Raise DataMissingError unless ``domain`` is on disk (or, for Fashion-MNIST, may be downloaded)."""
    if domain.name in ("fashion_mnist", "fashion_mnist_m"):  # Fashion-MNIST-M is built from Fashion-MNIST
        fashion_mnist.locate_fashion_mnist(root, download)
    elif domain.kind == "folder":
        assert root is not None
        office.domain_dir(domain, root)
    else:
        assert root is not None
        digits.locate_digits(domain.name, root)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of uint8 (N, C, H, W) images to size x size (antialiased when shrinking), in chunks."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    shrink = images.shape[-1] > size
    out = torch.empty((len(images), images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(images), 4096):
        part = images[start:start + 4096].float()
        resized = F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        out[start:start + 4096] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


def load_tensor_split(domain: Domain, root: Path | None, split: str, image_size: int, *, cache_dir: Path,
                      download: bool = False) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """uint8 images at ``image_size``, labels, and provenance (the Fashion-MNIST-M checksum)."""
    provenance: dict[str, str] = {}
    if domain.name == "fashion_mnist":
        images, labels = fashion_mnist.load_fashion_mnist(root, split, download=download)
    elif domain.name == "fashion_mnist_m":
        images, labels, checksum = load_fashion_mnist_m(root, cache_dir, split, download)
        provenance[f"fashion_mnist_m_{split}_sha256"] = checksum
    else:
        assert root is not None
        images, labels = digits.load_digits(domain.name, root, split)
    return resize_uint8(images, image_size), labels, provenance


def folder_samples(domain: Domain, root: Path | None) -> list[tuple[Path, int]]:
    assert root is not None
    return office.list_images(domain, root)
