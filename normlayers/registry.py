"""The normalization registry: names, typed arguments and metadata per layer.

Code that needs to know something about a normalization (does it use batch
statistics? can it be synchronized? how is it labelled in a table?) asks the
registry entry instead of doing ``isinstance`` checks, so that a layer added
later with :func:`register_norm` is handled everywhere without edits.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from torch import nn

from .pooling import Pooling
from .spec import NormSpec, NormSpecError, SpecLike, format_value, parse_norm_spec

__all__ = [
    "NormParam",
    "NormEntry",
    "ResolvedNorm",
    "register_norm",
    "list_norms",
    "get_norm_entry",
    "resolve_norm",
    "norm_label",
    "create_norm",
    "norm_layer",
    "find_norm_layers",
]

SPEC_ATTRIBUTE = "norm_spec"


@dataclass(frozen=True)
class NormParam:
    """One keyword argument of a layer: its type, default and allowed values."""

    name: str
    type: type
    default: Any
    allowed: str
    check: Callable[[Any], bool] | None = None
    nullable: bool = False
    short: str | None = None  # name used in the paper label, e.g. "G"
    literals: tuple[str, ...] = ()  # words allowed besides values of ``type`` (e.g. "auto"), lower case

    def coerce(self, value: Any, where: str) -> Any:
        """Return ``value`` converted to this parameter's type or raise one clear error."""
        if value is None and self.nullable:
            return None
        if isinstance(value, str) and value.strip().lower() in self.literals:
            return value.strip().lower()
        ok_type = (
            isinstance(value, bool)
            if self.type is bool
            else isinstance(value, int) and not isinstance(value, bool)
            if self.type is int
            else isinstance(value, (int, float)) and not isinstance(value, bool)
            if self.type is float
            else isinstance(value, self.type)
        )
        if not ok_type or (self.check is not None and not self.check(self.type(value))):
            raise NormSpecError(
                f"{where}: {self.name}={format_value(value)} is not allowed; {self.name} must be {self.allowed}"
            )
        return self.type(value)


@dataclass(frozen=True)
class NormEntry:
    """A registered normalization layer and the facts code may ask about it."""

    name: str
    factory: Callable[..., nn.Module]
    label: str
    description: str
    params: tuple[NormParam, ...] = ()
    uses_batch_stats: bool = False
    keeps_running_stats: bool = False
    group_param: str | None = None
    syncable: bool = False
    always_in_spec: tuple[str, ...] = field(default=())
    # Each statistic the layer computes and what it pools (see normlayers.pooling); () for none.
    pooling: tuple[Pooling, ...] = ()
    # The nonlinearity the layer ends in (e.g. "TLU"), or None. Such an entry takes an ``apply_act``
    # bool argument; models ask normlayers.activation instead of adding a ReLU after it.
    builtin_activation: str | None = None
    # Rules between arguments: (coerced kwargs, names given in the spec, where) -> kwargs, possibly completed,
    # or NormSpecError. E.g. BGN's num_groups=auto takes a default elements; elements alone means auto.
    check_args: Callable[[dict[str, Any], frozenset[str], str], dict[str, Any]] | None = None

    def param(self, name: str) -> NormParam:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def metadata(self) -> dict[str, Any]:
        """Flat, JSON-friendly facts about this entry (for records and ``normbench norms``)."""
        return {
            "name": self.name,
            "label": self.label,
            "uses_batch_stats": self.uses_batch_stats,
            "keeps_running_stats": self.keeps_running_stats,
            "group_param": self.group_param,
            "syncable": self.syncable,
            "builtin_activation": self.builtin_activation,
            "pooling": [p.metadata() for p in self.pooling],
            "params": {p.name: p.default for p in self.params},
            "description": self.description,
        }


@dataclass(frozen=True)
class ResolvedNorm:
    """A spec checked against its entry: canonical spec, full arguments, label."""

    entry: NormEntry
    spec: NormSpec
    kwargs: dict[str, Any]

    @property
    def label(self) -> str:
        # A group parameter (one with a short name) left null is not shown: GN's num_groups with channels_per_group.
        shown = [p for p in self.entry.params
                 if (p.short and self.kwargs[p.name] is not None)
                 or (self.kwargs[p.name] != p.default and not (p.short and self.kwargs[p.name] is None))]
        if not shown:
            return self.entry.label
        parts = [f"{p.short or p.name}={format_value(self.kwargs[p.name])}" for p in shown]
        return f"{self.entry.label} ({', '.join(parts)})"


