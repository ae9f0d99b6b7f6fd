"""How does a norm differ from the reference norm? The test that fits how the two cells' runs were made.

Runs of two norms with the same seed share their data order (and the items they
are scored on), so the comparison is made at the level that varies between
trained models, never over the test items of one model: 600 episodes of one
network are 600 looks at *one* training outcome, and a test over them would
call almost any difference significant. Pairing is checked, not assumed: two
runs pair only when their ``train_order_hash`` agree (the run side hashes the
first epoch's batches), and item by item only when their outcome files name
the same item list.

Every test is **two-sided** and comes with the difference (norm minus
reference, raw units) and its 95% confidence interval, so the interval and the
p-value always agree (docs/reporting.md says why). The choice, in this order:

1. **Hierarchical bootstrap** over seeds and, within each seed, over the shared
   items: paired seeds whose outcome files describe the same items, at least
   :data:`MIN_SEEDS_FOR_BOOTSTRAP` of them. With fewer top-level units the
   resampling distribution over seeds is too coarse to trust (three seeds give
   only ten distinct resamples).
2. **Paired t-test over seeds** (``scipy.stats.ttest_rel``) on the paired seeds
   both cells share, at least :data:`MIN_SEEDS_FOR_TEST`. Chosen over Wilcoxon's
   signed-rank test because with 3-4 pairs the signed-rank test cannot reach
   p < 0.05 at all (its smallest two-sided p is 2/2^n).
3. **Welch's t-test over seeds** where the runs cannot be paired (train orders
   differ, or too few seeds in common) but each cell has at least
   :data:`MIN_SEEDS_FOR_TEST`; the reason is kept in ``fallback``.
4. No test otherwise (in particular with one seed: n=1 claims nothing).

The p-value here is per comparison; :mod:`reports.family` adjusts it (Holm)
over the family it belongs to, and only the adjusted value makes a star.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy import stats as _scipy_stats

from .outcomes import ItemOutcomes, pairing_problem

ALPHA = 0.05
CONFIDENCE = 0.95
MIN_SEEDS_FOR_TEST = 3
MIN_SEEDS_FOR_BOOTSTRAP = 5
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed, so a report is reproducible to the digit
_ROUNDING = 1e-12  # differences closer than this (relative) are equal: float noise is no evidence
_MAX_DRAWS = 2_000_000  # item indices drawn at once (bounds memory)
_MULTINOMIAL_MAX_LEVELS = 256  # per-item differences with few distinct values resample as counts

PAIRED_T = "paired t-test over seeds"
WELCH = "Welch's t-test over seeds"
BOOTSTRAP = "hierarchical bootstrap over seeds and shared test items"
TESTS = (BOOTSTRAP, PAIRED_T, WELCH)  # the order captions list them in


@dataclass(frozen=True)
class Comparison:
    """One cell against the reference norm's cell of the same column.

    `test` is one of TESTS, or "" when no test was made (`reason` says why). `diff`
    is norm minus reference in raw units (the mean paired difference where paired),
    `ci_low`/`ci_high` its two-sided 95% interval, `p_value` the two-sided p before
    any correction; `p_adjusted`, `family` and `family_size` are filled in by
    :func:`reports.family.adjust`. `fallback` says why a finer test was not used
    (train orders that differ, outcome files that do not match) and `pairing` how
    the seeds were paired ("verified", "unverified: ..." for old records, "" unpaired).
    """

    test: str = ""
    p_value: float | None = None
    n: int = 0
    reason: str = ""
    notes: tuple[str, ...] = ()
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    paired: bool = False
    pairing: str = ""
    fallback: str = ""
    reference: str = "bn"
    p_adjusted: float | None = None
    family: str = ""
    family_size: int = 0
    correction: str = ""

    @property
    def made(self) -> bool:
        return bool(self.test) and self.p_value is not None

    @property
    def significant(self) -> bool:
        """Adjusted p below ALPHA with at least MIN_SEEDS_FOR_TEST seeds (never from the raw p)."""
        return self.made and self.n >= MIN_SEEDS_FOR_TEST and self.p_adjusted is not None and self.p_adjusted < ALPHA

    def better(self, mode: str) -> bool:
        """Significant, and the difference points the metric's better way ("max" or "min")."""
        return self.significant and self.diff is not None and (self.diff > 0 if mode == "max" else self.diff < 0)


def _finite(p: float) -> float | None:
    return p if math.isfinite(p) else None


def _t_interval(estimate: float, se: float, df: float) -> tuple[float, float]:
    t = float(_scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df))
    return estimate - t * se, estimate + t * se


