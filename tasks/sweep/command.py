"""``normbench sweep FILE``: expand, skip what is done, launch the rest, summarize."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import Sequence

from ..exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE
from ..runner.errors import ConfigError
from .estimate import estimate_lines, timeout_minutes
from .expand import LAUNCHABLE, PlannedRun, expand_sweep
from .launchers import LocalLauncher, RunResult, SubmititLauncher
from .spec import load_sweep


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="normbench sweep", description="Run a grid of runs described in a sweep file.")
    p.add_argument("file", help="sweep YAML, e.g. configs/sweeps/quick.yaml")
    p.add_argument("--launcher", choices=["local", "submitit"], help="default: the sweep file's, else local")
    p.add_argument("--parallel", type=int, help="local launcher: runs at once (processes)")
    p.add_argument("--threads-per-run", type=int, help="torch threads per run when running in parallel")
    p.add_argument("--out-dir", help="override the sweep's out_dir")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, run nothing")
    p.add_argument("--no-wait", action="store_true", help="submitit: submit and return without waiting")
    return p


def _describe(runs: list[PlannedRun]) -> None:
    width = max((len(r.run_dir.name) for r in runs), default=10)
    for r in runs:
        note = f"  ({r.reason})" if r.reason and r.state in ("done", "retry", "invalid", "running") else ""
        name = r.label if r.state == "invalid" else r.run_dir.name
        print(f"{r.state:7} {name:{width}}{note}")
    counts = Counter(r.state for r in runs)
    print(f"\n{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def summarize(planned: list[PlannedRun], results: list[RunResult]) -> int:
    """Print what happened to every grid point; exit 1 when any run failed or was refused."""
    # done before the sweep started, or finished by another launcher meanwhile
    skipped = sum(r.state == "done" for r in planned) + sum(r.status == "skipped" for r in results)
    invalid = [r for r in planned if r.state == "invalid"]
    busy = [r for r in planned if r.state == "running"]
    by_status: dict[str, list[RunResult]] = {}
    for res in results:
        by_status.setdefault(res.status, []).append(res)
    busy_names = [r.run_dir.name for r in busy] + [r.run.run_dir.name for r in by_status.get("running_elsewhere", [])]
    parts = [f"{len(by_status.get('finished', []))} finished", f"{skipped} skipped (done before)"]
    for status in ("diverged", "failed", "refused"):
        if by_status.get(status):
            parts.append(f"{len(by_status[status])} {status}")
    if busy_names:
        parts.append(f"{len(busy_names)} running elsewhere")
    if invalid:
        parts.append(f"{len(invalid)} invalid")
    print("\nsweep summary: " + ", ".join(parts))
    for res in by_status.get("diverged", []) + by_status.get("failed", []) + by_status.get("refused", []):
        print(f"  {res.status:8} {res.run.run_dir.name}: {res.message}")
    for name in busy_names:
        print(f"  running elsewhere {name} (rerun the sweep later to pick it up if that process stops)")
    for run in invalid:
        print(f"  invalid  {run.label}: {run.reason}")
    failed = by_status.get("failed") or by_status.get("refused") or invalid
    return EXIT_RUN_FAILED if failed else EXIT_OK


def sweep_command(args: Sequence[str]) -> int:
    opts = _parser().parse_args(list(args))
    try:
        sweep = load_sweep(opts.file)
        if opts.out_dir:
            from dataclasses import replace
            from pathlib import Path

            sweep = replace(sweep, out_dir=Path(opts.out_dir))
        print(f"sweep {sweep.name}: checking the grid (configs, norms, a dry forward pass per model)...")
        planned = expand_sweep(sweep)
    except ConfigError as exc:
        print(f"normbench sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sweep_dir = sweep.out_dir / sweep.name
    print(f"sweep {sweep.name}: {len(planned)} runs in {sweep_dir}")
    if opts.dry_run:
        _describe(planned)
        for line in estimate_lines(planned, sweep.launcher.seconds_per_step, sweep.launcher.slurm.get("timeout_min")):
            print(line)
        return EXIT_OK
    todo = [r for r in planned if r.state in LAUNCHABLE]
    launcher_name = opts.launcher or sweep.launcher.name
    if launcher_name == "submitit":
        slurm = dict(sweep.launcher.slurm)
        derived = timeout_minutes(todo, sweep.launcher.seconds_per_step)
        if "timeout_min" not in slurm and derived is not None:  # the time limit follows from the printed estimate
            slurm["timeout_min"] = derived
            print(f"sweep {sweep.name}: timeout_min={derived} from the estimate (normbench sweep --dry-run shows it)")
        launcher = SubmititLauncher(sweep_dir / ".submitit", slurm, wait=not opts.no_wait)
    else:
        launcher = LocalLauncher(
            parallel=opts.parallel or sweep.launcher.parallel,
            threads_per_run=opts.threads_per_run or sweep.launcher.threads_per_run,
            log_dir=sweep_dir / ".logs",
        )
    try:
        results = launcher.launch(todo) if todo else []
    except ConfigError as exc:
        print(f"normbench sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, SystemExit):
        print(f"\nsweep interrupted; finished runs are kept and `normbench sweep {opts.file}` resumes the rest",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    code = summarize(planned, results)
    print(f"runs: {os.path.relpath(sweep_dir)}  (report: normbench report {os.path.relpath(sweep_dir)})")
    return code