_REGISTRY: dict[str, NormEntry] = {}


def register_norm(entry: NormEntry, *, replace: bool = False) -> NormEntry:
    """Add a layer to the registry (``replace=True`` to override an existing name)."""
    if entry.name in _REGISTRY and not replace:
        raise ValueError(f"a norm named {entry.name!r} is registered already")
    _REGISTRY[entry.name] = entry
    return entry


def list_norms() -> list[str]:
    """Registered names, in registration order (the order tables use)."""
    return list(_REGISTRY)


def get_norm_entry(name: str) -> NormEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise NormSpecError(
            f"unknown norm {name!r}{hint}; registered norms are: {', '.join(_REGISTRY)}"
        ) from None


def resolve_norm(spec: SpecLike) -> ResolvedNorm:
    """Check a spec's name and arguments and fill in defaults.

    The canonical spec keeps the arguments that differ from their defaults plus
    the entry's ``always_in_spec`` ones (the group parameter), so ``bgn`` and
    ``bgn:num_groups=1`` name the same layer, directory and table row.
    """
    parsed = parse_norm_spec(spec)
    entry = get_norm_entry(parsed.name)
    known = {p.name: p for p in entry.params}
    where = f"norm {str(parsed)!r}"
    for key in parsed.args:
        if key not in known:
            valid = ", ".join(known) if known else "none"
            raise NormSpecError(f"{where}: unknown argument {key!r}; {entry.name} takes: {valid}")
    kwargs = {p.name: p.coerce(parsed.args.get(p.name, p.default), where) for p in entry.params}
    if entry.check_args is not None:
        kwargs = entry.check_args(kwargs, frozenset(parsed.args), where)
    canonical = {  # an always-shown argument left null by a rule (GN's num_groups with channels_per_group) is dropped
        k: v for k, v in kwargs.items()
        if (k in entry.always_in_spec or v != known[k].default) and not (k in entry.always_in_spec and v is None)
    }
    return ResolvedNorm(entry, NormSpec.make(entry.name, canonical), kwargs)


def norm_label(spec: SpecLike) -> str:
    """The label a paper table uses for this spec, e.g. ``BGN (G=1)``."""
    return resolve_norm(spec).label


def create_norm(spec: SpecLike, num_channels: int, *, activation: bool = True) -> nn.Module:
    """Build the normalization layer ``spec`` for ``num_channels`` channels.

    The returned module carries its canonical spec as ``module.norm_spec`` so that
    :func:`find_norm_layers` can find registry layers in any model.
    ``activation=False`` says the model puts no activation after this slot: a
    norm with a built-in nonlinearity (FRN's TLU, EvoNorm) is then built with
    ``apply_act=false`` (see :mod:`normlayers.activation`); other norms ignore it.
    """
    resolved = resolve_norm(spec)
    if not activation and resolved.entry.builtin_activation is not None and resolved.kwargs.get("apply_act", True):
        resolved = resolve_norm(NormSpec.make(resolved.entry.name, {**resolved.spec.args, "apply_act": False}))
    if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
        raise NormSpecError(f"norm {str(resolved.spec)!r}: num_channels must be a positive integer, got {num_channels!r}")
    module = resolved.entry.factory(num_channels, **resolved.kwargs)
    setattr(module, SPEC_ATTRIBUTE, resolved.spec)
    return module


def norm_layer(spec: SpecLike) -> Callable[[int], nn.Module]:
    """A ``norm_layer=`` callable (``channels -> module``) for torchvision models.

    The spec is resolved now, so a typo fails before the model is built; the
    result is a ``functools.partial`` and therefore picklable.
    """
    resolved = resolve_norm(spec)
    return functools.partial(create_norm, resolved.spec)


def find_norm_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module, ResolvedNorm]]:
    """Yield ``(qualified name, module, resolved spec)`` for every registry layer in ``model``."""
    for name, module in model.named_modules():
        spec = getattr(module, SPEC_ATTRIBUTE, None)
        if isinstance(spec, NormSpec):
            yield name, module, resolve_norm(spec)
