"""The embedded default: Fashion-MNIST with rotations as classes of their own, split by base class.

As in Omniglot's benchmark (Vinyals et al., 2016; Snell et al., 2017), each of
the 10 classes at 0, 90, 180 and 270 degrees is a class of its own: 40 classes.
They are split by their *base* class, so no garment is seen in two meta-splits
(a class "Bag at 90" in meta-test never shares its images with a meta-training
class): base classes 0-5 (T-shirt/top ... Sandal) give the 24 meta-training
classes, 6-7 (Shirt, Sneaker) the 8 validation classes, 8-9 (Bag, Ankle boot)
the 8 test classes. Each base class contributes ``images_per_class`` images of
Fashion-MNIST's training file (600 by default, the class size of mini-ImageNet
and CIFAR-FS), chosen by the data seed; each rotated class holds those images
turned.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from ...data import fashion_mnist
from .base import ClassSplit, FewShotDataset

__all__ = ["FASHION_MNIST_ROT", "BASE_CLASSES", "ROTATIONS", "MAX_IMAGES_PER_CLASS"]

BASE_CLASSES = {"train": (0, 1, 2, 3, 4, 5), "validation": (6, 7), "test": (8, 9)}
ROTATIONS = (0, 90, 180, 270)
MAX_IMAGES_PER_CLASS = 6000  # images of each base class in Fashion-MNIST's training file


def _chosen(labels: torch.Tensor, base: int, count: int, seed: int) -> torch.Tensor:
    """``count`` indices of base class ``base``, the same for every run with this data seed."""
    members = torch.nonzero(labels == base).flatten()
    order = torch.randperm(len(members), generator=torch.Generator().manual_seed(seed * 1000 + base))
    return members[order[:count]].sort().values


@lru_cache(maxsize=8)
def load_fashion_rot(root: Path | None, split: str, seed: int, images_per_class: int) -> ClassSplit:
    images, labels = fashion_mnist.load_fashion_mnist(root, "train")
    parts, targets, names = [], [], []
    for base in BASE_CLASSES[split]:
        chosen = images[_chosen(labels, base, images_per_class, seed)]
        for turn, degrees in enumerate(ROTATIONS):
            parts.append(torch.rot90(chosen, turn, dims=(2, 3)))
            targets.append(torch.full((len(chosen),), len(names), dtype=torch.int64))
            names.append(f"{fashion_mnist.CLASSES[base]}@{degrees}")
    return ClassSplit(torch.cat(parts).contiguous(), torch.cat(targets), tuple(names))


def locate(root: Path | None) -> None:
    fashion_mnist.locate_fashion_mnist(root, download=False)


FASHION_MNIST_ROT = FewShotDataset(
    name="fashion_mnist_rot",
    channels=1,
    image_size=28,
    mean=(0.2860,),
    std=(0.3530,),
    classes={split: len(bases) * len(ROTATIONS) for split, bases in BASE_CLASSES.items()},
    smallest_class=None,
    embedded=True,
    locate=locate,
    load=load_fashion_rot,
    source="Fashion-MNIST (Debian package dataset-fashion-mnist), 10 classes x 4 rotations, split by base class 6/2/2",
)
