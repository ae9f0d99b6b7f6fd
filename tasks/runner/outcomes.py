"""Per-item outcomes (``outcomes.json`` beside ``result.json``): which test image or episode a run got right.

A record's accuracy is a mean over items. Two runs that scored the same items
can be compared item by item (paired), which detects much smaller differences
than comparing two means, and the hash of the item list proves that they did
score the same items. The file format is in docs/run-record.md; how a task hands
its outcomes over is in docs/tasks.md. It is one door for every task:

- the data module names its evaluation item lists: ``outcome_items``, a mapping
  {set name: :class:`ItemList`} (see :func:`image_items`);
- the LightningModule owns an :class:`ItemOutcomes` (attribute ``item_outcomes``)
  and hands it each test batch's per-item results, computed from the forward
  passes the test already makes (no extra pass);
- the runner (:class:`TestPasses`, a callback of every stage) closes each test
  pass (gathered over devices, each item once, in item order), names the last
  checkpoint's columns ``last/...`` as the record names its metrics
  (:func:`checkpoint_sets`), and writes the file (:func:`write_outcomes`).

Binary outcomes are stored as strings of '0'/'1' (10,000 test images: 10 kB),
non-binary ones (an episode's accuracy) as floats. Every column or value named
after a record metric reproduces it as its mean.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DistributedSampler, SequentialSampler

from .record import write_json_atomic

__all__ = ["OUTCOME_FILE", "FORMAT", "ItemList", "image_items", "item_ids_hash", "OutcomeSet", "ItemOutcomes",
           "TestPasses", "checkpoint_sets", "merge_sets", "write_outcomes", "read_outcomes", "outcome_record_fields",
           "eval_items_hash"]

OUTCOME_FILE = "outcomes.json"
FORMAT = "normbench-outcomes/1"
HASH_DIGITS = 16
ItemId = int | str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_DIGITS]


def item_ids_hash(source: str, ids: Sequence[ItemId]) -> str:
    """First 16 hex digits of sha256 of ``source`` and the ids: ``"<source>\\n<id>,<id>,..."`` in UTF-8.

    ``source`` names where the ids point (``fashion_mnist/test``, an episode set's
    fingerprint), so index 3 of another data set is another item.
    """
    return _sha(source + "\n" + ",".join(str(i) for i in ids))


def eval_items_hash(set_hashes: Sequence[str]) -> str:
    """The record's ``eval_items_hash``: 16 hex digits of sha256 of the sets' item_ids_hash, one per line, in file order."""
    return _sha("\n".join(set_hashes))


@dataclass(frozen=True)
class ItemList:
    """The items of one evaluation set, in the order its test loader delivers them.

    Attributes:
        name: short name of the set (``test``, ``robust``, ``target_test``); the module adds outcomes under it.
        words: what the items are, for a reader ("fashion_mnist test images 0..9999").
        source: what the ids index (hashed with them).
        ids: one identifier per loader position (an index into the original split, an episode number).
    """

    name: str
    words: str
    source: str
    ids: tuple[ItemId, ...]


def image_items(name: str, dataset: str, split: str, ids: Any, total: int) -> ItemList:
    """The ItemList of images ``ids`` (indices into ``dataset``'s ``split`` of ``total`` images), in loader order.

    Example:
        >>> image_items("test", "fashion_mnist", "test", range(3), 10).words
        'fashion_mnist test images: 3 of 10 (indices into the split)'
    """
    index = tuple(int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids))
    if index == tuple(range(total)):
        words = f"{dataset} {split} images 0..{total - 1}"
    else:
        words = f"{dataset} {split} images: {len(index)} of {total} (indices into the split)"
    return ItemList(name, words, f"{dataset}/{split}", index)


@dataclass
class OutcomeSet:
    """One set of the file: its items (words, hash, count) and per-item columns (bool) and values (float)."""

    name: str
    items: str
    item_ids_hash: str
    n: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def prefixed(self, prefix: str) -> OutcomeSet:
        return OutcomeSet(self.name, self.items, self.item_ids_hash, self.n,
                          {prefix + k: v for k, v in self.columns.items()}, {prefix + k: v for k, v in self.values.items()})

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "items": self.items, "item_ids_hash": self.item_ids_hash, "n": self.n,
                "columns": {k: (v.astype(np.uint8) + ord("0")).tobytes().decode() for k, v in self.columns.items()},
                "values": {k: [float(x) for x in v] for k, v in self.values.items()},
                "reduce": {k: "mean" for k in [*self.columns, *self.values]}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutcomeSet:
        """A set as :meth:`to_json` wrote it; raises ValueError naming what is wrong."""
        n = int(data["n"])
        codes = {k: np.frombuffer(v.encode(), dtype=np.uint8) for k, v in data.get("columns", {}).items()}
        if any(((c != ord("0")) & (c != ord("1"))).any() for c in codes.values()):
            raise ValueError(f"set {data['name']!r}: a column holds characters other than 0 and 1")
        columns = {k: c == ord("1") for k, c in codes.items()}
        values = {k: np.asarray(v, dtype=np.float64) for k, v in data.get("values", {}).items()}
        for key, column in [*columns.items(), *values.items()]:
            if len(column) != n:
                raise ValueError(f"set {data['name']!r}: {key} has {len(column)} items, the set says n={n}")
        return cls(str(data["name"]), str(data["items"]), str(data["item_ids_hash"]), n, columns, values)


@dataclass
class _Pending:
    loader: int
    count: int = 0
    columns: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    values: dict[str, list[torch.Tensor]] = field(default_factory=dict)


class ItemOutcomes:
    """What a LightningModule collects during one test pass: per-item tensors by set, in loader order.

    Example (in a module's ``test_step``, from the logits the test computes anyway)::

        self.item_outcomes.add("test", {"test/acc": logits.argmax(1) == labels})
    """

    def __init__(self) -> None:
        self._sets: dict[str, _Pending] = {}

    def clear(self) -> None:
        self._sets = {}

    def add(self, name: str, columns: dict[str, torch.Tensor] | None = None,
            values: dict[str, torch.Tensor | float] | None = None, dataloader_idx: int = 0) -> None:
        """Outcomes of the next items of set ``name`` (one batch of test loader ``dataloader_idx``).

        ``columns``: one bool per item; ``values``: one float per item (a float: one item). Every call
        of a set passes the same keys, with as many items each.
        """
        pending = self._sets.setdefault(name, _Pending(dataloader_idx))
        sizes = set()
        for key, tensor in (columns or {}).items():
            pending.columns.setdefault(key, []).append(tensor.detach().flatten().bool())
            sizes.add(tensor.numel())
        for key, value in (values or {}).items():
            tensor = torch.as_tensor(value, dtype=torch.float64).detach().flatten()
            pending.values.setdefault(key, []).append(tensor)
            sizes.add(tensor.numel())
        if len(sizes) != 1:
            raise ValueError(f"outcomes of set {name!r}: columns and values of one batch differ in length ({sorted(sizes)})")
        pending.count += sizes.pop()

    def close(self, trainer: L.Trainer) -> list[OutcomeSet]:
        """The pass's sets: gathered from every device, each item once, in item order; then cleared."""
        items: dict[str, ItemList] = getattr(trainer.datamodule, "outcome_items", None) or {}
        out = []
        for name, pending in self._sets.items():
            if name not in items:
                raise ValueError(f"outcomes of set {name!r}: the data module's outcome_items has no such set "
                               f"(it has {', '.join(items) or 'none'})")
            out.append(_close_set(trainer, items[name], pending))
        self.clear()
        return out


def _loader_positions(trainer: L.Trainer, loader: int, count: int) -> torch.Tensor:
    """The item positions (indices into the loader's data set) of the first ``count`` items this process saw."""
    loaders = trainer.test_dataloaders
    loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
    sampler = getattr(loaders[loader], "sampler", None)
    fixed = isinstance(sampler, SequentialSampler) or (isinstance(sampler, DistributedSampler) and not sampler.shuffle)
    if not fixed:
        raise ValueError(f"test loader {loader}: a {type(sampler).__name__} gives no fixed item order; per-item "
                         "outcomes need an unshuffled test loader")
    order = torch.as_tensor(list(sampler), dtype=torch.int64)
    if count > len(order):
        raise ValueError(f"test loader {loader}: {count} outcomes for {len(order)} items")
    return order[:count]


def _gather(trainer: L.Trainer, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` (1-D, any length per process) from every process, concatenated in rank order."""
    if trainer.world_size == 1:
        return tensor
    size = torch.tensor([len(tensor)], device=tensor.device)
    sizes = trainer.strategy.all_gather(size).flatten().tolist()
    padded = torch.zeros(max(sizes), dtype=tensor.dtype, device=tensor.device)
    padded[: len(tensor)] = tensor
    gathered = trainer.strategy.all_gather(padded).reshape(len(sizes), -1)
    return torch.cat([gathered[rank, :n] for rank, n in enumerate(sizes)])


def _close_set(trainer: L.Trainer, items: ItemList, pending: _Pending) -> OutcomeSet:
    positions = _loader_positions(trainer, pending.loader, pending.count)
    device = next(iter([*pending.columns.values(), *pending.values.values()]))[0].device
    positions = _gather(trainer, positions.to(device)).cpu().numpy()
    unique, first = np.unique(positions, return_index=True)  # distributed samplers pad with repeats
    if len(unique) and unique[-1] >= len(items.ids):
        raise ValueError(f"outcomes of set {items.name!r}: item position {unique[-1]} beyond its {len(items.ids)} items")

    def merged(parts: list[torch.Tensor], dtype: torch.dtype) -> np.ndarray:
        if sum(len(p) for p in parts) != pending.count:
            raise ValueError(f"outcomes of set {items.name!r}: a column was not handed over with every batch")
        return _gather(trainer, torch.cat(parts).to(dtype)).cpu().numpy()[first]

    columns = {k: merged(v, torch.uint8).astype(bool) for k, v in pending.columns.items()}
    values = {k: merged(v, torch.float64) for k, v in pending.values.items()}
    ids = [items.ids[i] for i in unique]
    return OutcomeSet(items.name, items.words, item_ids_hash(items.source, ids), len(ids), columns, values)


class TestPasses(L.Callback):
    """Collects every test pass's sets from the module's ``item_outcomes`` (none when it has none)."""

    def __init__(self) -> None:
        self.passes: list[list[OutcomeSet]] = []

    @staticmethod
    def _of(module: L.LightningModule) -> ItemOutcomes | None:
        outcomes = getattr(module, "item_outcomes", None)
        return outcomes if isinstance(outcomes, ItemOutcomes) else None

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (outcomes := self._of(pl_module)) is not None:
            outcomes.clear()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (outcomes := self._of(pl_module)) is not None:
            self.passes.append(outcomes.close(trainer))


def merge_sets(sets: Sequence[OutcomeSet]) -> list[OutcomeSet]:
    """Sets of one name merged in order: same items -> columns joined (a later column wins); other items -> replaced."""
    out: dict[str, OutcomeSet] = {}
    for s in sets:
        old = out.get(s.name)
        if old is None or old.item_ids_hash != s.item_ids_hash:
            out[s.name] = OutcomeSet(s.name, s.items, s.item_ids_hash, s.n, dict(s.columns), dict(s.values))
        else:
            old.columns.update(s.columns)
            old.values.update(s.values)
    return list(out.values())


def checkpoint_sets(passes: Sequence[Sequence[OutcomeSet]]) -> list[OutcomeSet]:
    """The sets of a stage's test passes named as run_stage names its metrics.

    The last weights are tested first, the selected ones last (when they differ):
    the final pass takes the plain names, the first pass ``last/`` (the same
    outcomes under both when the selected checkpoint is the last one).
    """
    if not passes:
        return []
    return merge_sets([*passes[-1], *(s.prefixed("last/") for s in passes[0])])


def read_outcomes(path: Path) -> list[OutcomeSet]:
    """The sets of an outcome file; raises ValueError naming the file and the problem."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        return [OutcomeSet.from_json(s) for s in data["sets"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_outcomes(run_dir: Path, sets: Sequence[OutcomeSet]) -> None:
    """Merge ``sets`` into the run's file (an earlier stage's sets stay; a set of the same name is updated), atomically."""
    if not sets:
        return
    path = run_dir / OUTCOME_FILE
    earlier = read_outcomes(path) if path.is_file() else []
    merged = merge_sets([*earlier, *sets])
    write_json_atomic(path, {"format": FORMAT, "sets": [s.to_json() for s in merged]})


def outcome_record_fields(run_dir: Path) -> dict[str, Any]:
    """``outcome_file`` and ``eval_items_hash`` for the record (none without a readable file)."""
    path = run_dir / OUTCOME_FILE
    if not path.is_file():
        return {}
    try:
        sets = read_outcomes(path)
    except ValueError:
        return {}
    return {"outcome_file": OUTCOME_FILE, "eval_items_hash": eval_items_hash([s.item_ids_hash for s in sets])}
