"""The per-item outcome writer (tasks/runner/outcomes.py): hashes, encoding, passes named like metrics, merging."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tasks.runner.outcomes import (
    FORMAT,
    OUTCOME_FILE,
    ItemList,
    ItemOutcomes,
    OutcomeSet,
    checkpoint_sets,
    eval_items_hash,
    image_items,
    item_ids_hash,
    merge_sets,
    outcome_record_fields,
    read_outcomes,
    write_outcomes,
)


def _set(name: str = "test", ids_hash: str = "a" * 16, **columns: list[int]) -> OutcomeSet:
    n = len(next(iter(columns.values())))
    return OutcomeSet(name, "words", ids_hash, n, {k.replace("_", "/"): np.array(v, bool) for k, v in columns.items()})


def test_item_hash_is_sha256_of_the_source_and_the_ids() -> None:
    expected = hashlib.sha256(b"fashion_mnist/test\n3,7,9").hexdigest()[:16]
    assert item_ids_hash("fashion_mnist/test", [3, 7, 9]) == expected
    assert item_ids_hash("cifar10/test", [3, 7, 9]) != expected  # index 3 of another data set is another item
    assert eval_items_hash(["0123456789abcdef", "fedcba9876543210"]) == \
        hashlib.sha256(b"0123456789abcdef\nfedcba9876543210").hexdigest()[:16]


def test_image_items_describe_all_or_some_images() -> None:
    assert image_items("test", "fashion_mnist", "test", torch.arange(4), 4).words == "fashion_mnist test images 0..3"
    some = image_items("test", "fashion_mnist", "test", torch.tensor([1, 5]), 10)
    assert some.ids == (1, 5) and some.source == "fashion_mnist/test"
    assert some.words == "fashion_mnist test images: 2 of 10 (indices into the split)"


def test_a_set_round_trips_with_binary_columns_as_strings() -> None:
    s = OutcomeSet("episodes", "e", "b" * 16, 3, {"test/acc": np.array([True, False, True])},
                   {"test/episode_acc": np.array([0.5, 0.25, 1.0])})
    data = s.to_json()
    assert data["columns"] == {"test/acc": "101"}
    assert data["values"] == {"test/episode_acc": [0.5, 0.25, 1.0]}
    assert data["reduce"] == {"test/acc": "mean", "test/episode_acc": "mean"}
    back = OutcomeSet.from_json(json.loads(json.dumps(data)))
    assert back.columns["test/acc"].tolist() == [True, False, True] and back.n == 3
    data["columns"]["test/acc"] = "1x1"
    with pytest.raises(ValueError, match="characters other than 0 and 1"):
        OutcomeSet.from_json(data)
    data["columns"]["test/acc"] = "10"
    with pytest.raises(ValueError, match="test/acc has 2 items, the set says n=3"):
        OutcomeSet.from_json(data)


def test_the_final_pass_takes_the_plain_names_and_the_first_one_last() -> None:
    last_pass, selected_pass = [_set(test_acc=[1, 0, 0])], [_set(test_acc=[1, 1, 0])]
    (merged,) = checkpoint_sets([last_pass, selected_pass])
    assert merged.columns["test/acc"].tolist() == [True, True, False]
    assert merged.columns["last/test/acc"].tolist() == [True, False, False]
    (single,) = checkpoint_sets([last_pass])  # the selected checkpoint is the last one: the same outcomes twice
    assert single.columns["test/acc"].tolist() == single.columns["last/test/acc"].tolist() == [True, False, False]
    assert checkpoint_sets([]) == []


def test_merging_joins_columns_of_the_same_items_and_replaces_other_items() -> None:
    a, b = _set(test_acc=[1, 0]), _set(test_acc5=[1, 1])
    (joined,) = merge_sets([a, b])
    assert list(joined.columns) == ["test/acc", "test/acc5"]
    other = _set(ids_hash="c" * 16, test_acc=[0, 0, 1])
    (replaced,) = merge_sets([a, other])
    assert replaced.item_ids_hash == "c" * 16 and replaced.n == 3 and list(replaced.columns) == ["test/acc"]


def test_a_later_stage_adds_its_sets_to_the_file_and_the_record_hashes_them(tmp_path: Path) -> None:
    write_outcomes(tmp_path, [_set("search", ids_hash="1" * 16, search_acc=[1, 0])])
    write_outcomes(tmp_path, [_set("test", ids_hash="2" * 16, test_acc=[0, 1, 1])])
    data = json.loads((tmp_path / OUTCOME_FILE).read_text())
    assert data["format"] == FORMAT
    assert [(s["name"], s["n"], s["columns"]) for s in data["sets"]] == \
        [("search", 2, {"search/acc": "10"}), ("test", 3, {"test/acc": "011"})]
    assert outcome_record_fields(tmp_path) == {"outcome_file": OUTCOME_FILE,
                                               "eval_items_hash": eval_items_hash(["1" * 16, "2" * 16])}
    (tmp_path / OUTCOME_FILE).write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="format 'other'"):
        read_outcomes(tmp_path / OUTCOME_FILE)
    assert outcome_record_fields(tmp_path) == {}  # an unreadable file gives the record nothing, not a crash
    assert outcome_record_fields(tmp_path / "none") == {}


def _trainer(loaders: list[DataLoader], items: dict[str, ItemList]) -> SimpleNamespace:
    return SimpleNamespace(datamodule=SimpleNamespace(outcome_items=items), test_dataloaders=loaders, world_size=1)


def test_a_pass_is_closed_in_item_order_with_ids_from_the_data_module() -> None:
    loaders = [DataLoader(TensorDataset(torch.zeros(5)), batch_size=2),
               DataLoader(TensorDataset(torch.zeros(3)), batch_size=None)]
    items = {"test": ItemList("test", "five", "d/test", (10, 11, 12, 13, 14)),
             "episodes": ItemList("episodes", "three", "episodes/x", (0, 1, 2))}
    outcomes = ItemOutcomes()
    outcomes.add("test", {"test/acc": torch.tensor([True, False])})
    outcomes.add("test", {"test/acc": torch.tensor([True, True])})  # a limited test: 4 of the 5 images
    for acc in (0.5, 0.75, 1.0):
        outcomes.add("episodes", values={"test/episode_acc": acc}, dataloader_idx=1)
    test, episodes = outcomes.close(_trainer(loaders, items))
    assert test.n == 4 and test.columns["test/acc"].tolist() == [True, False, True, True]
    assert test.item_ids_hash == item_ids_hash("d/test", [10, 11, 12, 13])
    assert episodes.values["test/episode_acc"].tolist() == [0.5, 0.75, 1.0]
    assert outcomes.close(_trainer(loaders, items)) == []  # closing clears


def test_bad_hand_overs_are_refused_in_one_line() -> None:
    outcomes = ItemOutcomes()
    with pytest.raises(ValueError, match="differ in length"):
        outcomes.add("test", {"test/acc": torch.ones(2, dtype=torch.bool)}, {"test/loss": torch.ones(3)})
    outcomes.clear()
    outcomes.add("nameless", {"test/acc": torch.ones(2, dtype=torch.bool)})
    loaders = [DataLoader(TensorDataset(torch.zeros(2)), batch_size=2)]
    with pytest.raises(ValueError, match="outcome_items has no such set"):
        outcomes.close(_trainer(loaders, {}))
    outcomes.clear()
    outcomes.add("test", {"test/acc": torch.ones(2, dtype=torch.bool)})
    shuffled = [DataLoader(TensorDataset(torch.zeros(2)), batch_size=2, shuffle=True)]
    with pytest.raises(ValueError, match="RandomSampler gives no fixed item order"):
        outcomes.close(_trainer(shuffled, {"test": ItemList("test", "", "s", (0, 1))}))
