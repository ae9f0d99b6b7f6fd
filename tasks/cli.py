"""The ``normbench`` command line.

    normbench run <task> [--config FILE] [--key value ...]   one run (``--print_config`` shows it)
    normbench sweep FILE [--launcher local|submitit] [--dry-run]   a grid of runs
    normbench report RUNS_DIR [--out DIR] [--wandb ENTITY/PROJECT]   tables, plots, W&B report
    normbench norms                                           the normalization registry

Errors a user can fix (bad config, missing data) print one line and exit with
code 2; a run that fails or diverges exits with 1 after writing its record.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from .exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE


def _print_norms() -> int:
    from normlayers import get_norm_entry, list_norms

    rows = []
    for name in list_norms():
        e = get_norm_entry(name)
        group = f"{e.group_param}={e.param(e.group_param).default}" if e.group_param else "-"
        flags = [("yes" if v else "no") for v in (e.uses_batch_stats, e.keeps_running_stats, e.syncable)]
        rows.append([name, e.label, *flags, group, e.builtin_activation or "-", e.description])
    head = ["name", "label", "batch stats", "running", "sync", "group param", "activation", "description"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    for row in [head, *rows]:
        print(" ".join(cell.ljust(w) for cell, w in zip(row, widths)), row[-1])
    print("\nspec syntax: name or name:key=value,key=value (e.g. bgn:num_groups=4); see `normbench run <task> --help`")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):  # progress lines must reach a log file as they happen
        sys.stdout.reconfigure(line_buffering=True)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return EXIT_OK if args else EXIT_USAGE
    command, rest = args[0], args[1:]
    try:
        if command == "run":
            from .run_command import run_command

            return run_command(rest)
        if command == "sweep":
            from .sweep.command import sweep_command

            return sweep_command(rest)
        if command == "report":
            from reports.cli import main as report_main

            return report_main(rest)
        if command == "norms":
            return _print_norms()
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    print(f"normbench: unknown command {command!r}; use run, sweep, report or norms (normbench --help)", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
