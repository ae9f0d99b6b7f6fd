"""Cross-domain test episodes: scikit-learn's bundled UCI handwritten digits.

"Train on clothing, test on digits": a model meta-trained on Fashion-MNIST
rotations (or Omniglot) is meta-tested on 5-way episodes of the 10 digit
classes. The 1,797 images are 8x8 with values 0..16; they are scaled to 0..255,
upsampled to 20x20 and centred on a 28x28 canvas, the way MNIST puts its digits
in a 20x20 box, so they share the Fashion-MNIST input shape. Bundled with
scikit-learn: no download, no data root.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from .base import ClassSplit, FewShotDataset

__all__ = ["DIGITS", "load_digits_split"]

BOX, CANVAS = 20, 28
CLASS_SIZES = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)  # images per digit in the UCI set


@lru_cache(maxsize=1)
def load_digits_split(root: Path | None = None, split: str = "test", seed: int = 0, images_per_class: int = 0) -> ClassSplit:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)
    big = F.interpolate(small, size=(BOX, BOX), mode="bilinear", align_corners=False)
    pad = (CANVAS - BOX) // 2
    images = F.pad(big, (pad, pad, pad, pad)).round().clamp(0, 255).to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    return ClassSplit(images.contiguous(), labels, tuple(str(d) for d in range(10)))


def _nothing_to_locate(root: Path | None) -> None:
    """Bundled with scikit-learn: always present."""


DIGITS = FewShotDataset(
    name="digits",
    channels=1,
    image_size=CANVAS,
    mean=(0.2860,),  # the meta-training set's statistics: the model sees inputs standardized as in training
    std=(0.3530,),
    classes={"test": 10},
    smallest_class=min(CLASS_SIZES),
    embedded=True,
    locate=_nothing_to_locate,
    load=load_digits_split,
    source="UCI handwritten digits bundled with scikit-learn (8x8 -> 20x20 in a 28x28 canvas)",
    splits=("test",),
)
