"""Typed configs from YAML files and ``--key value`` overrides (jsonargparse), for the CLI and for sweeps.

Abbreviated options are refused (``--optim.schedul`` must not silently mean
``--optim.schedule``), and an unknown key gets the nearest valid one suggested.
Library code (sweeps, benchmarks) calls :func:`parse_config` with
``raise_errors=True`` and gets a :class:`ConfigError`; the CLI gets one line on
stderr and exit code 2.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import TYPE_CHECKING, Sequence

from jsonargparse import ActionConfigFile, ArgumentParser

from ..exit_codes import EXIT_USAGE
from .checks import suggest
from .config import RunConfig
from .errors import ConfigError

if TYPE_CHECKING:
    from .task import Task

__all__ = ["config_parser", "parse_config"]

_UNKNOWN_OPTION = re.compile(r"unrecognized arguments: (--[\w.\-]+)|Group '([\w.]+)' does not accept option '(\w+)'"
                             r"|Key '([\w.]+)' is not expected")


class _Parser(ArgumentParser):
    """jsonargparse's parser with a one-line error (and a suggestion) instead of the usage text."""

    raise_errors = False

    def _hint(self, detail: str) -> str:
        match = _UNKNOWN_OPTION.search(detail)
        if not match:
            return ""
        options = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        if match.group(1):
            return suggest(match.group(1), options)
        key = f"--{match.group(2)}.{match.group(3)}" if match.group(2) else f"--{match.group(4)}"
        return suggest(key, options)

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        detail = " ".join(str(message).split())
        detail += self._hint(detail)
        if self.raise_errors:
            raise ConfigError(detail)
        sys.stderr.write(f"{self.prog}: error: {detail}\n(see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def config_parser(task: "Task", raise_errors: bool = False) -> ArgumentParser:
    parser = _Parser(
        prog=f"normbench run {task.name}",
        description=f"{task.description} Options can come from --config YAML files and be overridden one by one.",
        env_prefix="NORMBENCH",
        default_env=False,
        allow_abbrev=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s), applied in order")
    parser.add_class_arguments(task.config_class, nested_key=None, fail_untyped=True)
    parser.raise_errors = raise_errors
    return parser


_parsers: dict[tuple[str, bool], ArgumentParser] = {}


def parse_config(task: "Task", args: Sequence[str], raise_errors: bool = False) -> RunConfig:
    """Config of ``task`` from command-line style ``args`` (``--config FILE``, ``--key value``).

    Parsers are built once per task (building one costs more than parsing), so a sweep's
    expansion stays fast.
    """
    key = (task.name, raise_errors)
    if key not in _parsers or _parsers[key].prog != f"normbench run {task.name}":
        _parsers[key] = config_parser(task, raise_errors)
    parser = _parsers[key]
    namespace = parser.instantiate(parser.parse_args(list(args)))
    fields = {f.name for f in dataclasses.fields(task.config_class)}
    return task.config_class(**{k: v for k, v in vars(namespace).items() if k in fields})
