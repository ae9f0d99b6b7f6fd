"""The norm diagnostics' statistics (tasks/runner/norm_stats.py) against hand-computed values and a brute-force
reference written from the definitions (docs/diagnostics.md)."""

from __future__ import annotations

import math

import pytest
import torch

from normlayers import create_norm, find_norm_layers
from normlayers.pooling import PER_CHANNEL_BATCH, PER_CHANNEL_SAMPLE, PER_POSITION, PER_SAMPLE, Pooling, pooling_groups
from tasks.runner.norm_stats import chunk_stats, confusion, geometric_mean, noise, pooled_population

BATCH_GROUPS = Pooling(over_batch=True, groups="num_groups")
SAMPLE_GROUPS = Pooling(over_batch=False, groups="num_groups")


def brute_force(x: torch.Tensor, pooling: Pooling, groups: int) -> list[tuple[list[float], list[int]]]:
    """Each statistic as (values, channel of each value), element by element from the definitions."""
    n, c = x.shape[:2]
    flat = x.double().reshape(n, c, -1)
    p = flat.shape[2]
    if pooling.kind == "position":
        if pooling.over_batch:
            return [([float(flat[i, ch, q]) for i in range(n) for ch in range(c)], [ch for _ in range(n) for ch in range(c)])
                    for q in range(p)]
        return [([float(flat[i, ch, q]) for ch in range(c)], list(range(c))) for i in range(n) for q in range(p)]
    size = c * p // groups
    def members(g):
        return [(j // p, j % p) for j in range(g * size, (g + 1) * size)]
    if pooling.over_batch:
        return [([float(flat[i, ch, q]) for i in range(n) for ch, q in members(g)],
                 [ch for i in range(n) for ch, q in members(g)]) for g in range(groups)]
    return [([float(flat[i, ch, q]) for ch, q in members(g)], [ch for ch, q in members(g)])
            for i in range(n) for g in range(groups)]


def anova(values: list[float], channels: list[int]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    ch = torch.tensor(channels)
    total = float((t - t.mean()).pow(2).sum())
    between = sum(int((ch == k).sum()) * float(t[ch == k].mean() - t.mean()) ** 2 for k in ch.unique())
    return between, total


CASES = [
    (PER_CHANNEL_BATCH, 3),  # BN: G = C
    (BATCH_GROUPS, 1), (BATCH_GROUPS, 2), (BATCH_GROUPS, 6), (BATCH_GROUPS, 4),  # BGN; G=4 straddles channels
    (PER_CHANNEL_SAMPLE, 3), (PER_SAMPLE, 1), (SAMPLE_GROUPS, 4),  # IN, LN, GN-like with straddling groups
]


@pytest.mark.parametrize("pooling,groups", CASES)
def test_moments_elements_and_anova_match_the_definitions(pooling: Pooling, groups: int) -> None:
    x = torch.randn(2, 3, 2, 2) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1) + torch.tensor([0.0, 1.0, -2.0]).view(1, 3, 1, 1)
    stats = chunk_stats(x, pooling, groups)
    reference = brute_force(x, pooling, groups)
    assert stats.statistics == len(reference)
    assert stats.elements == len(reference[0][0])
    for k, (values, channels) in enumerate(reference):
        t = torch.tensor(values, dtype=torch.float64)
        assert float(stats.mean[k]) == pytest.approx(float(t.mean()), abs=1e-12)
        assert float(stats.std[k]) == pytest.approx(float(t.std(unbiased=False)), abs=1e-12)
        between, total = anova(values, channels)
        assert float(stats.between[k]) == pytest.approx(between, abs=1e-9)
        assert float(stats.total[k]) == pytest.approx(total, abs=1e-9)
    assert stats.mixes_channels == any(len(set(ch)) > 1 for _, ch in reference)


def test_known_confusion_for_channels_with_different_means() -> None:
    # two channels, each constant within itself at -1 and +1 (and then +-1 noise-free spread):
    # channel 0 holds {0, 2} (mean 1), channel 1 holds {-2, 0} (mean -1); pooled: between 2*1 + 2*1 = 4, total 4+4 = 8
    x = torch.tensor([[[[0.0, 2.0]], [[-2.0, 0.0]]]])  # (N=1, C=2, H=1, W=2)
    ln = chunk_stats(x, PER_SAMPLE, 1)
    assert ln.elements == 4
    assert confusion(ln) == pytest.approx(0.5)
    # channels with means 0 and 3, both with variance 1: between/total = 2.25 / (2.25 + 1) per element
    a = torch.tensor([-1.0, 1.0, -1.0, 1.0])
    x = torch.stack([a, a + 3]).view(1, 2, 2, 2)
    assert confusion(chunk_stats(x, PER_SAMPLE, 1)) == pytest.approx(2.25 / 3.25)
    assert confusion(chunk_stats(x.repeat(4, 1, 1, 1), BATCH_GROUPS, 1)) == pytest.approx(2.25 / 3.25)


def test_confusion_is_zero_for_identically_distributed_channels() -> None:
    values = torch.randn(64)
    x = torch.stack([values, values.flip(0), values.roll(5), values.roll(17)]).view(1, 4, 8, 8)  # same values
    for pooling, groups in ((PER_SAMPLE, 1), (BATCH_GROUPS, 1), (BATCH_GROUPS, 2), (SAMPLE_GROUPS, 2)):
        assert confusion(chunk_stats(x.repeat(2, 1, 1, 1), pooling, groups)) == pytest.approx(0.0, abs=1e-12)
    # PN: every position holds a permutation of the same four values, so each channel's mean over positions is equal
    base = torch.tensor([1.0, -2.0, 0.5, 3.0])
    columns = torch.stack([base.roll(k) for k in range(4)], dim=1)  # (C=4, P=4); each row is every value once
    pn = chunk_stats(columns.view(1, 4, 2, 2), PER_POSITION, 1)
    assert pn.one_per_channel and pn.elements == 4
    assert confusion(pn) == pytest.approx(0.0, abs=1e-12)


def test_position_confusion_is_the_channel_term_of_a_two_way_anova() -> None:
    # channel means 0 and 2 at every position, positions differ by an offset: all within-position spread is channel
    offsets = torch.tensor([0.0, 5.0, -3.0])
    x = torch.stack([offsets, offsets + 2]).view(1, 2, 1, 3)
    assert confusion(chunk_stats(x, PER_POSITION, 1)) == pytest.approx(1.0)
    # add noise orthogonal to both effects: channel share = channel SS / (channel SS + residual SS)
    residual = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]])
    y = (x.view(2, 3) + residual).view(1, 2, 1, 3)
    channel_ss = 3 * (1.0 + 1.0)  # three positions, channel means -1/+1 around the position mean
    assert confusion(chunk_stats(y, PER_POSITION, 1)) == pytest.approx(channel_ss / (channel_ss + float(residual.pow(2).sum())))


