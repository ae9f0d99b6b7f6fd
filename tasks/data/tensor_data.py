"""In-memory image data: batches sliced from uint8 tensors, augmented as whole batches.

A :class:`TensorImageDataset` hands the DataLoader whole uint8 batches through
``__getitems__`` (no per-sample PIL decoding, no per-sample collation). The
:class:`BatchTransform` then crops, flips and normalizes a batch with a few
tensor ops, on whatever device the batch is on; the data module applies it after
the batch reached the device, so a GPU does the augmentation and the transfer is
uint8 (4x smaller than float).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

AUGMENTATIONS = ("none", "flip", "crop", "crop_flip")


class TensorImageDataset(Dataset):
    """uint8 images (N, C, H, W) and int64 labels; indexing a list of indices gives a batch."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise ValueError(f"expected uint8 (N, C, H, W) images and N labels, got {images.dtype} {tuple(images.shape)}")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images.index_select(0, idx), self.labels.index_select(0, idx)


def passthrough_collate(batch):
    """The dataset already returns a collated batch (module level so workers can pickle it)."""
    return batch


def random_crop(images: Tensor, padding: int, generator: torch.Generator | None = None) -> Tensor:
    """Per-sample random crop of the zero-padded batch back to its size (one gather)."""
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device, generator=generator)
    rows = (dy + torch.arange(h, device=images.device)).view(n, 1, h, 1)
    cols = (dx + torch.arange(w, device=images.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    chans = torch.arange(c, device=images.device).view(1, c, 1, 1)
    return padded[batch, chans, rows, cols]


def random_flip(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


@dataclass
class BatchTransform:
    """uint8 batch -> augmented (train only) and normalized float batch."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"
    padding: int = 4

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment={self.augment!r}; choose from {', '.join(AUGMENTATIONS)} or standard")

    def __call__(self, images: Tensor, train: bool) -> Tensor:
        if images.dtype != torch.uint8:  # already a float tensor (folder data sets transform per sample)
            return images
        if train and "crop" in self.augment:
            images = random_crop(images, self.padding)
        if train and "flip" in self.augment:
            images = random_flip(images)
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return images.float().div_(255.0).sub_(mean).div_(std)
