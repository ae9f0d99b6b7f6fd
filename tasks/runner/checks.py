"""Range rules for config fields, declared next to the field and checked before anything runs.

jsonargparse already refuses wrong types and values outside a ``Literal[...]``;
what it cannot know is that a learning rate must be a finite number above zero
or that a fraction lies in (0, 1]. A field declares that with :func:`checked`,
and :func:`check_fields` walks any config dataclass, so every task's config is
checked the same way and every refusal names the dotted key, the value and what
is allowed::

    base_lr: float = checked(0.1, POSITIVE)
    # optim.base_lr=-1.0 is not allowed: it must be a finite number > 0
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .errors import ConfigError

__all__ = [
    "Rule", "checked", "check_fields", "suggest", "POSITIVE", "NON_NEGATIVE", "FRACTION", "PROBABILITY",
    "at_least", "between", "positive_int", "non_negative_int",
]

_RULE = "normbench_rule"


@dataclass(frozen=True)
class Rule:
    """A test of a field's value and the words that say what is allowed."""

    test: Callable[[Any], bool]
    allowed: str

    def accepts(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


POSITIVE = Rule(lambda v: _number(v) and v > 0, "a finite number > 0")
NON_NEGATIVE = Rule(lambda v: _number(v) and v >= 0, "a finite number >= 0")
FRACTION = Rule(lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]")
PROBABILITY = Rule(lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]")


def at_least(minimum: int) -> Rule:
    return Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum, f"an integer >= {minimum}")


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Rule:
    left, right = "(" if low_open else "[", ")" if high_open else "]"

    def test(v: Any) -> bool:
        if not _number(v):
            return False
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    return Rule(test, f"a number in {left}{low:g}, {high:g}{right}")


positive_int = at_least(1)
non_negative_int = at_least(0)


def checked(default: Any = dataclasses.MISSING, rule: Rule | None = None, *,
            default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field whose value ``rule`` must accept (see :func:`check_fields`)."""
    metadata = {_RULE: rule} if rule is not None else {}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def check_fields(cfg: Any, prefix: str = "") -> None:
    """Raise ConfigError for the first field (depth first) whose value its rule refuses.

    List values are checked element by element.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_fields(value, f"{key}.")
            continue
        rule: Rule | None = f.metadata.get(_RULE)
        if rule is None:
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if not rule.accepts(item):
                shown = repr(item) if item is value else f"{value!r} (element {item!r})"
                raise ConfigError(f"{key}={shown} is not allowed: it must be {rule.allowed}")


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
