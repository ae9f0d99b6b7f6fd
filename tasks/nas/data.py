"""Data of the two stages: the search's two training halves fed together, the retrain's whole split with cutout.

Both stages see the same fixed split (``data.split_seed``): validation images
held out from the training set, a fixed test subset, and, for the search, the
remaining training images (or the part ``search.fraction`` of them) cut into a
weight half and an alpha half by a fixed permutation (DARTS' ``train_portion``
0.5). The search yields one batch of each
half per step through Lightning's ``CombinedLoader``; an epoch ends with the
shorter half. Images are zero-padded once in memory (Fashion-MNIST 28 -> 32),
then augmented per batch on the device: the data set's standard crop and flip,
plus cutout (DARTS: on normalized images, squares clipped at the border) for the
retrain.
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader

from ..data.registry import DatasetInfo, get_dataset_info, resolve_data_root
from ..data.splits import permutation, subset_indices, train_val_indices
from ..data.tensor_data import BatchTransform, TensorImageDataset, passthrough_collate
from ..runner.outcomes import ItemList, image_items
from .config import NasDataConfig

__all__ = ["NasDataModule", "cutout", "padded_size", "WEIGHTS", "ARCH"]

WEIGHTS, ARCH = "weights", "arch"


def padded_size(cfg: NasDataConfig, info: DatasetInfo) -> int:
    """Image side the networks see."""
    return max(info.image_size, cfg.pad_to) if cfg.pad_to else info.image_size


def _pad(images: Tensor, size: int) -> Tensor:
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(images, (left, size - w - left, top, size - h - top))


def cutout(images: Tensor, length: int) -> Tensor:
    """Zero one ``length`` x ``length`` square per image, centred uniformly, clipped at the border (DARTS)."""
    n, _, h, w = images.shape
    cy = torch.randint(0, h, (n, 1, 1), device=images.device)
    cx = torch.randint(0, w, (n, 1, 1), device=images.device)
    rows = torch.arange(h, device=images.device).view(1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w)
    half = length // 2
    hole = (rows >= cy - half) & (rows < cy + half) & (cols >= cx - half) & (cols < cx + half)
    return images * (~hole).unsqueeze(1).to(images.dtype)


class NasDataModule(L.LightningDataModule):
    """Loaders of one stage: ``search`` (two halves, combined), or ``retrain`` (whole split, cutout)."""

    def __init__(self, cfg: NasDataConfig, batch_size: int, stage: Literal["search", "retrain"],
                 train_portion: float = 0.5, cutout_length: int = 0, search_fraction: float = 1.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size
        self.stage = stage
        self.train_portion = train_portion
        self.search_fraction = search_fraction
        self.cutout_length = cutout_length
        self.info = get_dataset_info(cfg.name)
        augment = self.info.standard_augment if cfg.augment == "standard" else cfg.augment
        self.transform = BatchTransform(self.info.mean, self.info.std, augment, self.info.crop_padding)
        self.size = padded_size(cfg, self.info)
        self.outcome_items: dict[str, ItemList] = {}  # the test images, for per-item outcomes (outcomes.json)
        self.train_sets: dict[str, TensorImageDataset] = {}
        self.val_set: TensorImageDataset | None = None
        self.test_set: TensorImageDataset | None = None

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.info.channels, self.size, self.size)

    def setup(self, stage: str | None = None) -> None:
        if self.train_sets:
            return
        cfg = self.cfg
        assert self.info.load_tensors is not None, "the NAS task needs a tensor data set"
        root = resolve_data_root(cfg.root, self.info)
        images, labels = self.info.load_tensors(root, "train", cfg.download)
        images = _pad(images, self.size)
        train_idx, val_idx = train_val_indices(len(labels), cfg.val_size, cfg.split_seed)
        train_idx = train_idx[subset_indices(len(train_idx), cfg.fraction, cfg.split_seed)]
        if self.stage == "search":
            order = train_idx[permutation(len(train_idx), cfg.split_seed + 2)]
            order = order[: max(2, round(self.search_fraction * len(order)))]
            split = int(self.train_portion * len(order))
            if split < self.batch_size or len(order) - split < self.batch_size:
                raise ValueError(f"the search halves have {split} and {len(order) - split} images, fewer than one "
                                 f"batch of {self.batch_size}; use a larger data.fraction or a smaller batch")
            halves = {WEIGHTS: order[:split].sort().values, ARCH: order[split:].sort().values}
            self.train_sets = {k: TensorImageDataset(images[idx], labels[idx]) for k, idx in halves.items()}
        else:
            self.train_sets = {WEIGHTS: TensorImageDataset(images[train_idx], labels[train_idx])}
        self.val_set = TensorImageDataset(images[val_idx], labels[val_idx])
        test_images, test_labels = self.info.load_tensors(root, "test", cfg.download)
        keep = subset_indices(len(test_labels), cfg.test_fraction, cfg.split_seed)
        self.test_set = TensorImageDataset(_pad(test_images[keep], self.size), test_labels[keep])
        self.outcome_items = {"test": image_items("test", cfg.name, "test", keep, len(test_labels))}

    def _loader(self, dataset: TensorImageDataset | None, batch_size: int, train: bool) -> DataLoader:
        assert dataset is not None, "call setup() first"
        workers = self.cfg.num_workers
        return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train, num_workers=workers,
                          persistent_workers=workers > 0, collate_fn=passthrough_collate,
                          pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> Any:
        loaders = {k: self._loader(v, self.batch_size, train=True) for k, v in self.train_sets.items()}
        return CombinedLoader(loaders, mode="min_size") if self.stage == "search" else loaders[WEIGHTS]

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.cfg.eval_batch_size, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.cfg.eval_batch_size, train=False)

    def prepare_batch(self, batch: tuple[Tensor, Tensor], train: bool) -> tuple[Tensor, Tensor]:
        """uint8 images -> augmented (training) and normalized float images; cutout on retrain training batches."""
        images, labels = batch
        images = self.transform(images, train=train)
        if train and self.stage == "retrain" and self.cutout_length > 0:
            images = cutout(images, self.cutout_length)
        return images, labels

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        training = self.trainer is not None and self.trainer.training
        if isinstance(batch, dict):
            return {k: self.prepare_batch(v, training) for k, v in batch.items()}
        return self.prepare_batch(batch, training)
