"""Fixtures for the reporter tests: hand-made run records in temporary folders.

Records follow docs/run-record.md and come from `report_records.make_record`
(schema 2 by default, `schema=1` for the old format); `five_task_report` is the
report of the five-task grid (five_tasks.py), built once per session.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from five_tasks import write_five_task_runs
from report_records import make_record

WriteRecord = Callable[..., Path]


@pytest.fixture
def write_record(tmp_path: Path) -> WriteRecord:
    """write_record(norm, batch_size, seed, acc, status, root=..., **fields) -> result.json path."""

    def write(*args: Any, root: Path | None = None, raw: Any = None, **kwargs: Any) -> Path:
        record = make_record(*args, **kwargs)
        run_dir = (root or tmp_path / "runs") / str(record.get("sweep") or "nosweep") / record["run_id"]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text("task: x\n")
        path = run_dir / "result.json"
        path.write_text(raw if isinstance(raw, str) else json.dumps(record))
        return path

    return write


# The golden grid: BN, IN, LN, GN, BGN(G=1), BGN(G=4) at batch sizes 2 and 16, with
# a missing cell (IN, 16), an all-failed cell (LN, 2), an all-diverged cell (LN, 16),
# a partially failed cell (GN, 16), unequal seeds (BGN G=4, 2: two seeds), a tie for
# best (BGN G=1 and G=4 at 16), and a clearly better norm with three seeds (BGN G=1, 2).
# Runs with the same seed are paired against BN (paired t-test); no norm differs from BN by
# exactly the same amount at every seed (that would leave the paired t statistic undefined).
GOLDEN_GRID: dict[tuple[str, int], list[float | str]] = {
    ("bn", 2): [0.700, 0.710, 0.690],
    ("in", 2): [0.650, 0.640, 0.660],
    ("ln", 2): ["failed", "failed", "failed"],
    ("gn:num_groups=32", 2): [0.705, 0.695, 0.720],
    ("bgn:num_groups=1", 2): [0.800, 0.790, 0.810],
    ("bgn:num_groups=4", 2): [0.790, 0.800],
    ("bn", 16): [0.900, 0.910, 0.890],
    ("ln", 16): ["diverged", "diverged", "diverged"],
    ("gn:num_groups=32", 16): [0.880, 0.890, "failed"],
    ("bgn:num_groups=1", 16): [0.910, 0.905, 0.915],
    ("bgn:num_groups=4", 16): [0.905, 0.915, 0.910],
}


@pytest.fixture
def golden_grid() -> dict[tuple[str, int], list[float | str]]:
    return GOLDEN_GRID


@pytest.fixture
def golden_runs(tmp_path: Path, write_record: WriteRecord) -> Path:
    """A sweep folder holding the golden grid, plus one run without result.json."""
    root = tmp_path / "runs"
    for (norm, bs), outcomes in GOLDEN_GRID.items():
        for seed, outcome in enumerate(outcomes):
            if isinstance(outcome, str):
                write_record(norm, bs, seed, acc=None, status=outcome, root=root)
            else:
                write_record(norm, bs, seed, acc=outcome, root=root)
    pending = root / "quick" / "classification-fashion_mnist-pn-bs2-s0"
    pending.mkdir(parents=True)
    (pending / "config.yaml").write_text("task: classification\n")
    return root


@pytest.fixture(autouse=True)
def _wandb_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B is disabled in tests; no test may find real credentials."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE", raising=False)


@dataclass(frozen=True)
class BuiltReport:
    """`normbench report` run once on the five-task grid (shared: tests only read it)."""

    runs: Path
    out: Path
    stdout: str
    stderr: str
    code: int


@pytest.fixture(scope="session")
def five_task_report(tmp_path_factory: pytest.TempPathFactory) -> BuiltReport:
    """The five-task grid (five_tasks.py) and its full report, with the W&B specification, built once."""
    from reports.cli import main

    root = write_five_task_runs(tmp_path_factory.mktemp("five") / "runs")
    out = root.parent / "report"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main([str(root), "--out", str(out), "--wandb", "team/normbench", "--wandb-build-only"])
    return BuiltReport(root, out, stdout.getvalue(), stderr.getvalue(), code)
