"""Data for adversarial training: [0, 1] images, and the fixed subsets the attacks run on.

Attacks define epsilon on pixels in [0, 1] and clip to that box, so this data
module hands the model unnormalized [0, 1] images (augmented as usual); the
model normalizes its own input (:class:`.models.InputNormalization`).

Validation and test each have two loaders: the whole split (clean accuracy)
and a fixed random subset of it (the attacks). The subsets depend only on the
split seed, so every norm, batch size and seed is attacked on the same images;
their batches carry each image's index, so results gathered from several
devices are counted once per image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..data.config import DataConfig
from ..data.datamodule import ImageDataModule
from ..data.splits import permutation
from ..data.tensor_data import BatchTransform, TensorImageDataset
from ..runner.outcomes import ItemList

__all__ = ["RobustDataModule", "IndexedImages", "fixed_subset", "TEST_SET_SIZES"]

# Test-set sizes of the data sets this task accepts (checked before any data is read).
TEST_SET_SIZES = {"fashion_mnist": 10000, "cifar10": 10000, "cifar100": 10000}
_SUBSET_SEED_OFFSET = 2  # splits.py uses seed (train/val) and seed + 1 (fractions)


class IndexedImages(TensorImageDataset):
    """A tensor data set whose batches are (images, labels, index within the split)."""

    def __init__(self, images: Tensor, labels: Tensor, index: Tensor) -> None:
        super().__init__(images, labels)
        self.index = index

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images.index_select(0, idx), self.labels.index_select(0, idx), self.index.index_select(0, idx)


def fixed_subset(dataset: TensorImageDataset, size: int | None, seed: int) -> IndexedImages:
    """``size`` images of ``dataset`` chosen by ``seed`` alone (all of them for None), in index order."""
    n = len(dataset)
    keep = torch.arange(n) if size is None or size >= n else permutation(n, seed + _SUBSET_SEED_OFFSET)[:size].sort().values
    return IndexedImages(dataset.images[keep], dataset.labels[keep], keep)


def robust_items(test: ItemList, index: Tensor) -> ItemList:
    """The attack subset's items: the test images at ``index`` (positions in the evaluated test split)."""
    ids = tuple(test.ids[i] for i in index.tolist())
    words = f"{test.source.replace('/', ' ')} images: the attack subset of {len(ids)} (indices into the split)"
    return ItemList("robust", words, test.source, ids)


class RobustDataModule(ImageDataModule):
    """ImageDataModule with [0, 1] images and the attack subsets as second validation and test loaders.

    Example:
        >>> from tasks.data.config import DataConfig
        >>> data = RobustDataModule(DataConfig(val_size=100), 16, val_robust_samples=50, robust_samples=200)
        >>> data.transform.mean, data.transform.std
        ((0.0,), (1.0,))
    """

    def __init__(self, cfg: DataConfig, batch_size: int, *, val_robust_samples: int, robust_samples: int | None) -> None:
        super().__init__(cfg, batch_size)
        augment = self.info.standard_augment if cfg.augment == "standard" else cfg.augment
        channels = self.info.channels
        self.transform = BatchTransform((0.0,) * channels, (1.0,) * channels, augment, self.info.crop_padding)
        self.val_robust_samples = val_robust_samples
        self.robust_samples = robust_samples
        self.val_subset: IndexedImages | None = None
        self.test_subset: IndexedImages | None = None

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.val_subset is None:
            assert isinstance(self.val_set, TensorImageDataset) and isinstance(self.test_set, TensorImageDataset)
            self.val_subset = fixed_subset(self.val_set, self.val_robust_samples, self.cfg.split_seed)
            self.test_subset = fixed_subset(self.test_set, self.robust_samples, self.cfg.split_seed)
            self.outcome_items["robust"] = robust_items(self.outcome_items["test"], self.test_subset.index)

    def val_dataloader(self) -> list[DataLoader]:  # type: ignore[override]
        size = self.cfg.eval_batch_size
        return [self._loader(self.val_set, size, train=False), self._loader(self.val_subset, size, train=False)]

    def test_dataloader(self) -> list[DataLoader]:  # type: ignore[override]
        size = self.cfg.eval_batch_size
        return [self._loader(self.test_set, size, train=False), self._loader(self.test_subset, size, train=False)]

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels, *index = batch
        training = self.trainer is not None and self.trainer.training
        return (self.transform(images, train=training), labels, *index)
