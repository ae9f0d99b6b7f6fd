"""The few-shot overhead benchmark runs end to end and reports a consistent ratio (no timing thresholds)."""

from __future__ import annotations

import math
from pathlib import Path

from tasks.fewshot import bench

QUICK = str(Path(__file__).resolve().parents[2] / "configs" / "fewshot" / "quick.yaml")


def test_overhead_benchmark_compares_a_run_with_a_plain_learn2learn_loop(capsys) -> None:
    assert bench.main(["--config", QUICK, "--methods", "protonet", "maml", "--steps", "3", "--repeats", "1"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith(("| protonet | bn |", "| maml | bn |"))]
    assert len(rows) == 2
    for row in rows:
        cells = row.strip("| ").split(" | ")
        meta_batch, plain, ours, ratio = int(cells[3]), float(cells[5]), float(cells[6]), float(cells[7])
        assert meta_batch == (1 if cells[0] == "protonet" else 4)
        assert plain > 0 and ours > 0 and math.isclose(ratio, ours / plain, rel_tol=0.02, abs_tol=0.01)


def test_compiled_maml_row_carries_the_runs_refusal(capsys) -> None:
    assert bench.main(["--config", QUICK, "--methods", "maml", "--steps", "2", "--repeats", "1", "--compile"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| maml | bn |")]
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows]
    assert [c[-2] for c in cells] == ["off", "on"] and cells[1][-1] == ""
    assert "refused: fewshot method=maml is not supported" in rows[1]
    assert len(rows[0].split("|")) == len(rows[1].split("|"))  # the refused row keeps the table's columns
