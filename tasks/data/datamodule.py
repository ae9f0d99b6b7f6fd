"""LightningDataModule for image classification on any data set of the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..runner.outcomes import ItemList, image_items
from . import imagenet
from .config import DataConfig
from .registry import DatasetInfo, get_dataset_info, resolve_data_root
from .splits import subset_indices, train_val_indices
from .tensor_data import AUGMENTATIONS, BatchTransform, TensorImageDataset, passthrough_collate

__all__ = ["ImageDataModule"]


class ImageDataModule(L.LightningDataModule):
    """Train/val/test loaders; tensor data sets are augmented on the device after transfer."""

    def __init__(self, cfg: DataConfig, batch_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size
        self.info: DatasetInfo = get_dataset_info(cfg.name)
        augment = self.info.standard_augment if cfg.augment == "standard" else cfg.augment
        if augment not in AUGMENTATIONS:
            raise ValueError(f"data.augment={cfg.augment!r}; choose standard, {', '.join(AUGMENTATIONS)}")
        self.transform = BatchTransform(self.info.mean, self.info.std, augment, self.info.crop_padding)
        self.root: Path | None = resolve_data_root(cfg.root, self.info)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.outcome_items: dict[str, ItemList] = {}  # the test images, for per-item outcomes (outcomes.json)

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.info.channels, self.info.image_size, self.info.image_size)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        cfg = self.cfg
        if self.info.load_tensors is not None:
            images, labels = self.info.load_tensors(self.root, "train", cfg.download)
            train_idx, val_idx = train_val_indices(len(labels), cfg.val_size, cfg.split_seed)
            train_idx = train_idx[subset_indices(len(train_idx), cfg.fraction, cfg.split_seed)]
            self.train_set = TensorImageDataset(images[train_idx], labels[train_idx])
            self.val_set = TensorImageDataset(images[val_idx], labels[val_idx])
            test_images, test_labels = self.info.load_tensors(self.root, "test", cfg.download)
            keep = subset_indices(len(test_labels), cfg.test_fraction, cfg.split_seed)
            self.test_set = TensorImageDataset(test_images[keep], test_labels[keep])
            self.outcome_items["test"] = image_items("test", cfg.name, "test", keep, len(test_labels))
        else:  # folder data set (ImageNet): per-sample decoding and transforms
            assert self.root is not None
            train_full = imagenet.imagenet_folder(self.root, "train", train_transform=True)
            eval_full = imagenet.imagenet_folder(self.root, "train", train_transform=False)
            train_idx, val_idx = train_val_indices(len(train_full), cfg.val_size, cfg.split_seed)
            train_idx = train_idx[subset_indices(len(train_idx), cfg.fraction, cfg.split_seed)]
            self.train_set = Subset(train_full, train_idx.tolist())
            self.val_set = Subset(eval_full, val_idx.tolist())
            test_full = imagenet.imagenet_folder(self.root, "test", train_transform=False)
            keep = subset_indices(len(test_full), cfg.test_fraction, cfg.split_seed)
            self.test_set = Subset(test_full, keep.tolist())
            self.outcome_items["test"] = image_items("test", cfg.name, "test", keep, len(test_full))

    def _loader(self, dataset: Dataset | None, batch_size: int, train: bool) -> DataLoader:
        assert dataset is not None, "call setup() first"
        tensor_data = isinstance(dataset, TensorImageDataset)
        workers = self.cfg.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=train,  # a last batch of 1 would break batch statistics
            num_workers=workers,
            persistent_workers=workers > 0,
            collate_fn=passthrough_collate if tensor_data else None,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.cfg.eval_batch_size, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.cfg.eval_batch_size, train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        return self.transform(images, train=training), labels
