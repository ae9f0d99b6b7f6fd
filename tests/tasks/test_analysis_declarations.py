"""A sweep's analysis declarations (reference norm, hypotheses, contrasts) ride in every record, unchanged,
with canonical norm specs, and never split a comparison key."""

from __future__ import annotations

import pytest

from tasks.registry import get_task
from tasks.runner.comparison import comparison_fields
from tasks.runner.errors import ConfigError
from tasks.runner.identity import analysis_fields
from tasks.runner.parse import parse_config
from tasks.runner.prepare import prepare

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


@pytest.mark.parametrize("args, message", [
    (["--hypotheses", "[{id: H1, norm: bnx}]"], "hypotheses[0] (H1).norm: unknown norm 'bnx'"),
    (["--hypotheses", "[{norm: bn}]"], "hypotheses[0]: id and norm are required"),
    (["--contrasts", "[{norm: bn, between: [2]}]"], "contrasts[0]: norm and two axis values"),
    (["--reference_norm", "gnn"], "reference_norm: unknown norm 'gnn'"),
])
def test_bad_declarations_are_refused_before_the_run(args: list[str], message: str) -> None:
    task = get_task("classification")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        prepare(parse_config(task, QUICK + args, raise_errors=True), task, dry_run=False)


def test_a_norm_spec_refused_while_building_is_one_line(tmp_path) -> None:
    task = get_task("classification")
    cfg = parse_config(task, QUICK + ["--norm", "gn:channels_per_group=3", "--out_dir", str(tmp_path)], raise_errors=True)
    with pytest.raises(ConfigError, match="channels_per_group=3 does not divide a layer's C=16"):
        prepare(cfg, task)
    assert not any(tmp_path.iterdir())
