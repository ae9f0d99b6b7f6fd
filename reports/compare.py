"""Is a norm better than BN? The test that fits how the two cells' runs were made.

Runs of two norms with the same seed share their data order (and, in few-shot
learning, their test episodes), so the comparison is made at the level that
varies between trained models, never over the test images or episodes of one
model: 600 episodes of one network are 600 looks at *one* training outcome, and
a t-test over them would call almost any difference significant.

The choice, in this order (all one-sided, in the metric's declared better
direction, alpha 0.05):

1. **Hierarchical bootstrap** over seeds and, within each seed, over the shared
   test episodes: where both cells have per-episode files that describe the
   same episodes (checked by their SHA-256) for at least
   :data:`MIN_SEEDS_FOR_BOOTSTRAP` common seeds. With fewer top-level units the
   resampling distribution over seeds is too coarse to trust (three seeds give
   only ten distinct resamples; one bad seed of three still yields p = 1/27).
2. **Paired t-test over seeds** (``scipy.stats.ttest_rel``) on the seeds both
   cells share, at least :data:`MIN_SEEDS_FOR_TEST`. Chosen over Wilcoxon's
   signed-rank test because with 3-4 pairs the signed-rank test cannot reach
   p < 0.05 at all (its smallest one-sided p is 1/2^n); the t-test's assumption
   (differences roughly normal) is mild for accuracies averaged over many test
   images.
3. **Welch's t-test over seeds** (``scipy.stats.ttest_ind(equal_var=False)``)
   where the cells share fewer seeds but each has at least
   :data:`MIN_SEEDS_FOR_TEST` (pairing is impossible).
4. No test otherwise (in particular with one seed: n=1 claims nothing).
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy import stats as _scipy_stats

from .episodes import EpisodeSet, pairing_problem

ALPHA = 0.05
MIN_SEEDS_FOR_TEST = 3
MIN_SEEDS_FOR_BOOTSTRAP = 5
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed, so a report is reproducible to the digit
_ROUNDING = 1e-12  # differences closer than this (relative) are equal: float noise is no evidence
_CHUNK = 500  # bootstrap resamples drawn at once (bounds memory: chunk x seeds x episodes indices)

PAIRED_T = "paired t-test over seeds"
WELCH = "Welch's t-test over seeds"
BOOTSTRAP = "hierarchical bootstrap over seeds and shared test episodes"
TESTS = (BOOTSTRAP, PAIRED_T, WELCH)  # the order captions list them in


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one cell with BN's cell of the same column.

    `test` is one of TESTS, or "" when no test was made (`reason` says why);
    `n` is the number of seeds the test used (pairs for paired tests).
    """

    test: str = ""
    p_value: float | None = None
    n: int = 0
    reason: str = ""
    notes: tuple[str, ...] = ()  # e.g. why episode pairing was refused

    @property
    def made(self) -> bool:
        return bool(self.test) and self.p_value is not None

    def significant(self, better_mean: bool) -> bool:
        return self.made and better_mean and self.p_value < ALPHA  # type: ignore[operator]


def _alternative(mode: str) -> str:
    return "greater" if mode == "max" else "less"


def _finite(p: float) -> float | None:
    return p if math.isfinite(p) else None


def welch_p_value(values: tuple[float, ...], reference: tuple[float, ...], mode: str) -> float | None:
    """One-sided Welch's t-test p-value that `values` are better than `reference`.

    None when either side has fewer than MIN_SEEDS_FOR_TEST values or the test is
    undefined (both samples constant).
    """
    if len(values) < MIN_SEEDS_FOR_TEST or len(reference) < MIN_SEEDS_FOR_TEST:
        return None
    if statistics.pvariance(values) == 0 and statistics.pvariance(reference) == 0:
        return None  # zero standard error: the t statistic is not defined
    with warnings.catch_warnings():
        # nearly identical samples trigger a precision warning; the p-value is still usable
        warnings.simplefilter("ignore", RuntimeWarning)
        result = _scipy_stats.ttest_ind(values, reference, equal_var=False, alternative=_alternative(mode))
    return _finite(float(result.pvalue))


def paired_t_p_value(values: list[float], reference: list[float], mode: str) -> float | None:
    """One-sided paired t-test p-value (`values[i]` pairs with `reference[i]`); None when undefined."""
    if len(values) < MIN_SEEDS_FOR_TEST:
        return None
    differences = [a - b for a, b in zip(values, reference)]
    if max(differences) - min(differences) <= _ROUNDING * max(1.0, max(map(abs, differences))):
        return None  # constant differences (up to float rounding): the t statistic is not defined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = _scipy_stats.ttest_rel(values, reference, alternative=_alternative(mode))
    return _finite(float(result.pvalue))


