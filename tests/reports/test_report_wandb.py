"""The W&B report: built offline and inspected; publishing without a login fails clearly."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from report_records import declare

from reports.collect import collect_runs
from reports.summary import build_summary
from reports.tables import tables_from_records
from reports.wandb_report import (
    WandbPublishError,
    build_wandb_report,
    publish_wandb_report,
    report_spec,
    wandb_login_available,
)


def _no_network(*args, **kwargs):
    raise AssertionError("tried to open a network connection")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials anywhere and no sockets; returns the fake home folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    return home


@pytest.fixture
def report(golden_runs: Path, tmp_path: Path, write_record, offline: Path):
    # a second task from another sweep, so the report has two sections
    declared = [declare("test/robust_acc", "robust accuracy", primary=True), declare("test/acc", "clean accuracy")]
    for seed in range(2):
        write_record("bn", 4, seed, acc=0.4, task="adversarial", sweep="adv", metric_declarations=declared,
                     **{"test/robust_acc": 0.3})
    records = collect_runs(tmp_path / "runs").records
    return build_wandb_report(records, "my-team", "normbench", title="Norms compared",
                              tables=tables_from_records(records), summary=build_summary(records))


def _sections(report) -> dict[str, list]:
    sections: dict[str, list] = {}
    current = None
    for block in report.blocks:
        if type(block).__name__ == "H1":
            current = block.text
            sections[current] = []
        elif current is not None:
            sections[current].append(block)
    return sections


def _grids(blocks) -> dict[str, object]:
    return {b.runsets[0].name: b for b in blocks if type(b).__name__ == "PanelGrid"}


def test_report_structure(report) -> None:
    assert (report.entity, report.project, report.title) == ("my-team", "normbench", "Norms compared")
    sections = _sections(report)
    assert list(sections) == ["Cross-task summary", "classification", "adversarial"]  # summary, then paper order
    axis = {"classification": ["bs=2", "bs=16"], "adversarial": ["bs=4"]}
    for task in ("classification", "adversarial"):
        grids = _grids(sections[task])
        assert list(grids) == [f"{task} runs", *(f"{task} runs, {label}" for label in axis[task])]
        # all runs: the selection monitor's curve and the runs table
        (runset,) = grids[f"{task} runs"].runsets
        assert (runset.entity, runset.project) == ("my-team", "normbench")
        assert runset.groupby == ["group"]  # W&B group = every coordinate but the seed: seeds aggregate
        (line,) = grids[f"{task} runs"].panels
        assert (line.x, line.y, line.groupby) == ("Step", ["val/acc"], "Group")
        assert runset.pinned_columns == ["config:norm_label.value", "config:batch_size.value"]
        primary = "test/acc" if task == "classification" else "test/robust_acc"
        assert f"summary:{primary}" in runset.visible_columns and "config:seed.value" in runset.visible_columns
        # a bar chart of the primary per table-axis value
        for label in axis[task]:
            bar = grids[f"{task} runs, {label}"].panels[0]
            assert type(bar).__name__ == "BarPlot" and bar.metrics == [primary]
            assert bar.title.startswith(f"{task}, {label}: {primary} by norm")
            assert (bar.groupby, bar.groupby_aggfunc, bar.groupby_rangefunc) == ("Group", "mean", "stddev")
    headings = [b.text for b in sections["classification"] if type(b).__name__ == "H2"]
    assert headings == ["classification: bs=2", "classification: bs=16"]
    # adversarial training: clean and robust side by side, and clean against robust
    _, both, scatter = _grids(sections["adversarial"])["adversarial runs, bs=4"].panels
    assert type(both).__name__ == "BarPlot" and both.metrics == ["test/acc", "test/robust_acc"]
    assert type(scatter).__name__ == "ScatterPlot"
    assert (scatter.x.name, scatter.y.name) == ("test/acc", "test/robust_acc")
    assert len(_grids(sections["classification"])["classification runs, bs=2"].panels) == 1


def _leaves(runset) -> list[tuple]:
    from wandb_workspaces import expr

    v2 = expr.filters_tree_to_v2(expr.expr_to_filters(runset.filters))
    return [(f["key"]["section"], f["key"]["name"], f["op"], f["value"]) for f in v2["filters"]]


def test_runset_filters_select_sweep_tag_task_and_axis_value(report) -> None:
    sections = _sections(report)
    expected = {"classification": "quick", "adversarial": "adv"}
    for task in expected:
        grids = _grids(sections[task])
        tag_and_task = [("run", "tags", "IN", [expected[task]]), ("config", "task", "=", task)]
        assert _leaves(grids[f"{task} runs"].runsets[0]) == tag_and_task
    grids = _grids(sections["classification"])
    assert _leaves(grids["classification runs, bs=16"].runsets[0]) == [
        ("run", "tags", "IN", ["quick"]), ("config", "task", "=", "classification"), ("config", "batch_size", "=", 16)]


def test_summary_table_in_the_report(report) -> None:
    (block,) = _sections(report)["Cross-task summary"]
    assert block.text.startswith("Cross-task summary: one column per task setting declared before the runs")
    assert "| Norm | classification: bs=16 | adversarial: bs=4 |" in block.text


def test_intro_names_the_tests_the_reporter_uses(report) -> None:
    intro = report.blocks[0].text
    assert "two-sided test over seeds" in intro and "paired t-test over seeds" in intro
    assert "hierarchical bootstrap" in intro and "Holm-adjusted p < 0.05" in intro and "fewer than 3 seeds" in intro
    assert "one-sided" not in intro


def test_main_table_in_the_report(report) -> None:
    blocks = _sections(report)["classification"]
    texts = [b.text for b in blocks if type(b).__name__ == "MarkdownBlock"]
    assert any("| BGN (G=1) | **80.00 ± 1.00** | **91.00 ± 0.50** |" in t for t in texts)
    assert any("norms BN, IN, LN, GN (G=32), BGN (G=1), BGN (G=4)" in t for t in texts)


def test_spec_is_json_and_deterministic(golden_runs: Path, offline: Path) -> None:
    records = collect_runs(golden_runs).records
    first = report_spec(build_wandb_report(records, "e", "p"))
    second = report_spec(build_wandb_report(records, "e", "p"))
    assert json.dumps(first) == json.dumps(second)  # no random panel ids in the spec
    assert first["format"] == "wandb_workspaces.reports.v2" and first["type"] == "Report"
    kinds = [b["type"] for b in first["blocks"]]
    assert kinds == ["MarkdownBlock", "TableOfContents", "H1", "MarkdownBlock", "PanelGrid",
                     "H2", "PanelGrid", "H2", "PanelGrid"]
    grid = first["blocks"][-1]
    assert [p["type"] for p in grid["panels"]] == ["BarPlot"]
    assert grid["runsets"][0]["groupby"] == ["group"]


def test_publish_without_login_raises_clear_error(report, offline: Path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)  # not "disabled": the login check must catch it
    assert not wandb_login_available()
    with pytest.raises(WandbPublishError) as info:
        publish_wandb_report(report)
    message = str(info.value)
    assert "not logged in to W&B" in message and "`wandb login`" in message and "WANDB_API_KEY" in message
    assert "\n" not in message
    assert info.value.__cause__ is None


def test_login_detection(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not wandb_login_available()
    (offline / ".netrc").write_text("machine example.com login user password secret\n")
    assert not wandb_login_available()  # an entry for another host does not count
    (offline / ".netrc").write_text("machine api.wandb.ai login user password 0123456789abcdef\n")
    assert wandb_login_available()
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert not wandb_login_available()
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    assert wandb_login_available()


def test_publish_refuses_when_wandb_is_switched_off(report, offline: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(WandbPublishError, match="WANDB_MODE=offline"):
        publish_wandb_report(report)


class _FailingReport:
    entity, project = "my-team", "normbench"

    def save(self) -> None:
        raise ValueError("Run set 'x' project 'my-team/normbench' not found.\nmore detail")


def test_save_failure_becomes_one_line(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(WandbPublishError) as info:
        publish_wandb_report(_FailingReport())
    assert str(info.value) == ("publishing the W&B report to my-team/normbench failed: "
                               "Run set 'x' project 'my-team/normbench' not found.")
