"""The benchmark scripts run end to end and report sane ratios (no timing thresholds: figures are noisy)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from normlayers import bench as layer_bench
from tasks import bench_overhead

REPO = Path(__file__).resolve().parents[1]


def test_layer_benchmark_times_every_norm_against_batchnorm(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert layer_bench.main(["--norms", "bgn", "gn", "bgn:num_groups=16", "--batches", "2", "--rounds", "1",
                             "--budget", "0.05", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == len(layer_bench.RESNET_SHAPES)
    for row in rows:  # every BGN spec also gets an "eager" column: the layer without its native kernel
        assert set(row["ratios"]) == {"bgn:num_groups=1", "bgn:num_groups=1 eager", "gn:num_groups=32",
                                      "bgn:num_groups=16", "bgn:num_groups=16 eager"}
        assert all(math.isfinite(r) and r > 0 for r in row["ratios"].values()) and row["bn_ms"] > 0
    table = capsys.readouterr().out
    assert "| N x C x H x W | BN ms | BGN (G=1) | BGN (G=1) eager | GN (G=32) | BGN (G=16) | BGN (G=16) eager |" in table


def test_layer_benchmark_paths_and_floor_tables(tmp_path: Path, capsys) -> None:
    out = tmp_path / "paths.json"
    threads = torch.get_num_threads()
    assert layer_bench.main(["--paths", "--groups", "4", "--batches", "2", "--rounds", "1", "--budget", "0.02",
                             "--threads", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == len(layer_bench.RESNET_SHAPES)
    for row in rows:
        assert set(row["ratios"]) == {"G=4 native", "G=4 composite", "G=4 two_phase", "G=4 plain"}
        assert row["chosen"] == {"4": "native"}
    assert "| fastest | chosen |" in capsys.readouterr().out
    assert torch.get_num_threads() == threads  # --threads does not outlive the call
    out = tmp_path / "floor.json"
    assert layer_bench.main(["--floor", "--rounds", "1", "--budget", "0.01", "--threads", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert rows and all(us > 0 for row in rows for us in row["us"].values())
    assert "| BGN / BN | noop / BN 1x1 |" in capsys.readouterr().out


def test_overhead_benchmark_compares_a_run_with_a_plain_loop(capsys) -> None:
    assert bench_overhead.main(["--config", str(REPO / "configs/classification/test.yaml"), "--norms", "bgn",
                                "--batch-sizes", "4", "--steps", "8", "--repeats", "1"]) == 0
    line = [row for row in capsys.readouterr().out.splitlines() if row.startswith("| bgn | 4 | 8 |")]
    assert len(line) == 1
    plain, ours, ratio = (float(v) for v in line[0].strip("| ").split(" | ")[3:6])
    assert plain > 0 and ours > 0
    # the throughputs are printed rounded to whole images/s, the ratio from the unrounded ones
    assert (ours - 0.5) / (plain + 0.5) - 0.005 <= ratio <= (ours + 0.5) / max(plain - 0.5, 1e-9) + 0.005


@pytest.mark.slow
def test_overhead_benchmark_with_compile_reports_both_and_the_compile_time(capsys) -> None:
    assert bench_overhead.main(["--config", str(REPO / "configs/classification/test.yaml"), "--norms", "bn",
                                "--batch-sizes", "4", "--steps", "6", "--repeats", "1", "--compile"]) == 0
    rows = [row.strip("| ").split(" | ") for row in capsys.readouterr().out.splitlines() if row.startswith("| bn | 4 |")]
    assert [row[6] for row in rows] == ["off", "on"]
    assert float(rows[0][7]) == 0 and float(rows[1][7]) > 0  # the compiled run's cold compile time
    assert all(float(row[3]) > 0 and float(row[4]) > 0 for row in rows)


def test_alternating_measurement_runs_normbench_first_and_keeps_its_cold_compile_time() -> None:
    from tasks.runner.bench_run import measure_alternating

    calls: list[str] = []
    records = iter([{"v": 10.0, "compile_time_s": 30.0}, {"v": 30.0, "compile_time_s": 0.5}, {"v": 20.0}])
    plains = iter([1.0, 3.0, 2.0])

    def normbench() -> dict:
        calls.append("normbench")
        return next(records)

    def plain() -> float:
        calls.append("plain")
        return next(plains)

    m = measure_alternating(plain, normbench, lambda r: r["v"], repeats=3)
    assert calls == ["normbench", "plain"] * 3
    assert (m.plain, m.normbench, m.compile_time_s, m.ratio) == (2.0, 20.0, 30.0, 10.0)


@pytest.mark.slow
def test_overhead_benchmark_compiled_rows(capsys) -> None:
    assert bench_overhead.main(["--config", str(REPO / "configs/classification/test.yaml"), "--norms", "bn",
                                "--batch-sizes", "4", "--steps", "4", "--repeats", "1", "--compile"]) == 0
    rows = [r.strip("| ").split(" | ") for r in capsys.readouterr().out.splitlines() if r.startswith("| bn | 4 | 4 |")]
    assert [r[6] for r in rows] == ["off", "on"]
    assert float(rows[0][7]) == 0.0 and float(rows[1][7]) > 0  # a cold compile is timed, eager has none
