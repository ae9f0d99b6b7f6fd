"""The `normbench report` command: files written, terminal output, exit codes."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from reports.cli import main


def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == f"normbench report: error: runs folder not found: {tmp_path / 'nope'}"
    assert "Traceback" not in out + err


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs" / "quick" / "pending").mkdir(parents=True)
    (tmp_path / "runs" / "quick" / "pending" / "config.yaml").write_text("x: 1\n")
    assert main([str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"normbench report: error: no run records (result.json) found under "
                           f"{tmp_path / 'runs'} (1 run still incomplete)")
    assert not (tmp_path / "runs" / "report").exists()


def test_only_malformed_records(tmp_path: Path, write_record, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_record("bn", 2, 0, raw="{}")
    assert main([str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"normbench report: warning: skipped {bad}: missing key 'schema'"
    assert err[1].endswith("(1 malformed records skipped)")


@pytest.mark.parametrize("argv", [["--wandb", "no-slash"], ["--wandb", "a/"], ["--wandb-build-only"]])
def test_bad_wandb_arguments(golden_runs: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(golden_runs), *argv]) == 2
    assert "--wandb" in capsys.readouterr().err


def test_bad_option_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-option"]) == 2
    assert "usage: normbench report" in capsys.readouterr().err


def test_full_report(golden_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(golden_runs)]) == 0
    out = capsys.readouterr().out
    report = golden_runs / "report"
    stem = "classification__fashion_mnist__resnet20__test-acc"  # the table's key: plots are named after it
    for rel in ["index.md", "index.html", "tables/tables.md", "tables/tables.tex", "tables/tables.csv",
                "tables/t01-classification-acc.tex", "tables/manifest.json",
                f"plots/{stem}__vs_batch_size.png", f"plots/{stem}__vs_batch_size.svg",
                f"plots/{stem}__bgn_vs_groups.png", f"plots/{stem}__bgn_vs_groups.svg"]:
        assert (report / rel).is_file(), rel
    assert not (report / "wandb_report.json").exists()
    # The main table is printed, then the paths of the index.
    assert "| BGN (G=1) | **80.00 ± 1.00** | **91.00 ± 0.50** |" in out
    assert "1 run still incomplete." in out
    assert out.rstrip().endswith(f"Report: {report / 'index.md'}\n        {report / 'index.html'}")

    index_md = (report / "index.md").read_text()
    assert "| finished | failed | diverged | incomplete | skipped (malformed) |" in index_md
    assert "| 25 | 4 | 3 | 1 | 0 |" in index_md
    pending = "quick/classification-fashion_mnist-pn-bs2-s0"
    assert f"1 run is still incomplete (no result.json yet): {pending}" in index_md
    assert "[all tables (LaTeX)](tables/tables.tex)" in index_md
    assert "[all cells (CSV)](tables/tables.csv)" in index_md
    assert f"![test/acc: metric vs batch size](plots/{stem}__vs_batch_size.png)" in index_md
    assert "| LN | failed | diverged |" in index_md

    index = (report / "index.html").read_text()
    page = (report / "task-classification.html").read_text()
    for html in (index, page):
        assert html.startswith("<!DOCTYPE html>") and "<style>" in html
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert not re.search(r"(src|href)=\"https?:", html)  # self-contained: nothing fetched
        assert "<link" not in html and "<script" not in html
    # the summary first on the index, every task's tables and plots on its own page
    assert '<h2 id="summary">Cross-task summary</h2>' in index and 'href="task-classification.html"' in index
    assert page.count('src="data:image/png;base64,') == 2
    assert "<td><b>80.00 ± 1.00</b></td>" in page
    assert '<td class="missing">–</td>' in page


def test_out_dir_and_rerun(golden_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "elsewhere"
    assert main([str(golden_runs), "--out", str(out)]) == 0
    first = (out / "tables" / "tables.tex").read_text()
    # The report folder inside the runs folder is not mistaken for runs on a rerun.
    assert main([str(golden_runs), "--out", str(golden_runs / "report")]) == 0
    assert main([str(golden_runs), "--out", str(golden_runs / "report")]) == 0
    assert (golden_runs / "report" / "tables" / "tables.tex").read_text() == first
    assert "| 25 | 4 | 3 | 1 | 0 |" in (golden_runs / "report" / "index.md").read_text()


def test_wandb_build_only_writes_spec(golden_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(golden_runs), "--wandb", "my-team/normbench", "--wandb-build-only"]) == 0
    spec = json.loads((golden_runs / "report" / "wandb_report.json").read_text())
    assert (spec["type"], spec["entity"], spec["project"]) == ("Report", "my-team", "normbench")
    index_md = (golden_runs / "report" / "index.md").read_text()
    assert "[W&B report specification (JSON)](wandb_report.json)" in index_md


def test_publish_failure_keeps_local_files(golden_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    assert main([str(golden_runs), "--wandb", "my-team/normbench"]) == 1
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        "normbench report: error: not logged in to W&B: run `wandb login` or set WANDB_API_KEY, then "
        "publish again (or use --wandb-build-only to only build the report)"]
    assert "Traceback" not in out + err
    for rel in ["index.md", "index.html", "tables/tables.csv", "wandb_report.json"]:
        assert (golden_runs / "report" / rel).is_file(), rel


def _no_network(*args, **kwargs):
    raise AssertionError("the reporter tried to open a network connection")


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "reports", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 2
    assert result.stderr.strip() == f"normbench report: error: runs folder not found: {tmp_path / 'nope'}"
