"""Validate a decoded result.json (schema 1 or 2) into a :class:`RunRecord`.

Schema 2 records declare their metrics, table axis and grid coordinates;
schema 1 records (written only by the classification task) are upgraded on
read to what schema 2 would say about them, from a fixed table of what schema 1
wrote, so one reporter reads old and new sweeps alike. Every refusal is one
:class:`RecordError` naming the file and the key, because a report is most
useful exactly when a sweep is half done and one record is broken.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from .record import (
    BATCH_AXIS,
    DIRECTIONS,
    KINDS,
    LEGACY_AXIS,
    SCALAR_TYPES,
    UNITS,
    MetricDeclaration,
    RecordError,
    RunRecord,
    TableAxis,
)
from .summary_spec import parse_summary_columns

SUPPORTED_SCHEMAS = (1, 2)
STATUSES = ("finished", "failed", "diverged")

# What schema 1 wrote (docs/run-record.md, schema 1: only the classification task):
# name -> (label, unit). The direction of the primary is the record's primary_mode.
LEGACY_METRICS: dict[str, tuple[str, str]] = {
    "test/acc": ("test accuracy", "fraction"),
    "test/acc5": ("top-5 test accuracy", "fraction"),
}
# Schema 1 tested the weights of the last epoch (no checkpoint selection).
LEGACY_SELECTION = "last"

Types = tuple[type, ...]
_NUMBER: Types = (int, float)
# Grid coordinates the record already has as fields of its own; a coordinate of
# the same name would make the key ambiguous.
_RESERVED = ("task", "dataset", "model", "norm", "batch_size", "seed")

_COMMON: dict[str, Types] = {
    "schema": (int,), "run_id": (str,), "task": (str,), "dataset": (str,), "model": (str,),
    "norm": (str,), "norm_name": (str,), "norm_label": (str,), "norm_num_groups": (int, type(None)),
    "batch_size": (int,), "seed": (int,), "status": (str,),
}
_OPTIONAL: dict[str, Types] = {"sweep": (str, type(None)), "error": (str, type(None))}
_V1_REQUIRED: dict[str, Types] = {"primary_metric": (str,), "primary_mode": (str,), "report_metrics": (list,)}
_V1_OPTIONAL: dict[str, Types] = {"world_size": (int,), "precision": (str,), "sync_norm": (bool,),
                                  "profile": (str,)}
_V2_REQUIRED: dict[str, Types] = {
    "coordinates": (dict,), "table_axis": (dict,), "axis_value": SCALAR_TYPES, "axis_label": (str,),
    "axis_order": _NUMBER, "axis_average": (bool,), "metric_declarations": (list,), "protocol": (dict,),
    "selection": (dict,), "world_size": (int,), "precision": (str,), "sync_norm": (bool,), "profile": (str,),
}
_V2_OPTIONAL: dict[str, Types] = {**_V1_REQUIRED, "selected_epoch": (int, type(None)), "compile": (bool,),
                                  "weight_standardization": (bool,)}
# Comparison fields (docs/run-record.md); absent from records written before them, read from either schema.
_KEY_FIELDS: dict[str, Types] = {"comparison": (dict,), "comparison_hash": (str,), "overrides": (dict,),
                                 "train_order_hash": (str, type(None)), "row_coordinates": (list,),
                                 "reference_norm": (str,), "hypotheses": (list,), "contrasts": (list,)}
# A run with weight-standardized convolutions is a row of its own, next to the plain norm's, in the same table.
WS_NORM_SUFFIX, WS_LABEL_SUFFIX = "+ws", " + WS"
_DECLARATION: dict[str, Types] = {"name": (str,), "label": (str,), "direction": (str,), "unit": (str,),
                                  "primary": (bool,), "interval": (str, type(None))}
_DECLARATION_OPTIONAL: dict[str, Types] = {"group": (str, type(None)), "short": (str, type(None)), "kind": (str,)}
_AXIS: dict[str, Types] = {"key": (str,), "label": (str,), "coordinates": (list,)}
_SELECTION: dict[str, Types] = {"rule": (str,), "monitor": (str, type(None))}


def _type_name(types: Types) -> str:
    names = {int: "int", str: "str", list: "list", float: "float", bool: "bool", dict: "object",
             type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(path: Path, data: dict[str, Any], spec: dict[str, Types], required: bool, where: str = "") -> None:
    """Type-check the keys of `spec` in `data`; `where` prefixes nested key names."""
    for key, types in spec.items():
        name = f"{where}{key}"
        if key not in data:
            if required:
                raise RecordError(f"{path}: missing key {name!r}")
            continue
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise RecordError(
                f"{path}: key {name!r} must be {_type_name(types)}, got {type(value).__name__} {value!r}")


def _one_of(path: Path, name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        spelled = " or ".join(map(repr, allowed)) if len(allowed) == 2 else "one of " + ", ".join(map(repr, allowed))
        raise RecordError(f"{path}: key {name!r} must be {spelled}, got {value!r}")


def _scalars(path: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    """A flat object of JSON scalars (str, int, float, bool; not null)."""
    for name, value in data[key].items():
        if not isinstance(value, SCALAR_TYPES):
            raise RecordError(f"{path}: key '{key}.{name}' must be str, int, float or bool, got {value!r}")
    return dict(data[key])


def comparison_hash(comparison: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of a comparison block (when a record lacks the hash)."""
    text = json.dumps(comparison, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _key_fields(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The comparison key, overrides, train-order hash, row coordinates and reference norm, checked."""
    _check(path, data, _KEY_FIELDS, required=False)
    rows = data.get("row_coordinates", [])
    if not all(isinstance(k, str) and k for k in rows):
        raise RecordError(f"{path}: key 'row_coordinates' must be a list of coordinate names, got {rows!r}")
    comparison = data.get("comparison")
    digest = data.get("comparison_hash")
    if comparison is not None and digest is None:
        digest = comparison_hash(comparison)
    return {"comparison": comparison, "comparison_hash": digest, "overrides": dict(data.get("overrides", {})),
            "train_order_hash": data.get("train_order_hash"), "row_coordinates": tuple(rows),
            "reference_norm": data.get("reference_norm")}


def _declarations(path: Path, items: list[Any]) -> tuple[MetricDeclaration, ...]:
    if not items:
        raise RecordError(f"{path}: key 'metric_declarations' must declare at least one metric")
    declared: list[MetricDeclaration] = []
    for i, item in enumerate(items):
        where = f"metric_declarations[{i}]"
        if not isinstance(item, dict):
            raise RecordError(f"{path}: key {where!r} must be object, got {type(item).__name__} {item!r}")
        _check(path, item, _DECLARATION, required=True, where=f"{where}.")
        _one_of(path, f"{where}.direction", item["direction"], DIRECTIONS)
        _one_of(path, f"{where}.unit", item["unit"], UNITS)
        _check(path, item, _DECLARATION_OPTIONAL, required=False, where=f"{where}.")
        _one_of(path, f"{where}.kind", item.get("kind", "result"), KINDS)
        if not item["name"]:
            raise RecordError(f"{path}: key '{where}.name' must not be empty")
        if item["interval"] == item["name"]:
            raise RecordError(f"{path}: key '{where}.interval' names the metric itself ({item['name']!r})")
        if any(d.name == item["name"] for d in declared):
            raise RecordError(f"{path}: key {where!r} declares {item['name']!r} a second time")
        declared.append(MetricDeclaration(item["name"], item["label"], item["direction"], item["unit"],
                                          item["primary"], item["interval"], item.get("group") or None,
                                          item.get("short") or None, item.get("kind", "result")))
    primaries = [d.name for d in declared if d.primary]
    if len(primaries) != 1:
        found = ", ".join(repr(p) for p in primaries) or "none"
        raise RecordError(f"{path}: key 'metric_declarations' must mark exactly one metric primary, found {found}")
    return tuple(declared)


def _legacy_declarations(path: Path, data: dict[str, Any], notes: list[str]) -> tuple[MetricDeclaration, ...]:
    """Schema 1 said only which metric is primary and its direction; the rest is LEGACY_METRICS."""
    if not all(isinstance(m, str) for m in data["report_metrics"]):
        raise RecordError(f"{path}: key 'report_metrics' must be a list of str")
    primary = data["primary_metric"]
    declared = []
    for name in dict.fromkeys([primary, *data["report_metrics"]]):
        if name not in LEGACY_METRICS:
            if name != primary:
                notes.append(f"{path}: schema-1 metric {name!r} left out: schema 1 did not declare "
                             f"what it means (known: {', '.join(LEGACY_METRICS)})")
            continue
        label, unit = LEGACY_METRICS[name]
        direction = data["primary_mode"] if name == primary else "max"
        declared.append(MetricDeclaration(name, label, direction, unit, name == primary))
    if not any(d.primary for d in declared):
        raise RecordError(f"{path}: schema-1 primary metric {primary!r} has no known meaning "
                          f"(schema 1 wrote only {', '.join(LEGACY_METRICS)}); rewrite the record as schema 2")
    return tuple(declared)


def _axis(path: Path, data: dict[str, Any], coordinates: dict[str, Any]) -> TableAxis:
    raw = data["table_axis"]
    _check(path, raw, _AXIS, required=True, where="table_axis.")
    spanned = raw["coordinates"]
    if not all(isinstance(c, str) for c in spanned):
        raise RecordError(f"{path}: key 'table_axis.coordinates' must be a list of str")
    missing = [c for c in spanned if c not in coordinates]
    if missing:
        raise RecordError(f"{path}: key 'table_axis.coordinates' names {missing[0]!r}, which 'coordinates' lacks")
    follows = raw.get("batch_size_follows", False)
    if not isinstance(follows, bool):
        raise RecordError(f"{path}: key 'table_axis.batch_size_follows' must be true or false, got {follows!r}")
    axis = TableAxis(raw["key"], raw["label"], tuple(spanned), follows)
    if axis.is_batch_size:
        if spanned:
            raise RecordError(f"{path}: key 'table_axis.coordinates' must be empty for the batch_size axis")
        if data["axis_value"] != data["batch_size"] or not isinstance(data["axis_value"], int):
            raise RecordError(f"{path}: key 'axis_value' must equal batch_size ({data['batch_size']}) on the "
                              f"batch_size axis, got {data['axis_value']!r}")
    if not math.isfinite(data["axis_order"]):
        raise RecordError(f"{path}: key 'axis_order' must be finite, got {data['axis_order']!r}")
    return axis


def _derived_fields_agree(path: Path, data: dict[str, Any], declared: tuple[MetricDeclaration, ...]) -> None:
    """Schema 2 still writes primary_metric/primary_mode/report_metrics; they must say what the declarations say."""
    primary = next(d for d in declared if d.primary)
    expected = {"primary_metric": primary.name, "primary_mode": primary.direction,
                "report_metrics": [d.name for d in declared]}
    for key, value in expected.items():
        if key in data and data[key] != value:
            raise RecordError(f"{path}: key {key!r} is {data[key]!r} but 'metric_declarations' says {value!r}")


def _metrics(path: Path, data: dict[str, Any], declared: tuple[MetricDeclaration, ...]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    names = [d.name for d in declared] + [d.interval for d in declared if d.interval]
    for name in dict.fromkeys(names):
        if name not in data:
            continue  # missing metrics are absent keys; a failed run may lack them
        if not _is_number(data[name]):
            raise RecordError(f"{path}: metric {name!r} must be a number, got {data[name]!r}")
        metrics[name] = float(data[name])
    if data["status"] == "finished":
        primary = next(d.name for d in declared if d.primary)
        if primary not in metrics:
            raise RecordError(f"{path}: finished run lacks its primary metric {primary!r}")
        if not math.isfinite(metrics[primary]):
            raise RecordError(f"{path}: finished run has a non-finite {primary!r}: {metrics[primary]}")
        for d in declared:
            if d.interval and d.name in metrics and d.interval not in metrics:
                raise RecordError(f"{path}: metric {d.name!r} declares interval {d.interval!r}, "
                                  "which this finished run lacks")
    return metrics


def parse_record(data: Any, path: Path) -> RunRecord:
    """Validate a decoded result.json (schema 1 or 2) and keep what the reporter needs.

    Raises RecordError naming the file and the key. A schema-1 record comes back
    upgraded: no coordinates, the batch-size axis, declarations from
    LEGACY_METRICS (metrics outside it are left out, each with a note in
    `RunRecord.notes`), selection "last". A run with ``weight_standardization``
    true reads as norm ``<spec>+ws`` labelled ``<label> + WS``: a row of its own
    in the plain norm's table (GN and GN + WS side by side).

    Example::

        record = parse_record(json.loads(text), Path("runs/quick/x/result.json"))
        record.primary.unit  # "fraction"
    """
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object, got {type(data).__name__}")
    _check(path, data, {"schema": (int,)}, required=True)
    if data["schema"] not in SUPPORTED_SCHEMAS:
        raise RecordError(f"{path}: record schema {data['schema']} is not supported "
                          f"(this reporter reads schemas {', '.join(map(str, SUPPORTED_SCHEMAS))})")
    legacy = data["schema"] == 1
    _check(path, data, _COMMON, required=True)
    _check(path, data, _OPTIONAL, required=False)
    _check(path, data, _V1_REQUIRED if legacy else _V2_REQUIRED, required=True)
    _check(path, data, _V1_OPTIONAL if legacy else _V2_OPTIONAL, required=False)
    _one_of(path, "status", data["status"], STATUSES)
    if data["batch_size"] < 1:
        raise RecordError(f"{path}: key 'batch_size' must be >= 1, got {data['batch_size']}")
    if "world_size" in data and data["world_size"] < 1:
        raise RecordError(f"{path}: key 'world_size' must be >= 1, got {data['world_size']}")
    if "primary_mode" in data:
        _one_of(path, "primary_mode", data["primary_mode"], DIRECTIONS)

    notes: list[str] = []
    if legacy:
        declared = _legacy_declarations(path, data, notes)
        coordinates: dict[str, Any] = {}
        protocol: dict[str, Any] = {}
        axis, axis_value, axis_label = LEGACY_AXIS, data["batch_size"], f"bs={data['batch_size']}"
        axis_order, axis_average = float(data["batch_size"]), False
        selection, monitor = LEGACY_SELECTION, None
    else:
        coordinates = _scalars(path, data, "coordinates")
        reserved = [k for k in coordinates if k in _RESERVED]
        if reserved:
            raise RecordError(f"{path}: key 'coordinates.{reserved[0]}' repeats a field of the record itself")
        protocol = _scalars(path, data, "protocol")
        axis = _axis(path, data, coordinates)
        axis_value, axis_label = data["axis_value"], data["axis_label"]
        axis_order, axis_average = float(data["axis_order"]), data["axis_average"]
        _check(path, data["selection"], _SELECTION, required=True, where="selection.")
        selection, monitor = data["selection"]["rule"], data["selection"]["monitor"]
        declared = _declarations(path, data["metric_declarations"])
        _derived_fields_agree(path, data, declared)
    # absent from records written before the option existed: plain convolutions
    ws = not legacy and data.get("weight_standardization", False)

    return RunRecord(
        path=path, schema=data["schema"], run_id=data["run_id"], sweep=data.get("sweep"),
        task=data["task"], dataset=data["dataset"], model=data["model"],
        norm=data["norm"] + WS_NORM_SUFFIX if ws else data["norm"], norm_name=data["norm_name"],
        norm_label=data["norm_label"] + WS_LABEL_SUFFIX if ws else data["norm_label"], weight_standardization=ws,
        norm_num_groups=data["norm_num_groups"], batch_size=data["batch_size"], seed=data["seed"],
        status=data["status"], error=data.get("error"),
        coordinates=coordinates, table_axis=axis, axis_value=axis_value, axis_label=axis_label,
        axis_order=axis_order, axis_average=axis_average, declarations=declared, protocol=protocol,
        selection=selection, selection_monitor=monitor,
        world_size=data.get("world_size", 1), precision=data.get("precision"),
        sync_norm=data.get("sync_norm", False), profile=data.get("profile"), compile=data.get("compile", False),
        metrics=_metrics(path, data, declared), raw=data, notes=tuple(notes),
        summary_columns=None if legacy else parse_summary_columns(path, data), **_key_fields(path, data),
    )


__all__ = ["BATCH_AXIS", "LEGACY_METRICS", "STATUSES", "SUPPORTED_SCHEMAS", "WS_LABEL_SUFFIX", "WS_NORM_SUFFIX",
           "parse_record"]
