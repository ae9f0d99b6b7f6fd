"""Normalization specs: one value that names a registry layer and its arguments.

A spec has one canonical string form, ``name`` or ``name:key=value,key=value``
(for example ``bgn:num_groups=1``), that works unchanged on the command line, in
YAML and as a run or table label. The structured form is a mapping with a ``name``
key plus the arguments (``{"name": "bgn", "num_groups": 1}``), which is what a
YAML config naturally holds. Both parse to the same :class:`NormSpec`, and
``str(spec)`` gives back the canonical string (arguments sorted by key), so two
runs of the same layer always get the same directory name and table row.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

__all__ = ["NormSpec", "NormSpecError", "SpecLike", "parse_norm_spec", "format_value"]


class NormSpecError(ValueError):
    """A normalization spec, argument or layer shape that cannot work.

    The message always says what was wrong and what is allowed, so that callers
    (the CLI, config validation) can show it as is, without a traceback.
    """


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")


def _parse_scalar(text: str) -> Any:
    """Turn the text of one argument value into int, float, bool, None or str.

    The rules are YAML's for the scalars a layer argument can take, so that
    ``bgn:eps=1e-3`` and ``{eps: 1e-3}`` mean the same thing (YAML 1.1 would
    read ``1e-3`` as a string; we do not).
    """
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null", "~"):
        return None
    try:
        return int(text, 10)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip()


def format_value(value: Any) -> str:
    """Canonical text of an argument value (inverse of the scalar parser)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return f"{value:.1f}"
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class NormSpec:
    """A registry name plus keyword arguments, hashable and order independent."""

    name: str
    kwargs: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.kwargs)

    def __str__(self) -> str:
        if not self.kwargs:
            return self.name
        inner = ",".join(f"{k}={format_value(v)}" for k, v in self.kwargs)
        return f"{self.name}:{inner}"

    def to_dict(self) -> dict[str, Any]:
        """The structured form (``{"name": ..., **kwargs}``), for YAML and JSON."""
        return {"name": self.name, **self.args}

    @classmethod
    def make(cls, name: str, kwargs: Mapping[str, Any] | None = None) -> "NormSpec":
        return cls(name, tuple(sorted((kwargs or {}).items())))


SpecLike = Union[str, NormSpec, Mapping[str, Any]]


def _parse_string(text: str) -> NormSpec:
    text = text.strip()
    name, sep, rest = text.partition(":")
    name = name.strip().lower()
    if not _NAME.match(name):
        raise NormSpecError(
            f"norm spec {text!r}: {name!r} is not a layer name; "
            "write 'name' or 'name:key=value,key=value', e.g. 'bgn:num_groups=1'"
        )
    kwargs: dict[str, Any] = {}
    if sep:
        if not rest.strip():
            raise NormSpecError(f"norm spec {text!r}: nothing after ':'; write e.g. 'bgn:num_groups=1'")
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not _KEY.match(key) or not value.strip():
                raise NormSpecError(
                    f"norm spec {text!r}: argument {item.strip()!r} is not of the form key=value"
                )
            if key in kwargs:
                raise NormSpecError(f"norm spec {text!r}: argument {key!r} is given twice")
            kwargs[key] = _parse_scalar(value)
    return NormSpec.make(name, kwargs)


def _parse_mapping(mapping: Mapping[str, Any]) -> NormSpec:
    if "name" not in mapping:
        raise NormSpecError(
            f"norm spec {dict(mapping)!r}: a mapping needs a 'name' key, e.g. {{name: bgn, num_groups: 1}}"
        )
    name = mapping["name"]
    if not isinstance(name, str):
        raise NormSpecError(f"norm spec {dict(mapping)!r}: 'name' must be a string")
    kwargs = {str(k): v for k, v in mapping.items() if k != "name"}
    base = _parse_string(name)  # allows {name: "bgn:num_groups=2"} too
    merged = {**base.args}
    for key, value in kwargs.items():
        if not _KEY.match(key):
            raise NormSpecError(f"norm spec {dict(mapping)!r}: {key!r} is not an argument name")
        if key in merged:
            raise NormSpecError(f"norm spec {dict(mapping)!r}: argument {key!r} is given twice")
        merged[key] = _parse_scalar(value) if isinstance(value, str) else value
    return NormSpec.make(base.name, merged)


def parse_norm_spec(spec: SpecLike) -> NormSpec:
    """Parse any accepted spec form into a :class:`NormSpec` (names only, no validation).

    Validation of the name and the arguments against the registry happens in
    :func:`normlayers.registry.resolve_norm`, which also fills in defaults.
    """
    if isinstance(spec, NormSpec):
        return spec
    if isinstance(spec, str):
        return _parse_string(spec)
    if isinstance(spec, Mapping):
        return _parse_mapping(spec)
    raise NormSpecError(
        f"norm spec {spec!r} has type {type(spec).__name__}; "
        "use a string like 'bgn:num_groups=1' or a mapping like {name: bgn, num_groups: 1}"
    )
