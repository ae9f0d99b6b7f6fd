"""Aggregation over seeds and the two-sided tests against BN (with 95% CIs, Holm-adjusted): paired t over
shared seeds, else Welch; golden values from scipy."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from report_records import declare
from scipy import stats as scipy_stats

from reports.collect import collect_runs
from reports.stats import aggregate, welch_p_value


def _cells(root: Path) -> dict[tuple[str, int], object]:
    cells = aggregate(collect_runs(root).records)
    return {(c.norm, c.batch_size): c for c in cells if c.metric == "test/acc"}


def test_cell_statistics(golden_runs: Path) -> None:
    cells = _cells(golden_runs)
    gn = cells[("gn:num_groups=32", 2)]
    assert gn.n == 3 and gn.n_failed == 0 and gn.n_diverged == 0
    assert gn.mean == pytest.approx((0.705 + 0.695 + 0.720) / 3)
    assert gn.std == pytest.approx(0.0125830573921, rel=1e-9)  # sample std, ddof=1
    partial = cells[("gn:num_groups=32", 16)]
    assert (partial.n, partial.n_failed, partial.values) == (2, 1, (0.88, 0.89))
    failed = cells[("ln", 2)]
    assert (failed.n, failed.n_failed, failed.mean, failed.std) == (0, 3, None, None)
    assert cells[("ln", 16)].n_diverged == 3
    assert ("in", 16) not in cells  # never run


def test_single_seed_has_no_std(tmp_path: Path, write_record) -> None:
    write_record("bn", 2, 0, acc=0.5)
    (cell,) = aggregate(collect_runs(tmp_path / "runs").records)
    assert cell.n == 1 and cell.mean == 0.5 and cell.std is None


def test_p_value_matches_scipy_and_marks_only_significant(golden_runs: Path, golden_grid) -> None:
    GOLDEN_GRID = golden_grid  # noqa: N806
    cells = _cells(golden_runs)
    bn2, bn16 = GOLDEN_GRID[("bn", 2)], GOLDEN_GRID[("bn", 16)]
    best = cells[("bgn:num_groups=1", 2)]
    # seeds 0, 1, 2 on both sides: paired by seed
    bgn = GOLDEN_GRID[("bgn:num_groups=1", 2)]
    expected = scipy_stats.ttest_rel(bgn, bn2)
    assert best.p_vs_bn == pytest.approx(expected.pvalue, rel=1e-12) and best.test == "paired t-test over seeds"
    ci = expected.confidence_interval(0.95)  # scipy's interval of the mean paired difference
    assert (best.diff, best.ci_low, best.ci_high) == pytest.approx((0.10, ci.low, ci.high), rel=1e-9)
    assert best.paired and best.comparison.pairing.startswith("unverified")  # no train_order_hash in these records
    # Holm over the table's 5 tests (IN, GN, BGN G=1 at bs=2; BGN G=1, G=4 at bs=16): the smallest p times 5
    assert best.family_size == 5 and best.p_adjusted == pytest.approx(5 * expected.pvalue, rel=1e-9)
    assert best.p_vs_bn < 0.05 and best.p_adjusted > 0.05 and not best.beats_bn and best.stars == ""
    # Clearly better but only two seeds: not tested.
    two_seeds = cells[("bgn:num_groups=4", 2)]
    assert two_seeds.p_vs_bn is None and not two_seeds.beats_bn
    # Better mean, three seeds, not significant.
    close = cells[("bgn:num_groups=4", 16)]
    expected = scipy_stats.ttest_rel(GOLDEN_GRID[("bgn:num_groups=4", 16)], bn16).pvalue
    assert close.p_vs_bn == pytest.approx(expected, rel=1e-12)
    assert 0.05 < close.p_vs_bn and not close.beats_bn
    # Worse than BN: a negative difference, never "better"
    worse = cells[("in", 2)]
    assert worse.diff == pytest.approx(-0.05) and worse.ci_high < 0 and not worse.beats_bn
    # BN itself and cells with a partly failed side are not tested.
    assert cells[("bn", 2)].p_vs_bn is None
    assert cells[("gn:num_groups=32", 16)].p_vs_bn is None


def test_min_mode_tests_the_lower_direction(tmp_path: Path, write_record) -> None:
    loss = declare("test/loss", "test loss", direction="min", unit="", primary=True)
    for seed, (bn, gn) in enumerate([(0.50, 0.30), (0.52, 0.31), (0.51, 0.29)]):
        write_record("bn", 2, seed, acc=None, metric_declarations=[loss], **{"test/loss": bn})
        write_record("gn:num_groups=32", 2, seed, acc=None, metric_declarations=[loss], **{"test/loss": gn})
    cells = {c.norm: c for c in aggregate(collect_runs(tmp_path / "runs").records)}
    gn = cells["gn:num_groups=32"]
    expected = scipy_stats.ttest_rel([0.30, 0.31, 0.29], [0.50, 0.52, 0.51]).pvalue
    assert gn.mode == "min" and gn.p_vs_bn == pytest.approx(expected) and gn.beats_bn and gn.stars == "***"
    assert gn.p_adjusted == gn.p_vs_bn and gn.family_size == 1  # alone in its table: Holm changes nothing


def test_direction_comes_from_the_declaration_not_the_name(tmp_path: Path, write_record) -> None:
    # A name that once meant "minimise" (loss), declared max: the declaration wins.
    odd = declare("test/loss_margin", "loss margin", direction="max", unit="", primary=True)
    for seed, (bn, gn) in enumerate([(0.50, 0.30), (0.52, 0.31), (0.51, 0.29)]):
        write_record("bn", 2, seed, acc=None, metric_declarations=[odd], **{"test/loss_margin": bn})
        write_record("gn:num_groups=32", 2, seed, acc=None, metric_declarations=[odd], **{"test/loss_margin": gn})
    cells = {c.norm: c for c in aggregate(collect_runs(tmp_path / "runs").records)}
    gn = cells["gn:num_groups=32"]
    # significantly different (two-sided), but lower where higher is better: no "better" mark
    assert gn.mode == "max" and gn.p_adjusted < 0.001 and gn.stars == "***" and gn.diff < 0 and not gn.beats_bn


def test_interval_metric_half_width(tmp_path: Path, write_record) -> None:
    acc = declare("test/acc", "mean episode accuracy", primary=True, interval="test/acc_ci95")
    for seed, (value, ci) in enumerate([(0.60, 0.010), (0.62, 0.012), (0.64, 0.011)]):
        write_record("bn", 2, seed, acc=value, metric_declarations=[acc], **{"test/acc_ci95": ci})
    write_record("ln", 2, 0, acc=0.5, metric_declarations=[acc], **{"test/acc_ci95": 0.013})
    cells = {c.norm: c for c in aggregate(collect_runs(tmp_path / "runs").records)}
    # Three seeds: Student's t over seeds, t_{0.975,2} * s / sqrt(3) = 4.302653 * 0.02 / 1.732051.
    assert cells["bn"].half_width == pytest.approx(4.302652729911275 * 0.02 / math.sqrt(3), rel=1e-9)
    assert cells["bn"].spread == cells["bn"].half_width and cells["bn"].std == pytest.approx(0.02)
    # One seed: the run's own interval over test episodes.
    assert cells["ln"].half_width == 0.013 and cells["ln"].spread == 0.013 and cells["ln"].std is None


def test_only_exact_bn_spec_is_the_reference(tmp_path: Path, write_record) -> None:
    for seed, acc in enumerate([0.1, 0.11, 0.12]):
        write_record("bgn:num_groups=1", 2, seed, acc=acc + 0.5)
        write_record("bn", 2, seed, acc=acc, norm="bn:momentum=0.01", norm_label="BN (m=0.01)")
    cells = aggregate(collect_runs(tmp_path / "runs").records)
    assert all(c.p_vs_bn is None for c in cells)


def test_welch_needs_three_seeds_each() -> None:
    assert welch_p_value((0.9, 0.91, 0.92), (0.5, 0.51)) is None
    assert welch_p_value((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) is None  # undefined test
    p = welch_p_value((0.9, 0.91, 0.92), (0.5, 0.51, 0.52))
    assert p is not None and math.isfinite(p) and p < 1e-4


def test_welch_where_the_cells_share_too_few_seeds(tmp_path: Path, write_record) -> None:
    # BN ran seeds 0-2, GN seeds 2-4: one seed in common, so the runs cannot be paired
    for seed, acc in zip((0, 1, 2), (0.50, 0.52, 0.51)):
        write_record("bn", 2, seed, acc=acc)
    for seed, acc in zip((2, 3, 4), (0.60, 0.63, 0.61)):
        write_record("gn:num_groups=32", 2, seed, acc=acc)
    gn = {c.norm: c for c in aggregate(collect_runs(tmp_path / "runs").records)}["gn:num_groups=32"]
    expected = scipy_stats.ttest_ind([0.60, 0.63, 0.61], [0.50, 0.52, 0.51], equal_var=False)
    assert gn.test == "Welch's t-test over seeds" and gn.p_vs_bn == pytest.approx(expected.pvalue, rel=1e-12)
    ci = expected.confidence_interval(0.95)
    assert (gn.ci_low, gn.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9) and not gn.paired
    assert gn.beats_bn and gn.fallback == "only 1 seed in common: not paired"


def test_paired_test_uses_only_the_shared_seeds(tmp_path: Path, write_record) -> None:
    for seed, acc in enumerate((0.50, 0.52, 0.51, 0.40)):
        write_record("bn", 2, seed, acc=acc)
    for seed, acc in enumerate((0.55, 0.56, 0.57)):
        write_record("gn:num_groups=32", 2, seed, acc=acc)
    gn = {c.norm: c for c in aggregate(collect_runs(tmp_path / "runs").records)}["gn:num_groups=32"]
    expected = scipy_stats.ttest_rel([0.55, 0.56, 0.57], [0.50, 0.52, 0.51]).pvalue
    assert gn.test == "paired t-test over seeds" and gn.comparison.n == 3
    assert gn.p_vs_bn == pytest.approx(expected, rel=1e-12)


def test_constant_paired_differences_claim_nothing(tmp_path: Path, write_record) -> None:
    for seed, acc in enumerate((0.50, 0.52, 0.51)):
        write_record("bn", 2, seed, acc=acc)
        write_record("gn:num_groups=32", 2, seed, acc=acc + 0.25)  # exactly +0.25 at every seed
    gn = {c.norm: c for c in aggregate(collect_runs(tmp_path / "runs").records)}["gn:num_groups=32"]
    assert gn.test == "" and gn.p_vs_bn is None and not gn.beats_bn
    assert "constant" in gn.comparison.reason
