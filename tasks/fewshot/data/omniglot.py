"""Omniglot (Lake et al., 2015) from torchvision's extracted folders, with learn2learn's character split.

Layout: ``<root>/omniglot-py/images_background/<alphabet>/<character>/*.png``
(964 characters) and ``<root>/omniglot-py/images_evaluation/...`` (659), as
torchvision's ``Omniglot`` extracts them. As in learn2learn's ``FullOmniglot``,
both halves form one set of 1,623 character classes (background first), and
as in its Omniglot benchmark the classes are shuffled and split 1,100 / 100 /
423 into meta-train / validation / test. Two deliberate differences: folders
are read in sorted order (torchvision takes ``os.listdir``'s, which depends on
the file system), and the shuffle uses a private generator seeded by the data
seed rather than the global ``random`` state at the time of the call, so the
split is the same on every machine and for every run seed.

Images (105x105, black strokes on white) are resized to 28x28 with Lanczos
filtering and inverted, as learn2learn's benchmark does. Reading the 32,460
PNG files takes a while; they are read once per process.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ...data.errors import DataCorruptError, DataMissingError
from .base import ClassSplit, FewShotDataset

__all__ = ["OMNIGLOT", "character_folders", "split_characters", "SPLIT_SIZES", "NUM_CHARACTERS"]

FOLDER = "omniglot-py"
HALVES = ("images_background", "images_evaluation")
NUM_CHARACTERS = 1623
SPLIT_SIZES = {"train": 1100, "validation": 100, "test": 423}
SIZE = 28


def _root(root: Path | None) -> Path:
    if root is None:
        raise DataMissingError("omniglot needs a data root: pass --data.root or set $NORMBENCH_DATA")
    return root


def locate(root: Path | None) -> None:
    base = _root(root) / FOLDER
    missing = [str(base / half) for half in HALVES if not (base / half).is_dir()]
    if missing:
        raise DataMissingError(
            f"omniglot not found: looked for {', '.join(missing)}. Download images_background.zip and "
            f"images_evaluation.zip from https://github.com/brendenlake/omniglot/tree/master/python and extract "
            f"them into {base} (torchvision's Omniglot(root, download=True) does exactly this)")


def character_folders(root: Path) -> list[Path]:
    """The 1,623 character folders in class order: background then evaluation, alphabets and characters sorted."""
    base = root / FOLDER
    folders = [character
               for half in HALVES
               for alphabet in sorted(p for p in (base / half).iterdir() if p.is_dir())
               for character in sorted(p for p in alphabet.iterdir() if p.is_dir())]
    if len(folders) != NUM_CHARACTERS:
        raise DataCorruptError(f"{base}: {len(folders)} character folders, expected {NUM_CHARACTERS} "
                               f"(964 in {HALVES[0]}, 659 in {HALVES[1]})")
    return folders


def split_characters(seed: int) -> dict[str, list[int]]:
    """Character class ids of each split: a seeded shuffle of 0..1622, cut 1,100 / 100 / 423."""
    order = list(range(NUM_CHARACTERS))
    random.Random(seed).shuffle(order)
    cut = SPLIT_SIZES["train"], SPLIT_SIZES["train"] + SPLIT_SIZES["validation"]
    return {"train": order[: cut[0]], "validation": order[cut[0] : cut[1]], "test": order[cut[1] :]}


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            small = image.convert("L").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    except Exception as exc:
        raise DataCorruptError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    return 255 - np.asarray(small, dtype=np.uint8)


@lru_cache(maxsize=4)
def load_omniglot(root: Path | None, split: str, seed: int = 0, images_per_class: int = 0) -> ClassSplit:
    folders = character_folders(_root(root))
    images, labels, names = [], [], []
    for new, character in enumerate(split_characters(seed)[split]):
        folder = folders[character]
        files = sorted(folder.glob("*.png"))
        if not files:
            raise DataCorruptError(f"{folder}: no .png images")
        images += [_read(f) for f in files]
        labels += [new] * len(files)
        names.append(f"{folder.parent.name}/{folder.name}")
    stacked = torch.from_numpy(np.stack(images)).unsqueeze(1)
    return ClassSplit(stacked.contiguous(), torch.tensor(labels, dtype=torch.int64), tuple(names))


OMNIGLOT = FewShotDataset(
    name="omniglot",
    channels=1,
    image_size=SIZE,
    mean=(0.0,),  # inputs in [0, 1], as learn2learn's benchmark feeds them (the first norm layer rescales)
    std=(1.0,),
    classes=dict(SPLIT_SIZES),
    smallest_class=20,
    embedded=False,
    locate=locate,
    load=load_omniglot,
    source="torchvision's omniglot-py folders, 1,623 characters shuffled and split 1,100/100/423 (learn2learn)",
)
