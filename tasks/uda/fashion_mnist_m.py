"""Fashion-MNIST-M: Fashion-MNIST blended with colour photographs, the way MNIST-M was made from MNIST.

Ganin & Lempitsky (2015) built MNIST-M by blending each MNIST digit with a
random patch of a colour photo: ``out = |patch - digit|`` per channel. Here the
photos are the two that scikit-learn ships (``load_sample_images``: a temple in
China and a flower, 427 x 640 each), so the data set needs no download.

Every image's patch is drawn from a generator seeded with (``SEED``, split): which
photo, where the 28 x 28 crop starts, and whether it is flipped left-right and
upside down. The build is therefore deterministic and needs only Fashion-MNIST
and scikit-learn. It is cached as one ``.npy`` per split beside a manifest with
the SHA-256 of the images and of everything they were built from; a cache whose
checksum or recipe does not match is rebuilt (it costs a few seconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..data.fashion_mnist import load_fashion_mnist

__all__ = ["SEED", "VERSION", "build_images", "load_fashion_mnist_m", "sample_photos", "cache_paths"]

log = logging.getLogger("normbench")

SEED = 20151  # fixed: every machine builds the same images
VERSION = 2  # bump when the recipe changes: older caches are rebuilt
SIZE = 28
_SPLIT_STREAM = {"train": 0, "test": 1}
_CHUNK = 8192


@lru_cache(maxsize=1)
def sample_photos() -> np.ndarray:
    """scikit-learn's two sample photos as one (2, H, W, 3) uint8 array."""
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images
    return np.stack([np.asarray(img, dtype=np.uint8) for img in images])


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def build_images(grey: np.ndarray, split: str, seed: int = SEED, photos: np.ndarray | None = None) -> np.ndarray:
    """Blend (N, 28, 28) uint8 grey images with photo patches: (N, 3, 28, 28) uint8, deterministic in ``seed``.

    Image ``i``'s patch depends only on ``seed``, ``split`` and ``i`` (row ``i``
    of one (N, 5) draw of uniforms), so a prefix of the data set is the same
    whatever its length.
    """
    photos = sample_photos() if photos is None else photos
    count = len(grey)
    _, height, width, _ = photos.shape
    rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
    draws = rng.random((count, 5))  # row i: image i's photo, crop corner and flips
    which = (draws[:, 0] * len(photos)).astype(np.int64)
    top = (draws[:, 1] * (height - SIZE + 1)).astype(np.int64)
    left = (draws[:, 2] * (width - SIZE + 1)).astype(np.int64)
    flip_lr, flip_ud = draws[:, 3] < 0.5, draws[:, 4] < 0.5
    offsets = np.arange(SIZE)
    out = np.empty((count, 3, SIZE, SIZE), dtype=np.uint8)
    for start in range(0, count, _CHUNK):
        part = slice(start, min(count, start + _CHUNK))
        rows = top[part, None] + np.where(flip_ud[part, None], offsets[::-1], offsets)
        cols = left[part, None] + np.where(flip_lr[part, None], offsets[::-1], offsets)
        patch = photos[which[part, None, None], rows[:, :, None], cols[:, None, :]]  # (n, 28, 28, 3)
        digit = grey[part, :, :, None].astype(np.int16)
        blended = np.abs(patch.astype(np.int16) - digit).astype(np.uint8)
        out[part] = blended.transpose(0, 3, 1, 2)
    return out


def cache_paths(cache_dir: Path, split: str) -> tuple[Path, Path]:
    return cache_dir / f"fashion_mnist_m_{split}.npy", cache_dir / f"fashion_mnist_m_{split}.json"


def _recipe(grey: np.ndarray, photos: np.ndarray, split: str) -> dict:
    return {"version": VERSION, "seed": SEED, "split": split, "shape": [len(grey), 3, SIZE, SIZE],
            "fashion_mnist_sha256": _sha256(grey), "photos_sha256": _sha256(photos)}


def _read_cache(cache_dir: Path, split: str, recipe: dict) -> np.ndarray | None:
    images_path, manifest_path = cache_paths(cache_dir, split)
    try:
        manifest = json.loads(manifest_path.read_text())
        images = np.load(images_path)
    except (OSError, ValueError):
        return None
    if {k: manifest.get(k) for k in recipe} != recipe:
        log.warning("Fashion-MNIST-M cache %s was built by another recipe; rebuilding it", images_path)
        return None
    if list(images.shape) != recipe["shape"] or images.dtype != np.uint8 or _sha256(images) != manifest.get("sha256"):
        log.warning("Fashion-MNIST-M cache %s does not match its checksum; rebuilding it", images_path)
        return None
    return images


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_cache(cache_dir: Path, split: str, images: np.ndarray, recipe: dict) -> str:
    cache_dir.mkdir(parents=True, exist_ok=True)
    images_path, manifest_path = cache_paths(cache_dir, split)
    checksum = _sha256(images)
    _write_atomic(images_path, lambda fh: np.save(fh, images))
    manifest = json.dumps({**recipe, "sha256": checksum}, indent=2).encode()
    _write_atomic(manifest_path, lambda fh: fh.write(manifest))
    return checksum


@lru_cache(maxsize=4)
def load_fashion_mnist_m(fashion_root: Path | None, cache_dir: Path, split: str,
                         download: bool = False) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(N, 3, 28, 28) uint8 images, int64 labels and the images' SHA-256; built and cached on first use."""
    grey, labels = load_fashion_mnist(fashion_root, split, download=download)
    grey_np = grey[:, 0].numpy()
    photos = sample_photos()
    recipe = _recipe(grey_np, photos, split)
    images = _read_cache(cache_dir, split, recipe)
    if images is None:
        log.info("building Fashion-MNIST-M %s (%d images) into %s", split, len(grey_np), cache_dir)
        images = build_images(grey_np, split, photos=photos)
        checksum = _write_cache(cache_dir, split, images, recipe)
    else:
        checksum = json.loads(cache_paths(cache_dir, split)[1].read_text())["sha256"]
    return torch.from_numpy(images), labels, checksum
