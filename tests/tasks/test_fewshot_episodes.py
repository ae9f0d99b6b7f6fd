"""Few-shot episodes: layout, the learn2learn sampling, fixed evaluation episodes, and the 95% interval."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from tasks.fewshot.data.episodes import (
    FixedTaskset,
    check_blocks,
    fixed_episode_indices,
    meta_dataset,
    split_episode,
    training_taskset,
)
from tasks.fewshot.data.fashion_rot import FASHION_MNIST_ROT, load_fashion_rot
from tasks.fewshot.datamodule import EpisodeSettings, FewShotDataModule
from tasks.fewshot.metrics import ci95

SPLIT = load_fashion_rot(None, "train", 0, 40)


def _position_of(images: torch.Tensor) -> list[int]:
    """Dataset index of each image of a task (fixture images are unique; found by exact match)."""
    flat = SPLIT.images.flatten(1)
    return [int(torch.nonzero((flat == img.flatten()).all(1))[0]) for img in images]


def test_training_tasks_have_contiguous_classes_and_disjoint_support_and_query() -> None:
    taskset = training_taskset(meta_dataset(SPLIT), ways=5, per_class=2 + 4)
    random.seed(0)
    for _ in range(5):
        images, labels = taskset.sample()
        assert images.shape == (30, 1, 28, 28) and images.dtype == torch.uint8
        assert sorted(labels.tolist()) == sorted(list(range(5)) * 6)
        episode = split_episode(images, labels, ways=5, shots=2)
        blocks = labels.view(5, 6)
        assert bool((blocks == blocks[:, :1]).all())  # one class per block of shots + queries
        assert episode.support_labels.tolist() == blocks[:, :2].flatten().tolist()
        assert len(episode.query) == 20 and episode.query_labels.tolist() == blocks[:, 2:].flatten().tolist()
        index = _position_of(images)
        assert len(set(index)) == 30  # support and query never share an image
        original = [int(SPLIT.labels[i]) for i in index]
        assert all(len({original[k] for k in range(w * 6, w * 6 + 6)}) == 1 for w in range(5))  # true classes


def test_the_fused_sampler_draws_exactly_what_nways_then_kshots_draw() -> None:
    dataset = meta_dataset(SPLIT)
    fused, chained = training_taskset(dataset, 5, 3), training_taskset(dataset, 5, 3, fused=False)
    random.seed(11)
    a = [fused.sample() for _ in range(4)]
    random.seed(11)
    b = [chained.sample() for _ in range(4)]
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))


def test_tasks_that_are_not_class_blocks_are_refused() -> None:
    check_blocks(torch.tensor([2, 2, 0, 0, 1, 1]), ways=3)
    for labels in ([0, 1, 0, 1, 2, 2], [0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 2]):
        with pytest.raises(ValueError, match="not 3 contiguous class blocks"):
            check_blocks(torch.tensor(labels), ways=3)
    with pytest.raises(ValueError, match="cannot hold"):
        split_episode(torch.zeros(6, 1, 2, 2), torch.tensor([0, 0, 1, 1, 2, 2]), ways=3, shots=2)


def test_fixed_episodes_come_from_the_data_seed_alone() -> None:
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    a = fixed_episode_indices(SPLIT, 5, 4, 20, seed=0, split_code=2)
    random.seed(2)
    np.random.seed(2)
    torch.manual_seed(2)
    b = fixed_episode_indices(SPLIT, 5, 4, 20, seed=0, split_code=2)
    assert np.array_equal(a, b)  # the global generators (run seed) play no part
    assert not np.array_equal(a, fixed_episode_indices(SPLIT, 5, 4, 20, seed=1, split_code=2))
    labels = SPLIT.labels.numpy()[a]  # (episode, way, image)
    assert (labels == labels[:, :, :1]).all() and all(len(set(e[:, 0])) == 5 for e in labels)
    assert all(len(set(e.flatten())) == 20 for e in a)


def test_fixed_tasksets_never_touch_the_global_random_state_and_keep_the_indices() -> None:
    indices = fixed_episode_indices(SPLIT, 5, 3, 6, seed=0, split_code=1)
    state = random.getstate()
    tasks = FixedTaskset(meta_dataset(SPLIT), indices)
    episodes = [tasks[i] for i in (3, 0, 5, 3)]
    assert random.getstate() == state
    assert torch.equal(episodes[0][1], episodes[3][1])  # reading order does not matter
    index, images, labels = episodes[0]
    assert index == 3 and _position_of(images) == [int(i) for i in indices[3].flatten()]
    assert labels.tolist() == [w for w in range(5) for _ in range(3)]
    assert tasks.sha256 != FixedTaskset(meta_dataset(SPLIT), indices[:5]).sha256


def _settings(**changes) -> EpisodeSettings:
    base = dict(ways=5, shots=1, queries=3, test_queries=3, meta_batch=1, steps_per_epoch=1, val_episodes=4,
                test_episodes=8, seed=0, images_per_class=20, cross_domain="digits", root=None)
    return EpisodeSettings(**{**base, **changes})


def test_every_run_seed_gets_the_same_evaluation_episodes() -> None:
    """The data module of any run (any norm, any run seed) builds the same episodes for a data seed."""
    modules = []
    for seed in (0, 1):
        random.seed(seed)
        module = FewShotDataModule(FASHION_MNIST_ROT, _settings())
        module.setup()
        modules.append(module)
    a, b = modules
    for name in ("val", "test", "digits"):
        assert np.array_equal(a.episode_indices(name), b.episode_indices(name))
    assert a.episode_hashes() == b.episode_hashes() and len(set(a.episode_hashes().values())) == 3
    other = FewShotDataModule(FASHION_MNIST_ROT, _settings(seed=1))
    other.setup()
    assert other.episode_hashes()["test"] != a.episode_hashes()["test"]
    assert other.episode_hashes()["digits"] != a.episode_hashes()["digits"]



def test_ci95_is_1_96_standard_deviations_over_root_n() -> None:
    accuracies = [0.2, 0.4, 0.4, 0.6, 1.0]
    mean = sum(accuracies) / 5
    population_std = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / 5)
    assert ci95(accuracies) == pytest.approx(1.96 * population_std / math.sqrt(5), rel=1e-12)
    assert ci95([0.0, 1.0]) == pytest.approx(1.96 * 0.5 / math.sqrt(2))
    assert ci95([0.7] * 600) == 0.0 and math.isnan(ci95([]))
