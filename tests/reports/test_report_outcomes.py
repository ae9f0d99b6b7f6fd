"""Per-item outcome files (outcomes.json): the item-level bootstrap where items are shared, and a fallback to
seed level with its reason, never a crash, where a file is missing, truncated, malformed or of other items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reports.collect import collect_runs
from reports.compare import BOOTSTRAP, PAIRED_T
from reports.outcomes import FORMAT, OUTCOMES_FILE, outcomes_of
from reports.stats import aggregate

N_ITEMS = 200
ITEMS = "0123456789abcdef"


def _bits(correct: np.ndarray) -> str:
    return "".join("1" if c else "0" for c in correct)


def _outcomes(correct: np.ndarray, items: str = ITEMS) -> dict:
    return {"format": FORMAT, "sets": [{"name": "test", "items": f"test images 0..{correct.size - 1}",
                                        "item_ids_hash": items, "n": int(correct.size),
                                        "columns": {"test/acc": _bits(correct)}, "reduce": {"test/acc": "mean"}}]}


def _runs(write_record, seeds: int = 5, edit=None) -> list[Path]:
    """BN and GN, `seeds` seeds, each run's outcomes.json; GN is right on 6% more images, varying by seed."""
    paths = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        bn = rng.random(N_ITEMS) < 0.70
        gn = bn | (rng.random(N_ITEMS) < 0.06 + 0.02 * (seed % 2))
        for norm, correct in (("bn", bn), ("gn:num_groups=32", gn)):
            path = write_record(norm, 2, seed, acc=float(correct.mean()), train_order_hash=f"o{seed}",
                                eval_items_hash="e" * 16)
            data = _outcomes(correct)
            text = json.dumps(edit(norm, seed, data) if edit else data)
            (path.parent / OUTCOMES_FILE).write_text(text)
            paths.append(path)
    return paths


def _gn(tmp_path: Path):
    return next(c for c in aggregate(collect_runs(tmp_path / "runs").records) if c.norm == "gn:num_groups=32")


def test_shared_items_and_five_seeds_use_the_item_level_bootstrap(tmp_path, write_record):
    _runs(write_record)
    gn = _gn(tmp_path)
    assert gn.comparison.test == BOOTSTRAP and gn.paired and gn.fallback == "" and len(gn.items) == 5
    # the point estimate is the mean paired difference of the record metrics (the columns reproduce them)
    bn = next(c for c in aggregate(collect_runs(tmp_path / "runs").records) if c.norm == "bn")
    assert gn.diff == pytest.approx(float(np.mean([gn.by_seed[s] - bn.by_seed[s] for s in range(5)])), rel=1e-12)
    assert gn.ci_low < gn.diff < gn.ci_high and gn.ci_low > 0


def test_the_column_must_reproduce_the_record(tmp_path, write_record):
    (path, *_rest) = _runs(write_record, seeds=1)
    data = json.loads((path.parent / OUTCOMES_FILE).read_text())
    data["sets"][0]["columns"]["test/acc"] = "1" * N_ITEMS  # another checkpoint's outcomes
    (path.parent / OUTCOMES_FILE).write_text(json.dumps(data))
    record = next(r for r in collect_runs(tmp_path / "runs").records if r.norm == "bn")
    found, note = outcomes_of(record, "test/acc")
    assert found is None and "the mean of column 'test/acc' is 1.0, the record says" in note


@pytest.mark.parametrize("damage, words", [
    (lambda text: text[: len(text) // 2], "not valid JSON (truncated?)"),
    (lambda text: text.replace('"n": 200', '"n": 300'), "has 200 items, the set says n=300 (truncated?)"),
    (lambda text: text.replace(FORMAT, "other/9"), "format must be 'normbench-outcomes/1'"),
    (lambda text: text.replace('"test/acc": "', '"test/acc": "x'), "must be a string of '0' and '1'"),
    (lambda text: text.replace('"test/acc": "', '"test/acc5": "'), "no column named 'test/acc'"),
])
def test_a_bad_file_falls_back_to_seed_level_with_the_reason(tmp_path, write_record, damage, words):
    paths = _runs(write_record)
    bad = paths[0].parent / OUTCOMES_FILE  # BN, seed 0
    bad.write_text(damage(bad.read_text()))
    gn = _gn(tmp_path)
    bn = next(c for c in aggregate(collect_runs(tmp_path / "runs").records) if c.norm == "bn")
    assert gn.comparison.test == PAIRED_T and gn.paired  # the seeds still pair: same train orders
    assert gn.fallback == "no usable outcome file at seed 0"
    (note,) = bn.notes
    assert words in note and str(bad) in note and note.endswith("compared at seed level")


def test_a_missing_file_is_a_reason_when_the_record_claims_one(tmp_path, write_record):
    paths = _runs(write_record)
    (paths[1].parent / OUTCOMES_FILE).unlink()  # GN, seed 0
    gn = _gn(tmp_path)
    assert gn.comparison.test == PAIRED_T and gn.fallback == "no usable outcome file at seed 0"
    assert "missing (the record has eval_items_hash)" in gn.notes[0]


def test_other_item_lists_are_not_paired_item_by_item(tmp_path, write_record):
    def other_items(norm, seed, data):
        if norm != "bn":
            data["sets"][0]["item_ids_hash"] = "fedcba9876543210"
        return data

    _runs(write_record, edit=other_items)
    gn = _gn(tmp_path)
    assert gn.comparison.test == PAIRED_T and "other item lists (hash fedcba987654, n=200 vs 0123456789ab" in gn.fallback
