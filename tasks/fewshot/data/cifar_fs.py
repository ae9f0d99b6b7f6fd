"""CIFAR-FS (Bertinetto et al., ICLR 2019): CIFAR-100 split by class into 64/16/20 classes.

Read from the CIFAR-100 python pickles the project already reads
(``<root>/cifar-100-python/{train,test}``, see :mod:`tasks.data.cifar`): both
files together hold 600 images of each class, and Bertinetto et al.'s class
lists (their ``splits/bertinetto/{train,val,test}.txt``) pick each split's
classes. CIFAR-100 numbers its fine labels in the alphabetical order of their
names; when ``cifar-100-python/meta`` is present its ``fine_label_names`` are
checked against that.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path

import torch

from ...data import cifar
from ...data.errors import DataCorruptError, DataMissingError
from .base import ClassSplit, FewShotDataset

__all__ = ["CIFAR_FS", "CIFAR_FS_CLASSES", "CIFAR100_NAMES"]

CIFAR_FS_CLASSES: dict[str, tuple[str, ...]] = {
    "train": (
        "apple", "aquarium_fish", "bear", "bee", "bottle", "bowl", "boy", "bridge", "bus", "can", "castle",
        "caterpillar", "chair", "clock", "cloud", "cockroach", "couch", "cup", "dinosaur", "dolphin", "elephant",
        "forest", "girl", "hamster", "house", "kangaroo", "keyboard", "lawn_mower", "lion", "lizard", "lobster",
        "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "palm_tree", "pear", "pine_tree", "plate",
        "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "seal", "shrew", "skunk", "skyscraper", "snake",
        "spider", "squirrel", "streetcar", "sunflower", "tank", "tiger", "train", "trout", "tulip", "turtle",
        "willow_tree", "wolf",
    ),
    "validation": (
        "beaver", "beetle", "butterfly", "camel", "cattle", "crab", "crocodile", "flatfish", "lamp", "maple_tree",
        "motorcycle", "otter", "sea", "shark", "television", "tractor",
    ),
    "test": (
        "baby", "bed", "bicycle", "chimpanzee", "fox", "leopard", "man", "pickup_truck", "plain", "poppy", "rocket",
        "rose", "snail", "sweet_pepper", "table", "telephone", "whale", "wardrobe", "woman", "worm",
    ),
}
CIFAR100_NAMES = tuple(sorted(name for names in CIFAR_FS_CLASSES.values() for name in names))
FOLDER = "cifar-100-python"


def _root(root: Path | None) -> Path:
    if root is None:
        raise DataMissingError("cifar_fs needs a data root: pass --data.root or set $NORMBENCH_DATA")
    return root


def locate(root: Path | None) -> None:
    cifar.locate_cifar("cifar100", _root(root))


def _check_names(root: Path) -> None:
    meta = root / FOLDER / "meta"
    if not meta.is_file():
        return
    try:
        with open(meta, "rb") as fh:
            names = tuple(n.decode() if isinstance(n, bytes) else str(n)
                          for n in pickle.load(fh, encoding="bytes")[b"fine_label_names"])
    except Exception as exc:
        raise DataCorruptError(f"{meta}: not CIFAR-100's meta pickle ({type(exc).__name__}: {exc})") from None
    if names != CIFAR100_NAMES:
        raise DataCorruptError(f"{meta}: fine_label_names are not CIFAR-100's 100 classes in alphabetical order")


@lru_cache(maxsize=4)
def load_cifar_fs(root: Path | None, split: str, seed: int = 0, images_per_class: int = 0) -> ClassSplit:
    root = _root(root)
    _check_names(root)
    parts = [cifar.load_cifar("cifar100", root, part) for part in ("train", "test")]
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    names = CIFAR_FS_CLASSES[split]
    remap = torch.full((len(CIFAR100_NAMES),), -1, dtype=torch.int64)
    for new, name in enumerate(names):
        remap[CIFAR100_NAMES.index(name)] = new
    mine = remap[labels]
    keep = mine >= 0
    return ClassSplit(images[keep].contiguous(), mine[keep], names)


CIFAR_FS = FewShotDataset(
    name="cifar_fs",
    channels=3,
    image_size=32,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    classes={split: len(names) for split, names in CIFAR_FS_CLASSES.items()},
    smallest_class=600,
    embedded=False,
    locate=locate,
    load=load_cifar_fs,
    source="CIFAR-100 pickles (<root>/cifar-100-python), Bertinetto et al.'s 64/16/20 class split",
)
