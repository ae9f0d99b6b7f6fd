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


_EXPECTED = re.compile(r'Parser key "([\w.]+)": Expected a (.+?)\. Got value: (.*)$')
_UNION = re.compile(r'Parser key "([\w.]+)": Does not validate against any of the Union subtypes '
                    r'Subtypes: \[(.*?)\] Errors:.* Given value: (.*)$')
_LITERAL = re.compile(r"typing\.Literal\[(.*)\]")
_CLASS = re.compile(r"<class '(\w+)'>")
_TYPE_WORDS = {"int": "an integer", "float": "a finite number", "str": "a string", "bool": "true or false",
               "NoneType": "null (the default)"}


def _type_words(expected: str) -> str:
    expected = expected.strip()
    literal = _LITERAL.fullmatch(expected)
    if literal:
        return " or ".join(c.strip().strip("'\"") for c in literal.group(1).split(","))
    kind = _CLASS.fullmatch(expected)
    return _TYPE_WORDS.get(kind.group(1), kind.group(1)) if kind else expected


def _plain_type_error(detail: str) -> str:
    """jsonargparse's 'Parser key "k": Expected a typing.Literal[...]. Got value: v' in the suite's own words."""
    union = _UNION.search(detail)
    if union:
        key, subtypes, value = union.groups()
        parts = re.findall(r"typing\.Literal\[[^\]]*\]|<class '\w+'>", subtypes)
        return f"{key}={value!r} is not allowed: it must be {' or '.join(_type_words(p) for p in parts)}"
    match = _EXPECTED.search(detail)
    if not match:
        return detail
    key, expected, value = match.groups()
    literal = _LITERAL.fullmatch(expected.strip())
    if literal:
        choices = [c.strip().strip("'\"") for c in literal.group(1).split(",")]
        return f"{key}={value!r} is not allowed: choose one of {', '.join(choices)}{suggest(value, choices)}"
    return f"{key}={value!r} is not allowed: it must be {_type_words(expected)}"


class _Parser(ArgumentParser):
    """jsonargparse's parser with a one-line error (and a suggestion) instead of the usage text."""

    raise_errors = False
    top_prog = ""

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
        detail = _plain_type_error(" ".join(str(message).split()))
        detail += self._hint(detail)
        if self.raise_errors:
            raise ConfigError(detail)
        prog = _Parser.top_prog or self.prog  # a nested (list item) parser speaks for the command
        sys.stderr.write(f"{prog}: error: {detail}\n(see {prog} --help)\n")
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
    # jsonargparse parses a list of dataclasses (summary, hypotheses) with parsers of this class that it
    # builds itself; they must raise like the top-level one, not print and exit.
    _Parser.raise_errors, _Parser.top_prog = raise_errors, parser.prog
    try:
        namespace = parser.instantiate(parser.parse_args(list(args)))
    finally:
        _Parser.raise_errors, _Parser.top_prog = False, ""
    fields = {f.name for f in dataclasses.fields(task.config_class)}
    return task.config_class(**{k: v for k, v in vars(namespace).items() if k in fields})
