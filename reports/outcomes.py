"""Per-item outcomes beside a run record (``outcomes.json``), read for item-level resampling.

A run scores one list of items (test images, episodes, target images); the
record's metric is the mean of one column over them. Two runs with the same
seed that scored the *same* items (same ``item_ids_hash``, same count) can be
compared item by item, which refines the seed-level test
(:mod:`reports.compare`). The format is fixed in docs/run-record.md::

    {"format": "normbench-outcomes/1",
     "sets": [{"name": "test", "items": "fashion_mnist test images 0..9999",
               "item_ids_hash": "0123456789abcdef", "n": 10000,
               "columns": {"test/acc": "0110..."},          # binary outcomes, one character per item
               "values": {"test/episode_acc": [0.8, ...]},  # other per-item values
               "reduce": {"test/acc": "mean"}}]}

A column is used for a metric only when it is named after it and its mean
reproduces the record's value (which also proves the file belongs to the run).
Records written before this file existed may name a few-shot episode file
(:mod:`reports.episodes`); it is read the same way. Nothing here raises on a
bad file: a missing, truncated or malformed file comes back as a note, and the
comparison falls back to seed level with that reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .episodes import EPISODE_FILE_KEY, MEAN_TOLERANCE, episodes_of
from .record import RunRecord

OUTCOMES_FILE = "outcomes.json"
FORMAT = "normbench-outcomes/1"
ITEMS_HASH_KEY = "eval_items_hash"  # a record that has it wrote an outcome file


@dataclass(frozen=True)
class ItemOutcomes:
    """One run's per-item values behind one metric, in the file's item order."""

    path: Path
    set_name: str
    item_ids_hash: str
    values: np.ndarray = field(compare=False, repr=False)

    @property
    def n(self) -> int:
        return int(self.values.size)

    @property
    def mean(self) -> float:
        return float(self.values.mean())


class OutcomeFileError(ValueError):
    """An outcome file that cannot be used; the message names the file and the problem."""


def _column(path: Path, where: str, text: Any, n: int) -> np.ndarray:
    if not isinstance(text, str) or set(text) - {"0", "1"}:
        raise OutcomeFileError(f"{path}: {where} must be a string of '0' and '1'")
    if len(text) != n:
        raise OutcomeFileError(f"{path}: {where} has {len(text)} items, the set says n={n} (truncated?)")
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(float) - ord("0")


def _values(path: Path, where: str, items: Any, n: int) -> np.ndarray:
    if not isinstance(items, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise OutcomeFileError(f"{path}: {where} must be a list of numbers")
    if len(items) != n:
        raise OutcomeFileError(f"{path}: {where} has {len(items)} items, the set says n={n} (truncated?)")
    array = np.asarray(items, dtype=float)
    if not np.isfinite(array).all():
        raise OutcomeFileError(f"{path}: {where} holds a value that is not finite")
    return array


def _set(path: Path, i: int, entry: Any) -> list[tuple[str, ItemOutcomes]]:
    where = f"sets[{i}]"
    if not isinstance(entry, dict):
        raise OutcomeFileError(f"{path}: {where} must be an object")
    name, digest, n = entry.get("name"), entry.get("item_ids_hash"), entry.get("n")
    if not isinstance(name, str) or not isinstance(digest, str) or not digest:
        raise OutcomeFileError(f"{path}: {where} needs a name and an item_ids_hash (strings)")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise OutcomeFileError(f"{path}: {where}.n must be a positive integer, got {n!r}")
    columns, values = entry.get("columns", {}), entry.get("values", {})
    if not isinstance(columns, dict) or not isinstance(values, dict):
        raise OutcomeFileError(f"{path}: {where}.columns and .values must be objects")
    found = [(m, _column(path, f"{where}.columns.{m}", text, n)) for m, text in columns.items()]
    found += [(m, _values(path, f"{where}.values.{m}", items, n)) for m, items in values.items()]
    return [(metric, ItemOutcomes(path, name, digest, array)) for metric, array in found]


@functools.lru_cache(maxsize=256)
def read_outcome_file(path: Path) -> dict[str, list[ItemOutcomes]]:
    """Every column of one file, by metric name (a list: a name may appear in several sets)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OutcomeFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OutcomeFileError(f"{path}: not valid JSON (truncated?): {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise OutcomeFileError(f"{path}: format must be {FORMAT!r}, got {found!r}")
    if not isinstance(data.get("sets"), list):
        raise OutcomeFileError(f"{path}: key 'sets' must be a list")
    by_metric: dict[str, list[ItemOutcomes]] = {}
    for i, entry in enumerate(data["sets"]):
        for metric, outcomes in _set(path, i, entry):
            by_metric.setdefault(metric, []).append(outcomes)
    return by_metric


def _from_episodes(record: RunRecord, metric: str) -> tuple[ItemOutcomes | None, str | None]:
    """An old few-shot episode file as item outcomes (the items: its episode hash and numbers)."""
    found, note = episodes_of(record, metric)
    if found is None:
        return None, note
    ids = f"{found.sha256}:{','.join(map(str, found.episodes))}"
    digest = hashlib.sha256(ids.encode()).hexdigest()[:16]
    return ItemOutcomes(found.path, found.name, digest, found.accuracies), None


def outcomes_of(record: RunRecord, metric: str) -> tuple[ItemOutcomes | None, str | None]:
    """The per-item values behind `metric` of a finished record, or (None, why not).

    (None, None) when the run wrote no outcome file and claims none: nothing to
    refine, nothing wrong. Example::

        items, note = outcomes_of(record, "test/acc")
        items.item_ids_hash, items.n  # ("0123456789abcdef", 10000)
    """
    if metric not in record.metrics or not math.isfinite(record.metrics[metric]):
        return None, None
    path = record.path.parent / OUTCOMES_FILE
    if not path.is_file():
        if EPISODE_FILE_KEY in record.raw:
            return _from_episodes(record, metric)
        if ITEMS_HASH_KEY in record.raw:
            return None, f"{path}: missing (the record has {ITEMS_HASH_KEY}); compared at seed level"
        return None, None
    try:
        columns = read_outcome_file(path)
    except OutcomeFileError as exc:
        return None, f"{exc}; compared at seed level"
    candidates = columns.get(metric, [])
    if len(candidates) != 1:
        found = "no column" if not candidates else f"{len(candidates)} sets with a column"
        return None, f"{path}: {found} named {metric!r}; compared at seed level"
    outcomes = candidates[0]
    value = record.metrics[metric]
    if abs(outcomes.mean - value) > MEAN_TOLERANCE:
        return None, (f"{path}: the mean of column {metric!r} is {outcomes.mean!r}, the record says {value!r}; "
                      "compared at seed level")
    return outcomes, None


def pairing_problem(a: ItemOutcomes, b: ItemOutcomes) -> str | None:
    """Why two runs' outcomes cannot be paired item by item (another item list), or None."""
    if a.item_ids_hash != b.item_ids_hash or a.n != b.n:
        return (f"{a.path} and {b.path}: other item lists (hash {a.item_ids_hash[:12]}, n={a.n} vs "
                f"{b.item_ids_hash[:12]}, n={b.n}); compared at seed level")
    return None
