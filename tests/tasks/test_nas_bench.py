"""The NAS benchmark script: both variants make the same updates and report per-step time and memory."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch

from tasks.nas import bench

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs" / "nas" / "quick.yaml")


def _args(**kw) -> argparse.Namespace:
    base = dict(config=QUICK, norm="bn", batch_size=4, steps=2, warmup=1, threads=1)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("order, variant", [("first", "plain"), ("second", "lightning")])
def test_one_measurement_times_steps_and_memory(order: str, variant: str) -> None:
    threads = torch.get_num_threads()
    try:
        result = bench.measure(_args(), order, variant)
    finally:
        torch.set_num_threads(threads)
    assert result["order"] == order and result["variant"] == variant
    assert math.isfinite(result["step_s"]) and result["step_s"] > 0
    assert result["peak_mb"] >= 0 and result["base_mb"] > 0


@pytest.mark.slow
def test_benchmark_reports_ratios_for_both_orders(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--config", QUICK, "--batch-size", "4", "--steps", "2", "--warmup", "1", "--repeats", "1",
                       "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["order"] for r in rows] == ["first", "second"]
    for row in rows:
        assert math.isclose(row["lightning_over_plain"], row["lightning_step_s"] / row["plain_step_s"])
        assert row["plain_peak_mb"] >= 0 and row["lightning_peak_mb"] >= 0
    assert rows[0]["over_first_order"] == 1.0 and rows[1]["over_first_order"] > 0
    assert "| order | plain s/step | Lightning s/step |" in capsys.readouterr().out
