"""``normbench run <task>``: parse a typed config (YAML + overrides) and execute one run."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Sequence

from jsonargparse import ActionConfigFile, ArgumentParser

from .config import ConfigError, RunConfig
from .exit_codes import EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE
from .registry import UnknownTaskError, get_task, list_tasks
from .runner.run import execute
from .runner.task import TaskDefinition


class _Parser(ArgumentParser):
    """jsonargparse's parser with a one-line error instead of the whole usage text.

    With ``raise_errors`` (sweeps), the error is raised as ConfigError instead.
    """

    raise_errors = False

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        detail = " ".join(str(message).split())
        if self.raise_errors:
            raise ConfigError(detail)
        sys.stderr.write(f"{self.prog}: error: {detail}\n(see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def config_parser(task: TaskDefinition, raise_errors: bool = False) -> ArgumentParser:
    parser = _Parser(
        prog=f"normbench run {task.name}",
        description=f"{task.description} Options can come from --config YAML files and be overridden one by one.",
        env_prefix="NORMBENCH",
        default_env=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s), applied in order")
    parser.add_class_arguments(task.config_class, nested_key=None, fail_untyped=True)
    parser.raise_errors = raise_errors
    return parser


def parse_config(task: TaskDefinition, args: Sequence[str], raise_errors: bool = False) -> RunConfig:
    """Config of ``task`` from command-line style ``args`` (``--config FILE``, ``--key value``)."""
    parser = config_parser(task, raise_errors)
    namespace = parser.instantiate(parser.parse_args(list(args)))
    fields = {f.name for f in dataclasses.fields(task.config_class)}
    return task.config_class(**{k: v for k, v in vars(namespace).items() if k in fields})


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
        from .logging_setup import loggers_factory

        outcome = execute(cfg, task, loggers_factory=loggers_factory)
    except ConfigError as exc:
        print(f"normbench: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rel = os.path.relpath(outcome.run_dir)
    if outcome.status == "skipped":
        print(f"skipped: {rel} ({outcome.message}; delete it to rerun)")
        return EXIT_OK
    if outcome.status != "finished":
        print(f"{outcome.status}: {rel}: {outcome.message}", file=sys.stderr)
        return EXIT_USAGE if outcome.refused else EXIT_RUN_FAILED
    record = outcome.record or {}
    metric = task.primary_metric
    value = record.get(metric)
    shown = f"{metric}={value:.4f}" if isinstance(value, float) else "no test metric"
    speed = record.get("train_images_per_s")
    print(f"finished: {rel}: {shown}, {record.get('wall_time_s', 0):.1f}s" + (f", {speed:.0f} img/s" if speed else ""))
    return EXIT_OK
