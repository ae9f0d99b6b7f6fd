"""Source and target data for domain adaptation: labelled, unlabelled, validation and test sets.

What each split holds (small-image domains; Office in brackets, which has no splits):

- labelled training set: the source's training split minus ``val_size`` validation
  images [the source domain minus them]; the oracle uses the target's instead;
- unlabelled target training set (DANN, CDAN) and the AdaBN statistics pass: the
  target's training split [the whole target domain], images only: the training
  loop and the AdaBN pass are handed no target labels at all;
- validation (model selection): the held-out labelled images, source ones except
  for the oracle;
- test: the source test split [the held-out source images] and the target test
  split [the whole target domain].

``fraction`` and ``test_fraction`` take fixed subsets (``split_seed``; the target
training subset uses ``split_seed + 1`` so it is not the source's images
re-coloured). A training step gets ``batch_size`` labelled images and, for the
adversarial methods, as many target images: the target loader draws as many
images per epoch as the labelled one, cycling through its set.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from ..data.errors import DataError
from ..data.splits import subset_indices, train_val_indices
from ..data.tensor_data import BatchTransform, TensorImageDataset, passthrough_collate
from ..runner.outcomes import ItemList, image_items
from . import loading, office
from .config import ADVERSARIAL_METHODS, UdaConfig
from .domains import Domain, get_domain

__all__ = ["UdaDataModule", "ImagesOnly", "pair_geometry"]

TENSOR_MEAN, TENSOR_STD = (0.5,), (0.5,)  # one fixed normalization for every domain (no per-domain statistics)


class ImagesOnly(Dataset):
    """uint8 images without labels: what the unlabelled target side is given."""

    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return self.images[index]

    def __getitems__(self, indices: list[int]) -> Tensor:
        return self.images.index_select(0, torch.as_tensor(indices, dtype=torch.long))


def pair_geometry(source: Domain, target: Domain, image_size: int | None) -> tuple[int, int]:
    """(channels, image size) of the pair: colour if either domain has it; the larger native size by default."""
    channels = max(source.channels, target.channels)
    if image_size is not None:
        return channels, image_size
    return channels, max(source.image_size, target.image_size)


def _map_images(batch: Any, fn) -> Any:
    if isinstance(batch, Tensor):
        return fn(batch) if batch.dim() == 4 else batch
    if isinstance(batch, dict):
        return {k: _map_images(v, fn) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_map_images(v, fn) for v in batch)
    return batch


class UdaDataModule(L.LightningDataModule):
    """The pair's loaders; tensor images are normalized (and replicated to 3 channels) after the transfer."""

    def __init__(self, cfg: UdaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.data = cfg.data
        self.source, self.target = get_domain(cfg.data.source), get_domain(cfg.data.target, "data.target")
        self.labelled_domain = self.target if cfg.method == "oracle" else self.source
        self.channels, self.image_size = pair_geometry(self.source, self.target, cfg.data.image_size)
        self.root = loading.data_root(cfg.data.root, self.source, self.target)
        self.cache_dir = loading.fashion_mnist_m_cache(cfg.data.cache_dir, cfg.data.root)
        self.train_transform = BatchTransform(TENSOR_MEAN, TENSOR_STD, cfg.data.augment, padding=2)
        self.eval_transform = BatchTransform(TENSOR_MEAN, TENSOR_STD, "none")
        self.provenance: dict[str, str] = {}
        self.sets: dict[str, Dataset] = {}
        self.outcome_items: dict[str, ItemList] = {}  # the test sets' images, for per-item outcomes (outcomes.json)

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def adversarial(self) -> bool:
        return self.cfg.method in ADVERSARIAL_METHODS

    # ------------------------------------------------------------------------------------- building the sets
    def setup(self, stage: str | None = None) -> None:
        if self.sets:
            return
        if self.source.kind == "folder":
            self._setup_folders()
        else:
            self._setup_tensors()
        for name in ("labelled_train", "unlabelled_train"):
            if name in self.sets and len(self.sets[name]) < self.cfg.batch_size:
                raise DataError(f"the {name.replace('_', ' ')} set has {len(self.sets[name])} images, fewer than "
                                f"batch_size={self.cfg.batch_size}; raise data.fraction or lower batch_size")

    def _tensor_split(self, domain: Domain, split: str) -> tuple[Tensor, Tensor]:
        images, labels, provenance = loading.load_tensor_split(
            domain, self.root, split, self.image_size, cache_dir=self.cache_dir, download=self.data.download)
        self.provenance.update(provenance)
        return images, labels

    def _labelled_split(self, n: int) -> tuple[Tensor, Tensor]:
        if not 0 < self.data.val_size < n:
            raise DataError(f"data.val_size={self.data.val_size} must be below the {n} images of "
                            f"{self.labelled_domain.name}'s training split")
        train_idx, val_idx = train_val_indices(n, self.data.val_size, self.data.split_seed)
        return train_idx[subset_indices(len(train_idx), self.data.fraction, self.data.split_seed)], val_idx

    def _setup_tensors(self) -> None:
        d = self.data
        images, labels = self._tensor_split(self.labelled_domain, "train")
        train_idx, val_idx = self._labelled_split(len(labels))
        self.sets["labelled_train"] = TensorImageDataset(images[train_idx], labels[train_idx])
        self.sets["labelled_val"] = TensorImageDataset(images[val_idx], labels[val_idx])
        if self.cfg.method != "oracle":
            target_images, _ = self._tensor_split(self.target, "train")  # the labels are dropped here
            keep = subset_indices(len(target_images), d.fraction, d.split_seed + 1)
            self.sets["unlabelled_train"] = ImagesOnly(target_images[keep])
        for role, domain in (("source_test", self.source), ("target_test", self.target)):
            test_images, test_labels = self._tensor_split(domain, "test")
            keep = subset_indices(len(test_labels), d.test_fraction, d.split_seed)
            self.sets[role] = TensorImageDataset(test_images[keep], test_labels[keep])
            self.outcome_items[role] = image_items(role, domain.name, "test", keep, len(test_labels))

    def _setup_folders(self) -> None:
        d = self.data
        size = self.image_size
        train_tf, eval_tf = office.office_transform(True, size), office.office_transform(False, size)
        source = office.ImageList(loading.folder_samples(self.source, self.root), eval_tf)
        train_idx, val_idx = self._labelled_split(len(source))
        self.sets["labelled_train"] = source.subset(train_idx.tolist(), transform=train_tf)
        self.sets["labelled_val"] = source.subset(val_idx.tolist())
        self.sets["source_test"] = source.subset(val_idx.tolist())  # Office has no test split: held-out images
        self.outcome_items["source_test"] = image_items("source_test", self.source.name, "all", val_idx, len(source))
        target = office.ImageList(loading.folder_samples(self.target, self.root), eval_tf)
        keep = subset_indices(len(target), d.fraction, d.split_seed + 1).tolist()
        self.sets["unlabelled_train"] = target.subset(keep, labelled=False, transform=train_tf)
        self.sets["adabn"] = target.subset(keep, labelled=False)
        test_keep = subset_indices(len(target), d.test_fraction, d.split_seed).tolist()
        self.sets["target_test"] = target.subset(test_keep)
        self.outcome_items["target_test"] = image_items("target_test", self.target.name, "all", test_keep, len(target))

    # ------------------------------------------------------------------------------------------- loaders
    def _loader(self, dataset: Dataset, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                sampler: Any = None) -> DataLoader:
        workers = self.data.num_workers
        tensors = isinstance(dataset, (TensorImageDataset, ImagesOnly))
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, drop_last=drop_last,
                          num_workers=workers, persistent_workers=workers > 0,
                          collate_fn=passthrough_collate if tensors else None, pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> CombinedLoader:
        labelled = self.sets["labelled_train"]
        loaders = {"labelled": self._loader(labelled, self.cfg.batch_size, shuffle=True, drop_last=True)}
        if self.adversarial:
            unlabelled = self.sets["unlabelled_train"]
            sampler = RandomSampler(unlabelled, num_samples=len(labelled))  # as many draws as the labelled side
            loaders["unlabelled"] = self._loader(unlabelled, self.cfg.batch_size, sampler=sampler, drop_last=True)
        return CombinedLoader(loaders, mode="max_size_cycle")

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.sets["labelled_val"], self.data.eval_batch_size)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(self.sets[name], self.data.eval_batch_size) for name in ("source_test", "target_test")]

    def adabn_dataloader(self) -> DataLoader:
        """Target training images, eval transforms, no labels; a last partial batch is dropped when others exist."""
        dataset = self.sets.get("adabn", self.sets.get("unlabelled_train"))
        if dataset is None:
            raise RuntimeError("the AdaBN pass needs the unlabelled target training set (not built for the oracle)")
        batch = self.data.eval_batch_size
        return self._loader(dataset, batch, drop_last=len(dataset) > batch)

    def transform(self, images: Tensor, train: bool) -> Tensor:
        """uint8 -> normalized float (augmented in training), grey replicated to the pair's channels."""
        images = (self.train_transform if train else self.eval_transform)(images, train=train)
        if images.shape[1] != self.channels:
            images = images.expand(-1, self.channels, -1, -1)
        return images

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        training = self.trainer is not None and self.trainer.training
        return _map_images(batch, lambda x: self.transform(x, train=training))
