"""The few-shot LightningDataModule: random meta-training tasks, fixed validation and test episodes.

A training batch is a list of ``meta_batch`` tasks, each (uint8 images,
labels) in class blocks; validation and test batches are one fixed episode
each, ``(index, images, labels)``. Tasks are drawn in the training process
(no loader workers): learn2learn samples them with Python's global ``random``,
whose state the runner keeps in checkpoints, and worker processes would each
hold a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset

from ..data.errors import DataCorruptError
from ..runner.outcomes import ItemList
from .data.base import ClassSplit, FewShotDataset, check_split
from .data.episodes import (
    SPLIT_CODES,
    FixedTaskset,
    check_blocks,
    fixed_episode_indices,
    meta_dataset,
    training_taskset,
)
from .data.registry import CROSS_DOMAIN, data_root

__all__ = ["EpisodeSettings", "FewShotDataModule", "TaskStream"]


@dataclass(frozen=True)
class EpisodeSettings:
    """Everything the data module needs, resolved from the config (plain values)."""

    ways: int
    shots: int
    queries: int
    test_queries: int
    meta_batch: int
    steps_per_epoch: int
    val_episodes: int
    test_episodes: int
    seed: int
    images_per_class: int
    cross_domain: str
    root: str | None


class TaskStream(Dataset):
    """``length`` freshly drawn training tasks; the index is ignored (learn2learn draws from ``random``)."""

    def __init__(self, taskset: Any, length: int, ways: int) -> None:
        self.taskset, self.length, self.ways = taskset, length, ways

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        images, labels = self.taskset.sample()
        check_blocks(labels, self.ways)
        return images, labels


def _as_list(tasks: list[Any]) -> list[Any]:
    return list(tasks)


def episode_items(name: str, episodes: FixedTaskset, s: EpisodeSettings) -> ItemList:
    """The fixed episodes of set ``name`` as items: episode numbers, hashed with the episodes' own SHA-256."""
    count = len(episodes)
    words = (f"{name} episodes 0..{count - 1} ({s.ways}-way {s.shots}-shot, {s.test_queries} queries per class; "
             f"episodes sha256 {episodes.sha256[:12]}...)")
    return ItemList(name, words, f"episodes/{episodes.sha256}", tuple(range(count)))


class FewShotDataModule(L.LightningDataModule):
    def __init__(self, dataset: FewShotDataset, settings: EpisodeSettings) -> None:
        super().__init__()
        self.dataset, self.settings = dataset, settings
        self.splits: dict[str, ClassSplit] = {}
        self.eval_sets: dict[str, FixedTaskset] = {}
        self.train_tasks: Any = None
        self.outcome_items: dict[str, ItemList] = {}  # the test episodes, for per-episode outcomes (outcomes.json)

    def _load(self, dataset: FewShotDataset, split: str) -> ClassSplit:
        s = self.settings
        root: Path | None = data_root(s.root, dataset)
        loaded = dataset.load(root, split, s.seed, s.images_per_class)
        check_split(loaded, f"{dataset.name} {split} split", dataset.input_shape)
        smallest = int(loaded.class_sizes().min())
        need = s.shots + (s.queries if split == "train" else s.test_queries)
        if smallest < need:
            raise DataCorruptError(f"{dataset.name} {split} split: its smallest class has {smallest} images, an "
                                   f"episode needs {need} per class (shots + queries)")
        return loaded

    def _fixed(self, dataset: FewShotDataset, split: ClassSplit, code: str, count: int) -> FixedTaskset:
        s = self.settings
        indices = fixed_episode_indices(split, s.ways, s.shots + s.test_queries, count, s.seed, SPLIT_CODES[code])
        return FixedTaskset(meta_dataset(split), indices)

    def setup(self, stage: str | None = None) -> None:
        if self.eval_sets:
            return
        s = self.settings
        for split in self.dataset.splits:
            self.splits[split] = self._load(self.dataset, split)
        self.train_tasks = training_taskset(meta_dataset(self.splits["train"]), s.ways, s.shots + s.queries)
        self.eval_sets["val"] = self._fixed(self.dataset, self.splits["validation"], "validation", s.val_episodes)
        self.eval_sets["test"] = self._fixed(self.dataset, self.splits["test"], "test", s.test_episodes)
        if s.cross_domain != "none":
            other = CROSS_DOMAIN[s.cross_domain]
            self.splits[s.cross_domain] = self._load(other, "test")
            self.eval_sets[s.cross_domain] = self._fixed(other, self.splits[s.cross_domain], s.cross_domain,
                                                         s.test_episodes)
        for name in self.test_sets:
            self.outcome_items[name] = episode_items(name, self.eval_sets[name], s)

    @property
    def test_sets(self) -> list[str]:
        """Names of the test loaders, in loader order (``test``, then a cross-domain set)."""
        return [name for name in self.eval_sets if name != "val"]

    def episode_hashes(self) -> dict[str, str]:
        return {name: tasks.sha256 for name, tasks in self.eval_sets.items()}

    def episode_indices(self, name: str) -> np.ndarray:
        return self.eval_sets[name].indices

    def train_dataloader(self) -> DataLoader:
        s = self.settings
        stream = TaskStream(self.train_tasks, s.steps_per_epoch * s.meta_batch, s.ways)
        return DataLoader(stream, batch_size=s.meta_batch, shuffle=False, num_workers=0, collate_fn=_as_list)

    def _eval_loader(self, name: str) -> DataLoader:
        return DataLoader(self.eval_sets[name], batch_size=None, shuffle=False, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> list[DataLoader]:
        return [self._eval_loader(name) for name in self.test_sets]
