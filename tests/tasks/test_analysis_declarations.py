"""A sweep's analysis declarations (reference norm, hypotheses, contrasts) ride in every record, unchanged,
with canonical norm specs, and never split a comparison key."""

from __future__ import annotations

import pytest

from tasks.registry import get_task
from tasks.runner.comparison import comparison_fields
from tasks.runner.errors import ConfigError
from tasks.runner.identity import analysis_fields
from tasks.runner.parse import parse_config

QUICK = ["--config", "configs/classification/quick.yaml"]
DECLARED = QUICK + [
    "--reference_norm", "BN",
    "--hypotheses", '[{id: H1, norm: "bgn:num_groups=auto", task: classification, axis: 2, expect: better}]',
    "--contrasts", '[{norm: "gn:num_groups=8", between: [2, 128]}]',
]


def test_declarations_are_recorded_with_canonical_specs() -> None:
    cfg = parse_config(get_task("classification"), DECLARED, raise_errors=True)
    fields = analysis_fields(cfg)
    assert fields["reference_norm"] == "bn"
    assert fields["hypotheses"] == [{"id": "H1", "norm": "bgn:elements=1024,num_groups=auto",
                                     "task": "classification", "axis": 2, "expect": "better"}]
    assert fields["contrasts"] == [{"norm": "gn:num_groups=8", "between": [2, 128]}]


def test_declarations_do_not_change_the_comparison_key() -> None:
    task = get_task("classification")
    plain = comparison_fields(parse_config(task, QUICK, raise_errors=True), task, None)
    declared = comparison_fields(parse_config(task, DECLARED, raise_errors=True), task, None)
    assert plain["comparison_hash"] == declared["comparison_hash"]


def test_a_record_without_declarations_has_none() -> None:
    assert analysis_fields(parse_config(get_task("classification"), QUICK, raise_errors=True)) == {}


def test_a_bad_expectation_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="expect"):
        parse_config(get_task("classification"), QUICK + ["--hypotheses", '[{id: H1, norm: bn, expect: maybe}]'],
                     raise_errors=True)
