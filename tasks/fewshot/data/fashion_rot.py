"""The embedded default: Fashion-MNIST with rotations as classes of their own, split by base class.

As in Omniglot's benchmark (Vinyals et al., 2016; Snell et al., 2017), each of
the 10 classes at 0, 90, 180 and 270 degrees is a class of its own: 40 classes.
They are split by their *base* class, so no garment is seen in two meta-splits
(a class "Bag at 90" in meta-test never shares its images with a meta-training
class). Two splits, by name (``data.split``):

``base_4_2_4`` (default)
    train T-shirt/top, Trouser, Dress, Sandal (16 classes); validation
    Pullover, Bag (8); test Coat, Shirt, Sneaker, Ankle boot (16). Each split
    mixes kinds of garment (a top, a shoe, ...), so a 5-way test task draws its
    classes from 3 or 4 garments on average and a random pair of its classes
    is two rotations of one garment with probability 3/15 = 0.2.
``base_6_2_2`` (the split of records before 2026-12-08)
    train 0-5, validation Shirt, Sneaker, test Bag, Ankle boot (24/8/8): every
    5-way test task holds both test garments, and a pair of its classes is two
    rotations of one garment with probability 3/7 = 0.43, so most of a test
    task is telling rotations apart. Kept by name for comparison with old runs.

The issue's suggestion 5/1/4 cannot hold a 5-way validation episode (one
garment is 4 classes), hence two validation garments. Each base class
contributes ``images_per_class`` images of Fashion-MNIST's training file (600
by default, the class size of mini-ImageNet and CIFAR-FS), chosen by the data
seed; each rotated class holds those images turned.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from ...data import fashion_mnist
from .base import ClassSplit, FewShotDataset

__all__ = ["FASHION_MNIST_ROT", "BASE_SPLITS", "DEFAULT_SPLIT", "BASE_CLASSES", "ROTATIONS", "MAX_IMAGES_PER_CLASS",
           "fashion_rot", "load_fashion_rot"]

# base classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot
BASE_SPLITS: dict[str, dict[str, tuple[int, ...]]] = {
    "base_4_2_4": {"train": (0, 1, 3, 5), "validation": (2, 8), "test": (4, 6, 7, 9)},
    "base_6_2_2": {"train": (0, 1, 2, 3, 4, 5), "validation": (6, 7), "test": (8, 9)},
}
DEFAULT_SPLIT = "base_4_2_4"
BASE_CLASSES = BASE_SPLITS[DEFAULT_SPLIT]
ROTATIONS = (0, 90, 180, 270)
MAX_IMAGES_PER_CLASS = 6000  # images of each base class in Fashion-MNIST's training file


def _chosen(labels: torch.Tensor, base: int, count: int, seed: int) -> torch.Tensor:
    """``count`` indices of base class ``base``, the same for every run with this data seed (and either split)."""
    members = torch.nonzero(labels == base).flatten()
    order = torch.randperm(len(members), generator=torch.Generator().manual_seed(seed * 1000 + base))
    return members[order[:count]].sort().values


@lru_cache(maxsize=8)
def load_fashion_rot(root: Path | None, split: str, seed: int, images_per_class: int,
                     base_split: str = DEFAULT_SPLIT) -> ClassSplit:
    """One meta-split of the named base split: every chosen image of its base classes at the four rotations."""
    images, labels = fashion_mnist.load_fashion_mnist(root, "train")
    parts, targets, names = [], [], []
    for base in BASE_SPLITS[base_split][split]:
        chosen = images[_chosen(labels, base, images_per_class, seed)]
        for turn, degrees in enumerate(ROTATIONS):
            parts.append(torch.rot90(chosen, turn, dims=(2, 3)))
            targets.append(torch.full((len(chosen),), len(names), dtype=torch.int64))
            names.append(f"{fashion_mnist.CLASSES[base]}@{degrees}")
    return ClassSplit(torch.cat(parts).contiguous(), torch.cat(targets), tuple(names))


def locate(root: Path | None) -> None:
    fashion_mnist.locate_fashion_mnist(root, download=False)


@lru_cache(maxsize=None)
def fashion_rot(base_split: str = DEFAULT_SPLIT) -> FewShotDataset:
    """The data set with the named base split (``data.split``); the name stays ``fashion_mnist_rot``."""
    bases = BASE_SPLITS[base_split]

    def load(root: Path | None, split: str, seed: int, images_per_class: int) -> ClassSplit:
        return load_fashion_rot(root, split, seed, images_per_class, base_split)

    sizes = "/".join(str(len(bases[s])) for s in ("train", "validation", "test"))
    return FewShotDataset(
        name="fashion_mnist_rot",
        channels=1,
        image_size=28,
        mean=(0.2860,),
        std=(0.3530,),
        classes={split: len(b) * len(ROTATIONS) for split, b in bases.items()},
        smallest_class=None,
        embedded=True,
        locate=locate,
        load=load,
        source=f"Fashion-MNIST (Debian package dataset-fashion-mnist), 10 classes x 4 rotations, split by base "
               f"class {sizes} ({base_split})",
    )


FASHION_MNIST_ROT = fashion_rot(DEFAULT_SPLIT)
