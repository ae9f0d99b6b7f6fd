"""``normbench run <task>``: parse a typed config (YAML + overrides) and execute one run."""

from __future__ import annotations

import os
import sys
from typing import Sequence

from .data.errors import DataError
from .exit_codes import EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE
from .registry import UnknownTaskError, get_task, list_tasks
from .runner.errors import ConfigError
from .runner.parse import parse_config
from .runner.run import RunOutcome, execute


def _finished_line(outcome: RunOutcome) -> str:
    record = outcome.record or {}
    metric = record.get("primary_metric", "")
    value = record.get(metric)
    shown = f"{metric}={value:.4f}" if isinstance(value, float) else "no test metric"
    speed = record.get("train_images_per_s")
    rel = os.path.relpath(outcome.run_dir)
    return f"finished: {rel}: {shown}, {record.get('wall_time_s', 0):.1f}s" + (f", {speed:.0f} img/s" if speed else "")


def run_command(args: Sequence[str]) -> int:
    if not args or args[0].startswith("-"):
        print(f"usage: normbench run <task> [--config FILE] [options]; tasks: {', '.join(list_tasks())}", file=sys.stderr)
        return EXIT_USAGE
    try:
        task = get_task(args[0])
    except UnknownTaskError as exc:
        print(f"normbench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cfg = parse_config(task, args[1:])  # jsonargparse prints its own one-line errors and exits 2
    try:
        outcome = execute(cfg, task, argv=args[1:])
    except ConfigError as exc:
        print(f"normbench: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as exc:
        print(f"normbench: data not available: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rel = os.path.relpath(outcome.run_dir)
    if outcome.status == "skipped":
        print(f"skipped: {rel} ({outcome.message}; delete it to rerun)")
        return EXIT_OK
    if outcome.status == "running_elsewhere":
        print(f"running elsewhere: {rel} ({outcome.message}); rerun later to resume it if that process stops",
              file=sys.stderr)
        return EXIT_RUN_FAILED
    if outcome.status != "finished":
        print(f"{outcome.status}: {rel}: {outcome.message}", file=sys.stderr)
        return EXIT_RUN_FAILED
    print(_finished_line(outcome))
    return EXIT_OK