def test_noise_is_zero_when_every_chunk_equals_the_population() -> None:
    chunk = torch.randn(4, 3, 5, 5)
    stats = [chunk_stats(chunk, PER_CHANNEL_BATCH, 3) for _ in range(3)]
    means, stds = torch.stack([s.mean for s in stats]), torch.stack([s.std for s in stats])
    pop_mean, pop_std = pooled_population(means, stds)
    assert noise(means, stds, pop_mean, pop_std)[:2] == (pytest.approx(0.0, abs=1e-12), pytest.approx(0.0, abs=1e-12))


def test_noise_against_hand_computed_chunks() -> None:
    # one statistic; chunk A = {0, 2} (mean 1, std 1), chunk B = {4, 6} (mean 5, std 1); population {0,2,4,6}:
    # mean 3, std sqrt(5). Errors: mean |1-3|/sqrt5 = |5-3|/sqrt5 = 2/sqrt5; std |1-sqrt5|/sqrt5 for both.
    a = chunk_stats(torch.tensor([0.0, 2.0]).view(2, 1, 1, 1), PER_CHANNEL_BATCH, 1)
    b = chunk_stats(torch.tensor([4.0, 6.0]).view(2, 1, 1, 1), PER_CHANNEL_BATCH, 1)
    means, stds = torch.stack([a.mean, b.mean]), torch.stack([a.std, b.std])
    pop_mean, pop_std = pooled_population(means, stds)
    assert float(pop_mean) == pytest.approx(3.0) and float(pop_std) == pytest.approx(math.sqrt(5))
    nm, ns, skipped = noise(means, stds, pop_mean, pop_std)
    assert nm == pytest.approx(2 / math.sqrt(5))
    assert ns == pytest.approx(abs(1 - math.sqrt(5)) / math.sqrt(5))
    assert skipped == 0
    # a constant statistic has no scale: left out and counted
    const = torch.zeros(2, 1)
    assert noise(const, const, const[0], const[0])[2] == 1


@pytest.mark.parametrize("spec,expected", [
    ("bn", 8 * 7 * 7),  # N*H*W per channel
    ("bgn:num_groups=1", 8 * 16 * 7 * 7),  # N*C*H*W / G
    ("bgn:num_groups=4", 8 * 16 * 7 * 7 // 4),
    ("bgn:num_groups=98", 8 * 16 * 7 * 7 // 98),  # G > C: groups inside channels
    ("ln", 16 * 7 * 7),  # C*H*W per sample
    ("gn:num_groups=4", 16 * 7 * 7 // 4),
    ("in", 7 * 7),
    ("pn", 16),  # C per sample and position
])
def test_elements_per_statistic_of_the_registry_layers(spec: str, expected: int) -> None:
    layer = create_norm(spec, 16)
    ((_, module, resolved),) = list(find_norm_layers(layer))
    x = torch.randn(8, 16, 7, 7)
    (pooling,) = resolved.entry.pooling
    stats = chunk_stats(x, pooling, pooling_groups(pooling, module, 16))
    assert stats.elements == expected


def test_geometric_mean() -> None:
    assert geometric_mean([1.0, 100.0]) == pytest.approx(10.0)
    assert math.isnan(geometric_mean([]))
