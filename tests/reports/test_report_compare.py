"""Comparisons with BN on hand-made per-item outcomes (old few-shot episode files here; outcomes.json in
test_report_outcomes.py): the hierarchical bootstrap, its fallbacks, and the mistake it exists to avoid
(600 episodes of one trained model taken as 600 independent samples)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from five_tasks import episode_file
from report_records import declare, make_record
from scipy import stats as scipy_stats

from reports.collect import collect_runs
from reports.compare import (
    BOOTSTRAP,
    PAIRED_T,
    bootstrap_differences,
    bootstrap_test,
    compare_with_reference,
)
from reports.episodes import episodes_of, read_episode_file
from reports.outcomes import ItemOutcomes
from reports.stats import aggregate
from reports.summary import build_summary

ACC = declare("test/acc", "mean accuracy over the fixed test episodes", primary=True, interval="test/acc_ci95")
SHA = "a" * 64


def _episodes(values, sha: str = SHA) -> ItemOutcomes:
    return ItemOutcomes(Path("x.json"), "test", sha[:16], np.asarray(values, dtype=float))


def _write_run(root: Path, norm: str, seed: int, accuracies: list[float], sha: str = SHA, **extra) -> Path:
    """A few-shot record with its episode file; the record's test/acc is the episodes' mean."""
    mean = sum(accuracies) / len(accuracies)
    fields = {"episode_file": "test_episodes.csv", "test_episodes_sha256": sha, "test/acc_ci95": 0.01, **extra}
    record = make_record(norm, 80, seed, acc=mean, metric_declarations=[ACC], task="fewshot", **fields)
    run = root / "fs" / record["run_id"]
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps(record))
    (run / "test_episodes.csv").write_text(episode_file(accuracies, sha))
    return run


def _difficulty(n: int, seed: int = 0) -> np.ndarray:
    """Per-episode accuracies of a plain model on n fixed episodes (what both norms share)."""
    return np.clip(np.random.default_rng(seed).normal(0.6, 0.12, n), 0.0, 1.0)


# --- the mistake: one trained model per norm, a tiny difference, 600 episodes -------------------------

def test_one_seed_never_claims_a_tiny_difference(tmp_path: Path) -> None:
    base = _difficulty(600)
    noise = np.random.default_rng(1).normal(0, 0.002, 600)
    bn, gn = base, base + 0.003 + noise  # +0.3 points, consistent over the shared episodes
    _write_run(tmp_path, "bn", 0, list(bn))
    _write_run(tmp_path, "gn:num_groups=32", 0, list(gn))
    # Episodes taken as independent samples would call this overwhelmingly significant ...
    naive = scipy_stats.ttest_rel(gn, bn).pvalue
    assert naive < 1e-50
    # ... but both episode sets come from one training run per norm: the reporter claims nothing.
    records = collect_runs(tmp_path).records
    (cell,) = [c for c in aggregate(records) if c.norm == "gn:num_groups=32"]
    assert cell.n == 1 and cell.test == "" and cell.p_vs_bn is None and not cell.beats_bn
    assert "n=1" in cell.comparison.reason
    (summary_cell,) = [row.cells[0] for row in build_summary(records).rows if row.norm == "gn:num_groups=32"]
    assert summary_cell.n == 1 and not summary_cell.beats_bn and not summary_cell.comparison.made


def test_seed_disagreement_is_not_hidden_by_many_episodes() -> None:
    # Five seeds: within each seed the norm beats BN on every episode by that seed's margin, but the
    # margins disagree in sign. Pooling 5 x 600 episodes as independent samples says "significant"; the
    # hierarchical bootstrap sees five training outcomes, two of them worse, and does not.
    margins = [0.010, -0.008, 0.006, -0.009, 0.004]
    bn, other = {}, {}
    for seed, margin in enumerate(margins):
        base = _difficulty(600, seed)
        bn[seed] = _episodes(base)
        other[seed] = _episodes(base + margin + np.random.default_rng(10 + seed).normal(0, 0.001, 600))
    pooled = np.concatenate([other[s].values - bn[s].values for s in bn])
    assert scipy_stats.ttest_1samp(pooled, 0.0).pvalue < 1e-3
    values = {s: other[s].mean for s in other}
    comparison = compare_with_reference(values, {s: bn[s].mean for s in bn}, items=other, reference_items=bn)
    assert comparison.test == BOOTSTRAP and comparison.n == 5 and comparison.paired
    assert comparison.p_value > 0.2 and comparison.ci_low < 0 < comparison.ci_high
    assert comparison.diff == pytest.approx(float(np.mean([other[s].mean - bn[s].mean for s in bn])))


def test_bootstrap_finds_a_difference_every_seed_shows() -> None:
    bn = {s: _episodes(_difficulty(600, s)) for s in range(5)}
    better = {s: _episodes(bn[s].values + 0.02 + np.random.default_rng(s).normal(0, 0.05, 600)) for s in range(5)}
    comparison = compare_with_reference({s: e.mean for s, e in better.items()}, {s: e.mean for s, e in bn.items()},
                                        items=better, reference_items=bn)
    assert comparison.test == BOOTSTRAP and comparison.p_value < 0.01
    assert 0 < comparison.ci_low < comparison.diff < comparison.ci_high  # two-sided 95% percentile interval
    assert comparison.better("max") is False  # not adjusted yet: stars come only from the adjusted p


def test_bootstrap_distribution() -> None:
    # Two seeds whose differences are constant within a seed: the resampled mean is the mean of the
    # drawn seeds' differences, so it takes the values 0.01, 0.02 and 0.03 with probabilities 1/4, 1/2, 1/4.
    boot = bootstrap_differences([np.full(50, 0.01), np.full(50, 0.03)], resamples=20_000)
    values, counts = np.unique(np.round(boot, 12), return_counts=True)
    assert list(values) == pytest.approx([0.01, 0.02, 0.03])
    assert counts / counts.sum() == pytest.approx([0.25, 0.5, 0.25], abs=0.015)
    # Episodes are resampled within each seed: one seed, differences 0 or 1 in equal parts.
    single = bootstrap_differences([np.array([0.0, 1.0] * 50)], resamples=20_000)
    assert single.mean() == pytest.approx(0.5, abs=0.005) and single.std() == pytest.approx(0.05, abs=0.004)
    # fixed seed: the same p-value every time; never exactly 0 (+1 correction, two-sided: doubled)
    diffs = [np.full(10, 0.1)] * 5
    assert bootstrap_test(diffs) == bootstrap_test(diffs) == pytest.approx((0.1, 0.1, 0.1, 2 / 10_001))


def test_binary_outcomes_resample_as_counts() -> None:
    # Differences in {-1, 0, 1} (per test image: right/wrong): resampled by multinomial counts, whose
    # mean and spread equal index resampling's: mean 0.1, std sqrt(var / n) for one seed.
    d = np.array([1.0] * 30 + [0.0] * 50 + [-1.0] * 20)
    boot = bootstrap_differences([d], resamples=20_000)
    assert boot.mean() == pytest.approx(0.1, abs=0.002) and boot.std() == pytest.approx(d.std() / 10, rel=0.03)


def test_three_seeds_with_episode_files_use_the_paired_t_test() -> None:
    bn = {s: _episodes(_difficulty(100, s)) for s in range(3)}
    other = {s: _episodes(bn[s].values + 0.01 * (s + 1)) for s in range(3)}
    values, reference = {s: e.mean for s, e in other.items()}, {s: e.mean for s, e in bn.items()}
    comparison = compare_with_reference(values, reference, items=other, reference_items=bn)
    expected = scipy_stats.ttest_rel([values[s] for s in range(3)], [reference[s] for s in range(3)]).pvalue
    assert comparison.test == PAIRED_T and comparison.p_value == pytest.approx(expected)
    assert comparison.fallback == "item-level bootstrap needs ≥ 5 paired seeds, has 3"


def test_other_episodes_are_never_paired_item_by_item() -> None:
    bn = {s: _episodes(_difficulty(100, s)) for s in range(5)}
    other = {s: _episodes(bn[s].values + 0.01 * (s + 1), sha="b" * 64) for s in range(5)}
    values, reference = {s: e.mean for s, e in other.items()}, {s: e.mean for s, e in bn.items()}
    comparison = compare_with_reference(values, reference, items=other, reference_items=bn)
    # other items: no bootstrap over items; the seeds still pair (same training), so the paired t-test
    assert comparison.test == PAIRED_T and "other item lists" in comparison.fallback


# --- reading the files ------------------------------------------------------------------------------

def test_the_set_is_the_one_whose_mean_is_the_metric(tmp_path: Path) -> None:
    run = _write_run(tmp_path, "bn", 0, [0.5, 0.7, 0.6])
    text = (run / "test_episodes.csv").read_text()
    digits = "".join(f"digits,{j},{a!r},{'c' * 64}\n" for j, a in enumerate([0.2, 0.3]))
    (run / "test_episodes.csv").write_text(text + digits)
    (record,) = collect_runs(tmp_path).records
    found, note = episodes_of(record, "test/acc")
    assert note is None and found.name == "test" and found.episodes == (0, 1, 2)
    assert found.accuracies.tolist() == [0.5, 0.7, 0.6]
    assert set(read_episode_file(run / "test_episodes.csv")) == {"test", "digits"}


def test_a_file_that_does_not_reproduce_the_record_is_not_used(tmp_path: Path) -> None:
    run = _write_run(tmp_path, "bn", 0, [0.5, 0.7, 0.6])
    (run / "test_episodes.csv").write_text(episode_file([0.5, 0.7, 0.9], SHA))  # another checkpoint's episodes
    (record,) = collect_runs(tmp_path).records
    found, note = episodes_of(record, "test/acc")
    assert found is None and "reproduces test/acc=0.6" in note


def test_a_hash_unlike_the_records_is_not_used(tmp_path: Path) -> None:
    run = _write_run(tmp_path, "bn", 0, [0.5, 0.7, 0.6])
    (run / "test_episodes.csv").write_text(episode_file([0.5, 0.7, 0.6], "d" * 64))
    (record,) = collect_runs(tmp_path).records
    found, note = episodes_of(record, "test/acc")
    assert found is None and "the record says aaaaaaaaaaaa" in note


@pytest.mark.parametrize("text, problem", [
    ("set,episode,accuracy\ntest,0,0.5\n", "expected the columns set, episode, accuracy, episodes_sha256"),
    (f"set,episode,accuracy,episodes_sha256\ntest,0,x,{SHA}\n", "line 2: episode and accuracy must be numbers"),
    (f"set,episode,accuracy,episodes_sha256\ntest,0,0.5,{SHA}\ntest,1,0.5,{'b' * 64}\n", "mixes 2 episode hashes"),
])
def test_malformed_episode_files_are_named(tmp_path: Path, text: str, problem: str) -> None:
    run = _write_run(tmp_path, "bn", 0, [0.5])
    (run / "test_episodes.csv").write_text(text)
    (record,) = collect_runs(tmp_path).records
    found, note = episodes_of(record, "test/acc")
    assert found is None and problem in note and str(run / "test_episodes.csv") in note


def test_episode_file_outside_the_run_folder_is_refused(tmp_path: Path) -> None:
    _write_run(tmp_path, "bn", 0, [0.5], episode_file="../other/test_episodes.csv")
    (record,) = collect_runs(tmp_path).records
    found, note = episodes_of(record, "test/acc")
    assert found is None and "must name a file in the run folder" in note
