"""Comparisons that can be defended (issue 18): comparison keys split tables and refuse summary columns,
row coordinates name rows, pairing needs equal train orders, Holm over declared families, contrasts, a
declared reference. Expected values are computed here with scipy and the textbook formulas."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from report_records import fewshot_fields
from scipy import stats as scipy_stats

from reports.collect import collect_runs
from reports.compare import PAIRED_T, WELCH
from reports.contrasts import PAIRED, UNPAIRED, compute_contrasts, render_contrasts_csv
from reports.family import holm, parse_hypotheses
from reports.keys import comparison_differences
from reports.render import render_csv, render_markdown
from reports.stats import aggregate
from reports.summary import build_summary
from reports.tables import tables_from_records

BASE = {"task": "classification", "dataset": "fashion_mnist", "model": "resnet20", "trainer.epochs": 1}


def _key(**changes) -> dict:
    return {"comparison": {**BASE, **changes}}


def _write(write_record, norm: str, bs: int, seed: int, acc: float, tag: str = "", **fields) -> None:
    run_id = f"{norm.replace(':', '_')}-bs{bs}-s{seed}{tag}"
    write_record(norm, bs, seed, acc=acc, run_id=run_id, **fields)


def _records(tmp_path: Path):
    return collect_runs(tmp_path / "runs").records


# --- never pool unlike runs -------------------------------------------------------------------------

def test_runs_that_differ_only_in_data_fraction_get_two_tables_and_the_summary_refuses(tmp_path, write_record):
    # the case: BN made with data.fraction 0.01, BGN with 0.02, in one folder
    _write(write_record, "bn", 2, 0, 0.70, "a", **_key(**{"data.fraction": 0.01}))
    _write(write_record, "bgn:num_groups=1", 2, 0, 0.75, "b", **_key(**{"data.fraction": 0.02}))
    records = _records(tmp_path)
    tables = tables_from_records(records)
    assert len(tables) == 2 and all(len(t.rows) == 1 for t in tables)
    contexts = [t.context for t in tables]
    assert [t.parts for t in tables] == [("data.fraction=0.01",), ("data.fraction=0.02",)]
    assert tables[0].name == "classification__fashion_mnist__resnet20__data.fraction=0.01__test-acc"
    (difference,) = comparison_differences(tables[1].context, contexts)
    assert (difference.key, difference.value, difference.caption()) == (
        "data.fraction", "0.02", "data.fraction 0.01 | 0.02")
    assert "(data.fraction=0.01)" in render_markdown(tables[0]).splitlines()[0]
    assert "No reference (BN) row" in render_markdown(tables[1])  # BGN is never compared with the other BN
    summary = build_summary(records)
    (column,) = summary.columns
    assert column.problem is not None and column.records == ()
    (problem,) = summary.problems
    assert problem.startswith("summary column 'classification' of task classification: its runs differ in "
                              "data.fraction 0.01 | 0.02; refused (not merged)")
    assert all(row.cells[0].kind in ("missing", "n/a") and row.cells[0].values == () for row in summary.rows)


def test_output_paths_and_threads_never_split_and_old_records_group_as_before(tmp_path, write_record):
    _write(write_record, "bn", 2, 0, 0.70, "a", overrides={"out_dir": "runs/a", "trainer.threads": 1}, **_key())
    _write(write_record, "bn", 2, 1, 0.71, "b", overrides={"out_dir": "runs/b", "trainer.threads": 4}, **_key())
    (table,) = tables_from_records(_records(tmp_path))
    assert table.rows[0].cells[2].n == 2 and table.context.keyed and table.parts == ()
    # an old record (no key) beside keyed ones: its own table, marked
    _write(write_record, "bn", 2, 2, 0.72, "old")
    old, new = sorted(tables_from_records(_records(tmp_path)), key=lambda t: t.context.keyed)
    assert not old.context.keyed and old.parts == ("comparison key=none (old record)",) and new.parts == ()
    assert comparison_differences(old.context, [old.context, new.context]) == ()


def test_row_coordinates_name_rows_instead_of_splitting_tables(tmp_path, write_record):
    for seed in range(3):
        for mode, shift in (("transductive", 0.0), ("running", -0.2)):
            for norm, gain in (("bn", 0.0), ("bgn:num_groups=4", 0.05 + 0.01 * seed * (mode == "running"))):
                fields = fewshot_fields(5, 1, 0.01)
                fields["coordinates"] = {**fields["coordinates"], "norm_mode": mode}
                fields["protocol"] = {}
                _write(write_record, norm, 80, seed, 0.6 + shift + gain + 0.01 * seed, mode,
                       row_coordinates=["norm_mode"], **fields)
    records = _records(tmp_path)
    (table,) = tables_from_records(records)
    assert [r.label for r in table.rows] == ["BN · running", "BN · transductive", "BGN (G=4) · running",
                                            "BGN (G=4) · transductive"]
    running = table.rows[2].cells["5w1s"]
    # compared with BN in the same mode: differences 0.05, 0.06, 0.07 at seeds 0-2
    assert running.diff == pytest.approx(0.06) and running.comparison.test == PAIRED_T
    summary = build_summary(records)
    assert [c.label for c in summary.columns] == ["fewshot · running", "fewshot · transductive"]


# --- pairing that is checked -------------------------------------------------------------------------

BN3, GN3 = [0.50, 0.52, 0.51], [0.55, 0.58, 0.56]


def test_runs_are_paired_only_when_their_train_orders_agree(tmp_path, write_record):
    for seed in range(3):
        _write(write_record, "bn", 2, seed, BN3[seed], train_order_hash=f"order{seed}", **_key())
        _write(write_record, "gn:num_groups=32", 2, seed, GN3[seed], train_order_hash=f"order{seed}", **_key())
    gn = next(c for c in aggregate(_records(tmp_path)) if c.norm == "gn:num_groups=32")
    expected = scipy_stats.ttest_rel(GN3, BN3)
    assert gn.comparison.test == PAIRED_T and gn.paired and gn.comparison.pairing == "verified"
    assert gn.p_vs_bn == pytest.approx(expected.pvalue, rel=1e-12)


def test_runs_whose_train_orders_differ_are_not_paired(tmp_path, write_record):
    for seed in range(3):
        _write(write_record, "bn", 2, seed, BN3[seed], train_order_hash=f"order{seed}", **_key())
        other = "shuffled" if seed == 1 else f"order{seed}"
        _write(write_record, "gn:num_groups=32", 2, seed, GN3[seed], train_order_hash=other, **_key())
    (table,) = tables_from_records(_records(tmp_path))
    gn = table.rows[-1].cells[2]
    expected = scipy_stats.ttest_ind(GN3, BN3, equal_var=False)
    assert gn.comparison.test == WELCH and not gn.paired
    assert gn.fallback == "train_order_hash differs at seed 1 (the runs did not see the same batches): not paired"
    assert gn.p_vs_bn == pytest.approx(expected.pvalue, rel=1e-12)
    ci = expected.confidence_interval(0.95)
    assert (gn.ci_low, gn.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    row = next(r for r in render_csv([table]).splitlines() if r.startswith("classification") and "gn:" in r)
    assert (",table,1,Holm,no,,train_order_hash differs at seed 1 (the runs did not see the same "
            "batches): not paired,") in row


# --- Holm over a declared family ---------------------------------------------------------------------

def test_holm_is_the_step_down_formula():
    # sorted p: 0.01, 0.03, 0.04, 0.2 -> 4*0.01, max(that, 3*0.03), max(that, 2*0.04), max(that, 0.2)
    assert holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0]) and holm([]) == []


GRID = {  # norm -> accuracies at seeds 0-2, batch size 2
    "bn": [0.70, 0.71, 0.69], "in": [0.60, 0.62, 0.61], "gn:num_groups=32": [0.72, 0.74, 0.72],
    "bgn:num_groups=1": [0.80, 0.80, 0.81],
}
HYPOTHESES = [{"id": "H1", "norm": "bgn:num_groups=1", "axis": 2}, {"id": "H2", "norm": "gn:num_groups=32", "axis": 2},
              {"id": "H3", "norm": "bgn:num_groups=1", "axis": 128, "expect": "better"}]  # H3 never ran


def test_declared_hypotheses_are_one_family_untested_ones_count(tmp_path, write_record):
    for norm, values in GRID.items():
        for seed, acc in enumerate(values):
            _write(write_record, norm, 2, seed, acc, hypotheses=HYPOTHESES, **_key())
    records = _records(tmp_path)
    hypotheses, problems = parse_hypotheses(records)
    assert [h.id for h in hypotheses] == ["H1", "H2", "H3"] and problems == []
    cells = {c.norm: c for c in aggregate(records)}
    p1 = scipy_stats.ttest_rel(GRID["bgn:num_groups=1"], GRID["bn"]).pvalue
    p2 = scipy_stats.ttest_rel(GRID["gn:num_groups=32"], GRID["bn"]).pvalue
    expected = holm([p1, p2, 1.0])  # H3 could not be tested: p = 1, the family stays 3
    for norm, p, adjusted in (("bgn:num_groups=1", p1, expected[0]), ("gn:num_groups=32", p2, expected[1])):
        c = cells[norm].comparison
        assert (c.p_value, c.p_adjusted) == pytest.approx((p, adjusted), rel=1e-12)
        assert (c.family, c.family_size) == ("declared hypotheses (H1, H2, H3)", 3)
    assert cells["bgn:num_groups=1"].beats_bn and cells["bgn:num_groups=1"].stars == "*"  # 3 * 0.0072 = 0.022
    # IN is no hypothesis: the rest of the table is its own family of one
    assert (cells["in"].comparison.family, cells["in"].family_size) == ("table", 1)
    assert cells["in"].p_adjusted == cells["in"].p_vs_bn
    caption = render_markdown(tables_from_records(records)[0])
    assert "over the 3 comparisons of the declared hypotheses (H1, H2, H3) and the 1 comparison of this table" in caption


def test_a_malformed_hypothesis_is_named_and_ignored(tmp_path, write_record):
    _write(write_record, "bn", 2, 0, 0.7, hypotheses=[{"id": "H1"}, {"id": "H2", "norm": "gn", "expect": "up"}])
    _, problems = parse_hypotheses(_records(tmp_path))
    assert len(problems) == 2 and "hypotheses[0] needs an id and a norm" in problems[0]
    assert "expect must be 'better' or 'worse'" in problems[1]


def test_nothing_is_starred_below_three_seeds(tmp_path, write_record):
    for seed in range(2):
        _write(write_record, "bn", 2, seed, [0.5, 0.51][seed], **_key())
        _write(write_record, "bgn:num_groups=1", 2, seed, [0.9, 0.92][seed], **_key())
    bgn = next(c for c in aggregate(_records(tmp_path)) if c.norm != "bn")
    assert bgn.comparison.test == "" and bgn.stars == "" and not bgn.beats_bn and bgn.diff == pytest.approx(0.405)


# --- contrasts and the reference ---------------------------------------------------------------------

CONTRAST_GRID = {  # (norm, batch) -> seeds 0-3
    ("bn", 2): [0.60, 0.62, 0.61, 0.63], ("bgn:num_groups=1", 2): [0.70, 0.73, 0.70, 0.74],
    ("bn", 128): [0.90, 0.91, 0.90, 0.92], ("bgn:num_groups=1", 128): [0.89, 0.91, 0.90, 0.91],
}


def _contrast_runs(write_record, orders=lambda norm, bs, seed: f"o{bs}-{seed}") -> None:
    declared = [{"norm": "bgn:num_groups=1", "between": [2, 128]}]
    for (norm, bs), values in CONTRAST_GRID.items():
        for seed, acc in enumerate(values):
            _write(write_record, norm, bs, seed, acc, contrasts=declared, train_order_hash=orders(norm, bs, seed),
                   **_key())


def test_difference_in_differences_paired_over_seeds(tmp_path, write_record):
    _contrast_runs(write_record)
    records = _records(tmp_path)
    (contrast,), problems = compute_contrasts(aggregate(records), records)
    g = CONTRAST_GRID
    per_seed = [(g[("bgn:num_groups=1", 2)][s] - g[("bn", 2)][s]) - (g[("bgn:num_groups=1", 128)][s] - g[("bn", 128)][s])
                for s in range(4)]
    expected = scipy_stats.ttest_1samp(per_seed, 0.0)
    ci = expected.confidence_interval(0.95)
    assert problems == [] and contrast.test == PAIRED and contrast.paired and contrast.n == 4
    assert contrast.at == ("bs=2", "bs=128") and contrast.diff == pytest.approx(statistics.fmean(per_seed))
    assert (contrast.ci_low, contrast.ci_high, contrast.p_value) == pytest.approx((ci.low, ci.high, expected.pvalue))
    assert contrast.p_adjusted == contrast.p_value and contrast.family_size == 1 and contrast.significant
    header, row = render_contrasts_csv([contrast]).splitlines()
    assert header.startswith("task,dataset,model,context,metric,norm,reference,at,minus_at,n,diff,ci_low")
    assert row.startswith("classification,fashion_mnist,resnet20,,test/acc,bgn:num_groups=1,bn,bs=2,bs=128,4,")


def test_difference_in_differences_unpaired_when_train_orders_differ(tmp_path, write_record):
    _contrast_runs(write_record, orders=lambda norm, bs, seed: f"{norm}-{bs}-{seed}")  # every run its own order
    records = _records(tmp_path)
    (contrast,), _ = compute_contrasts(aggregate(records), records)
    cells = [CONTRAST_GRID[k] for k in (("bgn:num_groups=1", 2), ("bn", 2), ("bgn:num_groups=1", 128), ("bn", 128))]
    v = [statistics.variance(c) / 4 for c in cells]
    estimate = statistics.fmean(cells[0]) - statistics.fmean(cells[1]) - statistics.fmean(cells[2]) + statistics.fmean(cells[3])
    df = sum(v) ** 2 / sum(x ** 2 / 3 for x in v)  # Welch-Satterthwaite
    half = scipy_stats.t.ppf(0.975, df) * sum(v) ** 0.5
    assert contrast.test == UNPAIRED and not contrast.paired and "train_order_hash differs" in contrast.reason
    assert (contrast.diff, contrast.ci_low, contrast.ci_high) == pytest.approx((estimate, estimate - half, estimate + half))


def test_a_declared_reference_replaces_bn(tmp_path, write_record):
    for norm, values in GRID.items():
        for seed, acc in enumerate(values):
            _write(write_record, norm, 2, seed, acc, reference_norm="gn:num_groups=32", **_key())
    records = _records(tmp_path)
    cells = {c.norm: c for c in aggregate(records)}
    assert cells["gn:num_groups=32"].comparison is None and cells["bn"].comparison.reference == "gn:num_groups=32"
    assert cells["bn"].diff == pytest.approx(statistics.fmean(GRID["bn"]) - statistics.fmean(GRID["gn:num_groups=32"]))
    caption = render_markdown(tables_from_records(records)[0])
    assert "significantly better than GN (G=32) at the same batch size" in caption
    # the report option wins over the records
    assert {c.norm: c for c in aggregate(records, reference="bn")}["gn:num_groups=32"].comparison.reference == "bn"


# --- the record fields -------------------------------------------------------------------------------

def test_comparison_fields_are_checked_and_a_missing_hash_is_computed(tmp_path, write_record):
    import hashlib
    import json

    _write(write_record, "bn", 2, 0, 0.7, "a", **_key())
    _write(write_record, "bn", 2, 1, 0.7, "b", comparison_hash="feedfeedfeedfeed", **_key())
    _write(write_record, "bn", 2, 2, 0.7, "c", row_coordinates="norm_mode")
    _write(write_record, "bn", 2, 3, 0.7, "d", comparison=["data.fraction"])
    collection = collect_runs(tmp_path / "runs")
    (computed,) = [r for r in collection.records if r.seed == 0]
    canonical = json.dumps({**BASE}, sort_keys=True, separators=(",", ":"))
    assert computed.comparison_hash == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert {r.seed for r in collection.records} == {0, 1}  # the given hash is used as given: another context
    assert len(tables_from_records(collection.records)) == 2
    assert [p.split(": ", 1)[1] for p in collection.problems] == [
        "key 'row_coordinates' must be list, got str 'norm_mode'",
        "key 'comparison' must be object, got list ['data.fraction']"]


def test_a_key_the_context_already_shows_is_not_named_twice(tmp_path, write_record):
    for mode in ("eval", "train"):
        _write(write_record, "bn", 2, 0, 0.7, mode, protocol={"attack_mode": mode},
               **_key(**{"adversarial.attack_mode": mode, "data.fraction": 0.01 if mode == "eval" else 0.02}))
    tables = tables_from_records(_records(tmp_path))
    assert [t.parts for t in tables] == [("attack_mode=eval", "data.fraction=0.01"),
                                         ("attack_mode=train", "data.fraction=0.02")]
    keys = [d.key for d in comparison_differences(tables[0].context, [t.context for t in tables])]
    assert keys == ["adversarial.attack_mode", "data.fraction"]  # the data keeps every differing key
