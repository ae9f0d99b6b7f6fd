"""Fixed-seed splits and subsets, identical for every run of a sweep.

The split depends only on ``split_seed`` and the data set size, never on the
run's seed, so all norms, batch sizes and seeds see the same train/val/test images.
"""

from __future__ import annotations

import torch


def permutation(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def train_val_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint (train, val) index tensors; ``val_size`` images go to validation."""
    if not 0 < val_size < n:
        raise ValueError(f"val_size={val_size} must be between 1 and {n - 1} (the training set has {n} images)")
    perm = permutation(n, seed)
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def subset_indices(n: int, fraction: float, seed: int) -> torch.Tensor:
    """A fixed random subset of ``round(fraction * n)`` positions out of ``n`` (all when fraction is 1)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction} must be in (0, 1]")
    if fraction == 1:
        return torch.arange(n)
    keep = max(1, round(fraction * n))
    return permutation(n, seed + 1)[:keep].sort().values
