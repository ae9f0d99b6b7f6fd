"""Runs with weight-standardized convolutions: a row of their own ("GN + WS") in the plain norm's table."""

from __future__ import annotations

from pathlib import Path

from reports.collect import collect_runs
from reports.render import render_markdown
from reports.tables import tables_from_records


def test_ws_runs_are_a_row_next_to_the_plain_norm_and_old_records_read_as_before(tmp_path: Path, write_record) -> None:
    for seed in range(2):
        write_record("bn", 2, seed, acc=0.70)
        write_record("gn:num_groups=32", 2, seed, acc=0.72)  # written before the field existed: plain
        write_record("gn:num_groups=32", 2, seed, acc=0.75, weight_standardization=True,
                     run_id=f"classification-fashion_mnist-gn_num_groups=32+ws-bs2-s{seed}")
        write_record("bn", 2, seed, acc=0.71, weight_standardization=False, root=tmp_path / "explicit")
    records = collect_runs(tmp_path / "runs").records
    plain = [r for r in records if r.norm_name == "gn" and not r.weight_standardization]
    assert plain and all(r.norm == "gn:num_groups=32" and r.norm_label == "GN (G=32)" for r in plain)
    (table,) = tables_from_records(records)
    assert [r.label for r in table.rows] == ["BN", "GN (G=32)", "GN (G=32) + WS"]
    ws = table.rows[2]
    assert ws.norm == "gn:num_groups=32+ws" and ws.norm_name == "gn" and ws.cells[2].mean == 0.75
    assert "| GN (G=32) + WS |" in render_markdown(table)
    explicit = collect_runs(tmp_path / "explicit").records
    assert explicit and all(r.norm == "bn" and r.norm_label == "BN" for r in explicit)  # false reads like absent
