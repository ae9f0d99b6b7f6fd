"""What a few-shot data set is here: images grouped into classes, split by class into meta-splits.

Every loader returns, per meta-split, one :class:`ClassSplit`: uint8 images
(N, C, H, W) and labels 0..K-1 that number the split's classes, plus the
classes' names. No class belongs to two splits. Images stay uint8 until they
reach the model's device (an episode is small; the data set need not be).

:class:`FewShotDataset` carries the facts the config checks need without
touching the disk (classes per split, images in the smallest class, shape), so
``ways`` larger than a split, or more shots and queries than a class holds, are
refused before a run directory exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ...data.errors import DataCorruptError

__all__ = ["ClassSplit", "FewShotDataset", "SPLITS", "check_split"]

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class ClassSplit:
    """One meta-split: images (uint8, N x C x H x W), labels (int64, 0..K-1) and the K class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_sizes(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=self.num_classes)


@dataclass(frozen=True)
class FewShotDataset:
    """A few-shot data set: shape, per-split class counts, and how to find and load it.

    Attributes:
        name: the ``data.name`` value.
        channels, image_size: one image's shape (square).
        mean, std: per-channel input standardization (of images scaled to [0, 1]).
        classes: classes per meta-split (``train``, ``validation``, ``test``; a cross-domain set has ``test`` only).
        smallest_class: images in the smallest class, or None when ``data.images_per_class`` decides it.
        embedded: available without a data root.
        locate: (root) -> None; raises DataMissingError naming what it looked for (disk check only).
        load: (root, split, seed, images_per_class) -> ClassSplit.
        source: where the data and its split come from, for the docs and --help.
    """

    name: str
    channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: dict[str, int]
    smallest_class: int | None
    embedded: bool
    locate: Callable[[Path | None], None]
    load: Callable[[Path | None, str, int, int], ClassSplit]
    source: str = ""
    splits: tuple[str, ...] = field(default=SPLITS)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def images_in_smallest_class(self, images_per_class: int) -> int:
        return self.smallest_class if self.smallest_class is not None else images_per_class


def check_split(split: ClassSplit, where: str, shape: tuple[int, int, int]) -> ClassSplit:
    """Refuse a loaded split whose shape, labels or classes are not what the loader promised."""
    if split.images.dtype != torch.uint8 or tuple(split.images.shape[1:]) != shape:
        raise DataCorruptError(f"{where}: images of type {split.images.dtype} and shape {tuple(split.images.shape)}; "
                               f"expected uint8 (N, {', '.join(map(str, shape))})")
    if len(split.labels) != len(split.images):
        raise DataCorruptError(f"{where}: {len(split.images)} images but {len(split.labels)} labels")
    sizes = split.class_sizes()
    if len(sizes) != split.num_classes or bool((sizes == 0).any()):
        empty = [split.class_names[i] for i in range(min(len(sizes), split.num_classes)) if sizes[i] == 0]
        raise DataCorruptError(f"{where}: classes without images: {', '.join(empty[:5]) or 'labels out of range'}")
    return split