def paired_t(values: list[float], reference: list[float]) -> tuple[float, float, float, float | None]:
    """(mean difference, CI low, CI high, two-sided p) of a paired t-test; p None for constant differences."""
    differences = [a - b for a, b in zip(values, reference)]
    mean = statistics.fmean(differences)
    if max(differences) - min(differences) <= _ROUNDING * max(1.0, max(map(abs, differences))):
        return mean, mean, mean, None  # constant differences: the t statistic is not defined
    low, high = _t_interval(mean, statistics.stdev(differences) / math.sqrt(len(differences)), len(differences) - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(_scipy_stats.ttest_rel(values, reference).pvalue)
    return mean, low, high, _finite(p)


def welch(values: list[float], reference: list[float]) -> tuple[float, float, float, float | None] | None:
    """(difference of means, CI low, CI high, two-sided p) of Welch's t-test; None when both are constant."""
    va, vb = statistics.variance(values), statistics.variance(reference)
    diff = statistics.fmean(values) - statistics.fmean(reference)
    if va == 0 and vb == 0:
        return None
    sa, sb = va / len(values), vb / len(reference)
    df = (sa + sb) ** 2 / (sa ** 2 / (len(values) - 1) + sb ** 2 / (len(reference) - 1))
    low, high = _t_interval(diff, math.sqrt(sa + sb), df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(_scipy_stats.ttest_ind(values, reference, equal_var=False).pvalue)
    return diff, low, high, _finite(p)


def welch_p_value(values: tuple[float, ...], reference: tuple[float, ...]) -> float | None:
    """Two-sided Welch p-value; None with fewer than MIN_SEEDS_FOR_TEST values a side or both constant."""
    if len(values) < MIN_SEEDS_FOR_TEST or len(reference) < MIN_SEEDS_FOR_TEST:
        return None
    result = welch(list(values), list(reference))
    return None if result is None else result[3]


def _seed_means(d: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` bootstrap means of the items `d` (resampled with replacement, all of size d.size)."""
    levels, counts = np.unique(d, return_counts=True)
    if levels.size <= _MULTINOMIAL_MAX_LEVELS:  # e.g. binary outcomes: differences in {-1, 0, 1}
        return rng.multinomial(d.size, counts / d.size, size=count) @ levels / d.size
    out = np.empty(count)
    step = max(1, _MAX_DRAWS // d.size)
    for start in range(0, count, step):
        size = min(step, count - start)
        out[start:start + size] = d[rng.integers(0, d.size, size=(size, d.size))].mean(axis=1)
    return out


def bootstrap_differences(differences: list[np.ndarray], resamples: int = BOOTSTRAP_RESAMPLES,
                          seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """Bootstrap distribution of the mean paired difference, resampling seeds then items.

    `differences[s]` holds, for seed s, the per-item differences (norm minus
    reference) on the shared items. Each resample draws len(differences) seeds
    with replacement and, for every drawn seed independently, its items with
    replacement; the statistic is the mean over drawn seeds of the mean over drawn items.
    """
    rng = np.random.default_rng(seed)
    n_seeds = len(differences)
    picked = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    seed_means = np.empty((resamples, n_seeds))
    for s, d in enumerate(differences):
        slots = picked == s  # every draw of seed s resamples its items anew
        count = int(np.count_nonzero(slots))
        if count:
            seed_means[slots] = _seed_means(np.asarray(d, dtype=float), count, rng)
    return seed_means.mean(axis=1)


def bootstrap_test(differences: list[np.ndarray], resamples: int = BOOTSTRAP_RESAMPLES
                   ) -> tuple[float, float, float, float]:
    """(mean difference, percentile 95% CI low, high, two-sided p) of the hierarchical bootstrap.

    p = min(1, 2 * (1 + #{resamples on the smaller side of 0}) / (1 + resamples)): never 0.
    """
    boot = bootstrap_differences(differences, resamples)
    estimate = float(statistics.fmean(float(np.mean(d)) for d in differences))
    tail = min(np.count_nonzero(boot <= 0), np.count_nonzero(boot >= 0))
    low, high = np.quantile(boot, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return estimate, float(low), float(high), min(1.0, 2 * (1 + int(tail)) / (1 + resamples))


def pairing_of(seeds: list[int], orders: Mapping[int, str | None],
               reference_orders: Mapping[int, str | None]) -> tuple[bool, str]:
    """(paired?, how or why not) for the common seeds, from the runs' train-order hashes."""
    differ = [s for s in seeds if orders.get(s) != reference_orders.get(s)]
    if differ:
        return False, (f"train_order_hash differs at seed{'s' if len(differ) > 1 else ''} "
                       f"{', '.join(map(str, differ))} (the runs did not see the same batches): not paired")
    if all(orders.get(s) is None for s in seeds):
        return True, "unverified: the records carry no train_order_hash (paired by seed)"
    return True, "verified"


def _items_problem(seeds: list[int], items: Mapping[int, ItemOutcomes],
                   reference_items: Mapping[int, ItemOutcomes]) -> str:
    """Why the item-level bootstrap cannot run on these paired seeds ("" when it can)."""
    if not items and not reference_items:
        return ""
    lacking = [s for s in seeds if s not in items or s not in reference_items]
    if lacking:
        return f"no usable outcome file at seed{'s' if len(lacking) > 1 else ''} {', '.join(map(str, lacking))}"
    return next((p for s in seeds if (p := pairing_problem(items[s], reference_items[s])) is not None), "")


def compare_with_reference(values: Mapping[int, float], reference: Mapping[int, float],
                           orders: Mapping[int, str | None] | None = None,
                           reference_orders: Mapping[int, str | None] | None = None,
                           items: Mapping[int, ItemOutcomes] | None = None,
                           reference_items: Mapping[int, ItemOutcomes] | None = None) -> Comparison:
    """Compare a cell (finished values by seed) with the reference cell of the same column.

    `orders` are the runs' train-order hashes by seed (None or absent for old
    records), `items` their per-item outcomes by seed where usable.
    """
    orders, reference_orders = orders or {}, reference_orders or {}
    items, reference_items = items or {}, reference_items or {}
    common = sorted(set(values) & set(reference))
    paired, pairing = pairing_of(common, orders, reference_orders) if common else (False, "")
    fallback = "" if paired else pairing
    if paired and len(common) >= MIN_SEEDS_FOR_TEST:
        problem = _items_problem(common, items, reference_items)
        if items and reference_items and not problem and len(common) >= MIN_SEEDS_FOR_BOOTSTRAP:
            diffs = [items[s].values - reference_items[s].values for s in common]
            diff, low, high, p = bootstrap_test(diffs)
            return Comparison(BOOTSTRAP, p, len(common), diff=diff, ci_low=low, ci_high=high, paired=True,
                              pairing=pairing)
        if items and reference_items and not problem:
            problem = f"item-level bootstrap needs ≥ {MIN_SEEDS_FOR_BOOTSTRAP} paired seeds, has {len(common)}"
        diff, low, high, p = paired_t([values[s] for s in common], [reference[s] for s in common])
        if p is None:
            return Comparison(reason="paired differences are constant: the t statistic is undefined", n=len(common),
                              diff=diff, paired=True, pairing=pairing, fallback=problem)
        return Comparison(PAIRED_T, p, len(common), diff=diff, ci_low=low, ci_high=high, paired=True,
                          pairing=pairing, fallback=problem)
    if paired and common:
        fallback = f"only {len(common)} seed{'s' if len(common) > 1 else ''} in common: not paired"
    if len(values) >= MIN_SEEDS_FOR_TEST and len(reference) >= MIN_SEEDS_FOR_TEST:
        result = welch(list(values.values()), list(reference.values()))
        if result is None or result[3] is None:
            return Comparison(reason="both cells are constant: the t statistic is undefined", fallback=fallback)
        diff, low, high, p = result
        return Comparison(WELCH, p, min(len(values), len(reference)), diff=diff, ci_low=low, ci_high=high,
                          fallback=fallback)
    fewest = min(len(values), len(reference))
    diff = statistics.fmean(values.values()) - statistics.fmean(reference.values()) if fewest else None
    return Comparison(reason=f"n={fewest}: fewer than {MIN_SEEDS_FOR_TEST} finished seeds", n=fewest, diff=diff,
                      fallback=fallback)


STAR_LEVELS = ((0.001, "***"), (0.01, "**"), (ALPHA, "*"))


def stars(comparison: Comparison | None) -> str:
    """Stars from the Holm-adjusted p only, and only with at least MIN_SEEDS_FOR_TEST seeds."""
    if comparison is None or not comparison.significant:
        return ""
    assert comparison.p_adjusted is not None
    return next(mark for level, mark in STAR_LEVELS if comparison.p_adjusted < level)


def tests_sentence(used: set[str]) -> str:
    """The caption's words for the tests a table used, in TESTS order."""
    words = {
        BOOTSTRAP: f"{BOOTSTRAP} ({BOOTSTRAP_RESAMPLES:,} resamples, ≥ {MIN_SEEDS_FOR_BOOTSTRAP} paired seeds "
                   "scored on the same items)",
        PAIRED_T: f"{PAIRED_T} (seeds whose runs saw the same batches; ≥ {MIN_SEEDS_FOR_TEST} in common)",
        WELCH: f"{WELCH} (runs not paired; ≥ {MIN_SEEDS_FOR_TEST} in each cell)",
    }
    return "; ".join(words[t] for t in TESTS if t in used)
