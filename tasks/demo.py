"""``make demo``: the quick benchmark on the embedded data set, then the report.

Runs configs/sweeps/quick.yaml (six norms x three batch sizes on Fashion-MNIST,
resumable: a second ``make demo`` only redoes what is missing) and writes the
report to runs/quick/report, printing the main table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .exit_codes import EXIT_INTERRUPTED
from .sweep.command import sweep_command

SWEEP = Path(__file__).resolve().parents[1] / "configs" / "sweeps" / "quick.yaml"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    out_dir = args[0] if args else "runs"
    start = time.perf_counter()
    code = sweep_command([str(SWEEP), "--out-dir", out_dir])
    if code == EXIT_INTERRUPTED:
        return code
    from reports.cli import main as report_main

    report_code = report_main([str(Path(out_dir) / "quick")])
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s")
    return code or report_code


if __name__ == "__main__":
    sys.exit(main())
