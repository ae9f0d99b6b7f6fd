"""mini-ImageNet (Vinyals et al., 2016) with Ravi & Larochelle's 64/16/20 class split, from learn2learn's caches.

Layout: ``<root>/mini-imagenet-cache-{train,validation,test}.pkl``, the files
learn2learn's ``MiniImagenet`` downloads: each is a pickled dict with
``image_data``, uint8 of shape (N, 84, 84, 3), and ``class_dict``, mapping each
class name to the indices of its images. Classes are numbered in
``class_dict``'s order, as learn2learn numbers them. The training cache alone
holds 38,400 images (about 0.8 GB); each split is read once per process.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ...data.errors import DataCorruptError, DataMissingError
from .base import ClassSplit, FewShotDataset

__all__ = ["MINI_IMAGENET", "cache_file", "CLASSES"]

CLASSES = {"train": 64, "validation": 16, "test": 20}
SIZE = 84


def cache_file(root: Path, split: str) -> Path:
    return root / f"mini-imagenet-cache-{split}.pkl"


def _root(root: Path | None) -> Path:
    if root is None:
        raise DataMissingError("mini_imagenet needs a data root: pass --data.root or set $NORMBENCH_DATA")
    return root


def locate(root: Path | None) -> None:
    root = _root(root)
    missing = [str(cache_file(root, split)) for split in CLASSES if not cache_file(root, split).is_file()]
    if missing:
        raise DataMissingError(
            f"mini_imagenet not found: looked for {', '.join(missing)}. These are learn2learn's caches: run "
            "`learn2learn.vision.datasets.MiniImagenet(root, mode=m, download=True)` for m in train, validation, "
            "test on a machine with internet access and copy the three .pkl files into the data root")


@lru_cache(maxsize=3)
def load_mini_imagenet(root: Path | None, split: str, seed: int = 0, images_per_class: int = 0) -> ClassSplit:
    path = cache_file(_root(root), split)
    if not path.is_file():
        locate(root)
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh)
        pixels = np.asarray(data["image_data"], dtype=np.uint8)
        class_dict = dict(data["class_dict"])
    except Exception as exc:
        raise DataCorruptError(f"{path}: not a mini-ImageNet cache ({type(exc).__name__}: {exc})") from None
    if pixels.ndim != 4 or pixels.shape[1:] != (SIZE, SIZE, 3):
        raise DataCorruptError(f"{path}: image_data of shape {pixels.shape}, expected (N, {SIZE}, {SIZE}, 3)")
    if len(class_dict) != CLASSES[split]:
        raise DataCorruptError(f"{path}: {len(class_dict)} classes, the {split} split has {CLASSES[split]}")
    labels = torch.full((len(pixels),), -1, dtype=torch.int64)
    for number, indices in enumerate(class_dict.values()):
        labels[torch.as_tensor(list(indices), dtype=torch.int64)] = number
    if bool((labels < 0).any()):
        raise DataCorruptError(f"{path}: {int((labels < 0).sum())} images belong to no class in class_dict")
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    return ClassSplit(images, labels, tuple(str(name) for name in class_dict))


MINI_IMAGENET = FewShotDataset(
    name="mini_imagenet",
    channels=3,
    image_size=SIZE,
    mean=(0.4721, 0.4533, 0.4100),  # the per-channel statistics commonly used for mini-ImageNet (in [0, 1])
    std=(0.2772, 0.2677, 0.2845),
    classes=dict(CLASSES),
    smallest_class=600,
    embedded=False,
    locate=locate,
    load=load_mini_imagenet,
    source="learn2learn's mini-imagenet-cache-{train,validation,test}.pkl (Ravi & Larochelle's 64/16/20 classes)",
)
