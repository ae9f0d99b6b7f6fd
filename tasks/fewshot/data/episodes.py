"""Episodes with learn2learn: random ones for meta-training, fixed ones for validation and test.

Meta-training draws tasks the learn2learn way: a ``MetaDataset`` over the
split and a ``TaskDataset`` (learn2learn 0.2 names it ``Taskset`` and warns on
the old name) with ``NWays`` and ``KShots`` (shots + queries per class, without
replacement), ``LoadData``, ``RemapLabels`` and ``ConsecutiveLabels``. NWays
and KShots run as learn2learn's ``FusedNWaysKShots``, which draws exactly the
same tasks from the same random state (a test checks this) without first
listing every image of the chosen classes: with 600-image classes, plain
``NWays`` allocates 3,000 task-description objects per 5-way task, about 20 ms,
a third of a ProtoNet step on a CPU. These transforms draw from Python's global
``random``, which the runner seeds and keeps in every checkpoint, so a resumed
run draws the tasks an uninterrupted one would.

Evaluation episodes must be the same for every norm and every run seed, so two
norms can be compared episode by episode. ``TaskDataset`` samples lazily from
the global ``random`` in the order episodes are first read, which would tie
them to the run seed and to the order of evaluation. Here the episodes'
sample indices are drawn up front by a private NumPy generator seeded by the
data seed, the split and the episode shape only; learn2learn's ``LoadData``,
``RemapLabels`` (without its shuffle) and ``ConsecutiveLabels`` then build each
task from its description, and :func:`episodes_sha256` fingerprints the
indices for the record.

Every task comes out class by class: ``ways`` blocks of ``shots + queries``
images, one class per block, labels 0..ways-1. :func:`split_episode` takes the
first ``shots`` of each block as the support set and the rest as the query set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..l2l import l2l
from .base import ClassSplit

__all__ = [
    "Episode", "ClassImagesDataset", "meta_dataset", "training_taskset", "fixed_episode_indices",
    "FixedTaskset", "episodes_sha256", "split_episode", "check_blocks", "SPLIT_CODES",
]

SPLIT_CODES = {"train": 0, "validation": 1, "test": 2, "digits": 3}
DataDescription = l2l.data.DataDescription


def check_blocks(labels: torch.Tensor, ways: int) -> None:
    """Refuse a task whose labels are not ``ways`` equal blocks of one class each (checked on the CPU side)."""
    per_class = len(labels) // ways
    blocks = labels.view(ways, per_class) if per_class * ways == len(labels) else None
    if blocks is None or not bool((blocks == blocks[:, :1]).all()) or len(torch.unique(blocks[:, 0])) != ways:
        raise ValueError(f"a task of {len(labels)} images is not {ways} contiguous class blocks")


class ClassImagesDataset(Dataset):
    """A :class:`ClassSplit` as a map-style data set of (uint8 image, label) pairs."""

    def __init__(self, split: ClassSplit) -> None:
        self.images, self.labels = split.images, split.labels
        self.split = split

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def meta_dataset(split: ClassSplit) -> "l2l.data.MetaDataset":
    """learn2learn's MetaDataset with its label index built from the labels directly (no pass over images)."""
    labels = split.labels.numpy()
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(split.num_classes + 1))
    labels_to_indices = {c: order[bounds[c]:bounds[c + 1]].tolist() for c in range(split.num_classes)}
    return l2l.data.MetaDataset(ClassImagesDataset(split), labels_to_indices=labels_to_indices)


def training_taskset(dataset: "l2l.data.MetaDataset", ways: int, per_class: int, fused: bool = True
                     ) -> "l2l.data.Taskset":
    """Endless random tasks: ``ways`` classes, ``per_class`` images of each, remapped and class-contiguous.

    ``fused=False`` chains ``NWays`` and ``KShots`` themselves (the same tasks, slower).
    """
    T = l2l.data.transforms
    sampling = [T.FusedNWaysKShots(dataset, n=ways, k=per_class)] if fused else \
        [T.NWays(dataset, n=ways), T.KShots(dataset, k=per_class)]
    transforms = [
        *sampling,
        l2l.data.transforms.LoadData(dataset),
        l2l.data.transforms.RemapLabels(dataset),
        l2l.data.transforms.ConsecutiveLabels(dataset),
    ]
    return l2l.data.Taskset(dataset, task_transforms=transforms, num_tasks=-1)


def fixed_episode_indices(split: ClassSplit, ways: int, per_class: int, count: int, seed: int, split_code: int
                          ) -> np.ndarray:
    """(count, ways, per_class) sample indices drawn by a private generator: data seed and episode shape only."""
    rng = np.random.default_rng([seed, split_code, ways, per_class])
    labels = split.labels.numpy()
    members = [np.flatnonzero(labels == c) for c in range(split.num_classes)]
    out = np.empty((count, ways, per_class), dtype=np.int64)
    for episode in range(count):
        classes = np.sort(rng.choice(split.num_classes, size=ways, replace=False))
        for way, c in enumerate(classes):
            out[episode, way] = rng.choice(members[c], size=per_class, replace=False)
    return out


def episodes_sha256(indices: np.ndarray) -> str:
    """Fingerprint of a set of fixed episodes (shape and every sample index)."""
    digest = hashlib.sha256(np.asarray(indices.shape, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
    return digest.hexdigest()


class FixedTaskset(Dataset):
    """Fixed episodes as a data set: item i is (i, images, labels) of episode i, built by learn2learn.

    The descriptions are written into a ``Taskset`` of ``num_tasks=count``
    before any is read, so learn2learn never samples (and never touches the
    global ``random``); ``RemapLabels`` runs without its shuffle.
    """

    def __init__(self, dataset: "l2l.data.MetaDataset", indices: np.ndarray) -> None:
        self.indices = indices
        transforms = [l2l.data.transforms.LoadData(dataset), l2l.data.transforms.RemapLabels(dataset, shuffle=False),
                      l2l.data.transforms.ConsecutiveLabels(dataset)]
        self.taskset = l2l.data.Taskset(dataset, task_transforms=transforms, num_tasks=len(indices))
        for i, episode in enumerate(indices):
            description = [DataDescription(int(index)) for index in episode.reshape(-1)]
            for transform in transforms:
                description = transform(description)
            self.taskset.sampled_descriptions[i] = description
        self.sha256 = episodes_sha256(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        images, labels = self.taskset[i]
        check_blocks(labels, self.indices.shape[1])
        return i, images, labels


@dataclass
class Episode:
    """One task split into support and query sets (images already standardized floats)."""

    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor
    ways: int


def split_episode(images: torch.Tensor, labels: torch.Tensor, ways: int, shots: int) -> Episode:
    """Support = the first ``shots`` images of each class block, query = the rest.

    The blocks were checked where the task was made (:func:`check_blocks`, on the
    CPU); here only the sizes are, so no device synchronization happens per episode.
    """
    per_class = len(labels) // ways
    if per_class * ways != len(labels) or per_class <= shots:
        raise ValueError(f"an episode of {len(labels)} images cannot hold {ways} ways x ({shots} shots + queries)")
    blocks = labels.view(ways, per_class)
    shaped = images.view(ways, per_class, *images.shape[1:])
    return Episode(
        support=shaped[:, :shots].reshape(ways * shots, *images.shape[1:]),
        support_labels=blocks[:, :shots].reshape(-1),
        query=shaped[:, shots:].reshape(ways * (per_class - shots), *images.shape[1:]),
        query_labels=blocks[:, shots:].reshape(-1),
        ways=ways,
    )
