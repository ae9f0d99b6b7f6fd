"""``make demo``: the five-task benchmark in miniature, then the report.

Runs configs/sweeps/demo.yaml (BN, LN, GN and BGN on classification, NAS, adversarial
training, few-shot learning and domain adaptation, two settings of each task's table
axis, one seed) into ``<out_dir>/demo`` and ends with the cross-task summary table in the
terminal; the full report goes to ``<out_dir>/demo/report``. The sweep resumes: a second
``make demo`` only redoes what is missing, and Ctrl-C loses at most the runs in flight.

Usage: ``python -m tasks.demo [OUT_DIR] [--sweep FILE]`` (default ``runs`` and the demo
sweep; ``--sweep configs/sweeps/quick.yaml`` gives the fuller classification grid).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from .exit_codes import EXIT_INTERRUPTED
from .sweep.command import sweep_command

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEMO_SWEEP = CONFIGS / "sweeps" / "demo.yaml"


def _sweep_name(sweep: Path) -> str:
    """The folder the sweep writes to (its ``name:``), read without running anything."""
    try:
        return str(yaml.safe_load(sweep.read_text())["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return sweep.stem  # the sweep command reports the real problem with the file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", nargs="?", default="runs", help="where run folders go (default: runs)")
    parser.add_argument("--sweep", type=Path, default=DEMO_SWEEP, help="sweep file (default: configs/sweeps/demo.yaml)")
    parser.add_argument("--print", dest="show", choices=("all", "summary", "none"), default="summary",
                        help="what of the report to print at the end (default: the cross-task summary)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    start = time.perf_counter()
    code = sweep_command([str(args.sweep), "--out-dir", args.out_dir])
    if code == EXIT_INTERRUPTED:
        return code
    from reports.cli import main as report_main

    runs = Path(args.out_dir) / _sweep_name(args.sweep)
    report_code = report_main([str(runs), "--print", args.show])
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; the report: {runs / 'report' / 'index.html'}")
    return code or report_code


if __name__ == "__main__":
    sys.exit(main())