def bootstrap_differences(differences: list[np.ndarray], resamples: int = BOOTSTRAP_RESAMPLES,
                          seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """Bootstrap distribution of the mean paired difference, resampling seeds then episodes.

    `differences[s]` holds, for seed s, the per-episode differences (norm minus
    BN) on the shared episodes. Each resample draws len(differences) seeds with
    replacement and, for every drawn seed independently, its episodes with
    replacement; the statistic is the mean over drawn seeds of the mean over
    drawn episodes.
    """
    rng = np.random.default_rng(seed)
    n_seeds = len(differences)
    out = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        picked = rng.integers(0, n_seeds, size=(size, n_seeds))
        seed_means = np.empty((size, n_seeds))
        for s, d in enumerate(differences):
            slots = picked == s  # every draw of seed s resamples its episodes anew
            count = int(np.count_nonzero(slots))
            if count:
                seed_means[slots] = d[rng.integers(0, d.size, size=(count, d.size))].mean(axis=1)
        out[start:start + size] = seed_means.mean(axis=1)
    return out


def bootstrap_p_value(differences: list[np.ndarray], mode: str, resamples: int = BOOTSTRAP_RESAMPLES) -> float:
    """One-sided bootstrap p-value: the share of resampled mean differences not on the better side of 0.

    With the usual +1 correction, (1 + #{not better}) / (1 + resamples), so it is never 0.
    """
    boot = bootstrap_differences(differences, resamples)
    worse = np.count_nonzero(boot <= 0) if mode == "max" else np.count_nonzero(boot >= 0)
    return float((1 + worse) / (1 + resamples))


def _episode_comparison(seeds: list[int], episodes: Mapping[int, EpisodeSet], bn_episodes: Mapping[int, EpisodeSet],
                        mode: str) -> tuple[Comparison | None, tuple[str, ...]]:
    """The bootstrap when every common seed has pairable episode files; else (None, why not)."""
    missing = [s for s in seeds if s not in episodes or s not in bn_episodes]
    if missing:
        return None, ()
    problems = tuple(p for s in seeds if (p := pairing_problem(episodes[s], bn_episodes[s])) is not None)
    if problems:
        return None, problems
    if len(seeds) < MIN_SEEDS_FOR_BOOTSTRAP:
        return None, ()
    differences = [episodes[s].accuracies - bn_episodes[s].accuracies for s in seeds]
    return Comparison(BOOTSTRAP, bootstrap_p_value(differences, mode), len(seeds)), ()


def compare_with_bn(values: Mapping[int, float], bn_values: Mapping[int, float], mode: str,
                    episodes: Mapping[int, EpisodeSet] | None = None,
                    bn_episodes: Mapping[int, EpisodeSet] | None = None) -> Comparison:
    """Compare a cell (finished values by seed) with BN's cell of the same column.

    `episodes`/`bn_episodes` (by seed) are the per-episode accuracies where the
    runs wrote them (few-shot). Episode files that do not describe the same
    episodes (another hash, other episode numbers) are never paired: their
    seeds are then compared by Welch's test, and the reason is kept in `notes`.
    """
    common = sorted(set(values) & set(bn_values))
    notes: tuple[str, ...] = ()
    if episodes and bn_episodes and len(common) >= MIN_SEEDS_FOR_TEST:
        comparison, notes = _episode_comparison(common, episodes, bn_episodes, mode)
        if comparison is not None:
            return comparison
    if len(common) >= MIN_SEEDS_FOR_TEST and not notes:
        p = paired_t_p_value([values[s] for s in common], [bn_values[s] for s in common], mode)
        if p is None:
            return Comparison(reason="paired differences are constant: the t statistic is undefined", n=len(common))
        return Comparison(PAIRED_T, p, len(common))
    if len(values) >= MIN_SEEDS_FOR_TEST and len(bn_values) >= MIN_SEEDS_FOR_TEST:
        p = welch_p_value(tuple(values.values()), tuple(bn_values.values()), mode)
        if p is None:
            return Comparison(reason="both cells are constant: the t statistic is undefined", notes=notes)
        return Comparison(WELCH, p, min(len(values), len(bn_values)), notes=notes)
    fewest = min(len(values), len(bn_values))
    return Comparison(reason=f"n={fewest}: fewer than {MIN_SEEDS_FOR_TEST} finished seeds", n=fewest, notes=notes)


def tests_sentence(used: set[str]) -> str:
    """The caption's words for the tests a table used, in TESTS order."""
    words = {
        BOOTSTRAP: f"{BOOTSTRAP} ({BOOTSTRAP_RESAMPLES:,} resamples, ≥ {MIN_SEEDS_FOR_BOOTSTRAP} common "
                   "seeds with matching episode files)",
        PAIRED_T: f"{PAIRED_T} (runs with the same seed share their data order; ≥ {MIN_SEEDS_FOR_TEST} "
                  "seeds in common)",
        WELCH: f"{WELCH} (fewer seeds in common, ≥ {MIN_SEEDS_FOR_TEST} in each cell)",
    }
    return "; ".join(words[t] for t in TESTS if t in used)
