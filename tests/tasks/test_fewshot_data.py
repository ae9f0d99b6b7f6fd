"""Few-shot data: the embedded rotation set, UCI digits, and the on-disk loaders on fixtures in their real layouts.

Fixture pixels encode where they come from (class and image number), so each
test checks that a loader put every image under the right class and split.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import write_cifar_batch

from tasks.data.errors import DataCorruptError, DataMissingError
from tasks.fewshot.data import cifar_fs, mini_imagenet, omniglot
from tasks.fewshot.data.digits import DIGITS, load_digits_split
from tasks.fewshot.data.fashion_rot import BASE_SPLITS, DEFAULT_SPLIT, FASHION_MNIST_ROT, fashion_rot, load_fashion_rot

# ----------------------------------------------------------------------------- embedded sets


@pytest.mark.parametrize("split_name, sizes, test_bases", [
    ("base_4_2_4", {"train": 16, "validation": 8, "test": 16}, {"Coat", "Shirt", "Sneaker", "Ankle boot"}),
    ("base_6_2_2", {"train": 24, "validation": 8, "test": 8}, {"Bag", "Ankle boot"}),
])
def test_rotation_classes_are_split_by_base_class(split_name: str, sizes: dict, test_bases: set) -> None:
    splits = {s: load_fashion_rot(None, s, 0, 30, split_name) for s in ("train", "validation", "test")}
    assert {s: split.num_classes for s, split in splits.items()} == sizes == fashion_rot(split_name).classes
    bases = {s: {name.split("@")[0] for name in split.class_names} for s, split in splits.items()}
    # disjoint garments across train/validation/test, all ten used
    assert not (bases["train"] & bases["validation"] or bases["train"] & bases["test"] or bases["validation"] & bases["test"])
    assert len(bases["train"] | bases["validation"] | bases["test"]) == 10
    assert bases["test"] == test_bases and len(bases["train"]) == len(BASE_SPLITS[split_name]["train"])
    images = {s: {bytes(img.numpy()) for img in split.images} for s, split in splits.items()}
    assert not (images["train"] & images["test"] or images["validation"] & images["test"])  # no image shared
    test = splits["test"]
    assert test.class_sizes().tolist() == [30] * sizes["test"] and test.images.shape == (30 * sizes["test"], 1, 28, 28)
    # class k*4 + r holds the images of class k*4 turned by r quarter turns, in the same order
    upright, turned = test.images[test.labels == 4], test.images[test.labels == 5]
    second = "Shirt" if split_name == "base_4_2_4" else "Ankle boot"  # the split's second test garment
    assert test.class_names[4:6] == (f"{second}@0", f"{second}@90")
    assert torch.equal(turned, torch.rot90(upright, 1, dims=(2, 3))) and not torch.equal(turned, upright)


def test_both_splits_take_the_same_images_of_a_shared_test_garment() -> None:
    wide, old = load_fashion_rot(None, "test", 0, 30, "base_4_2_4"), load_fashion_rot(None, "test", 0, 30, "base_6_2_2")
    assert torch.equal(wide.images[wide.labels == 12], old.images[old.labels == 4])  # Ankle boot@0 in both
    assert FASHION_MNIST_ROT is fashion_rot("base_4_2_4") and DEFAULT_SPLIT == "base_4_2_4"


def test_the_data_seed_chooses_the_images_and_nothing_else_does() -> None:
    a, b = load_fashion_rot(None, "test", 0, 30), load_fashion_rot(None, "test", 1, 30)
    assert a.class_names == b.class_names and not torch.equal(a.images, b.images)
    assert torch.equal(a.images, load_fashion_rot.__wrapped__(None, "test", 0, 30).images)


def test_digits_are_centred_in_a_28_pixel_canvas() -> None:
    digits = load_digits_split()
    assert digits.images.shape == (1797, 1, 28, 28) and digits.images.dtype == torch.uint8
    assert digits.class_sizes().tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert DIGITS.smallest_class == 174
    border = torch.cat([digits.images[..., :4, :].flatten(), digits.images[..., -4:, :].flatten()])
    assert int(border.max()) == 0 and int(digits.images.max()) == 255  # 16 -> 255, the frame stays black
    from sklearn.datasets import load_digits

    original = torch.from_numpy(load_digits().images[:50]).float().flatten(1)
    # the 20x20 box is the 8x8 image enlarged: shrunk back, it matches the original (same digit, same place)
    box = digits.images[:50, :, 4:24, 4:24].float()
    shrunk = torch.nn.functional.adaptive_avg_pool2d(box, 8).flatten(1)
    correlation = torch.corrcoef(torch.stack([shrunk.flatten(), original.flatten()]))[0, 1]
    assert correlation > 0.95


# ----------------------------------------------------------------------------- CIFAR-FS


def _cifar100_fixture(root: Path, train_per_class: int = 2, test_per_class: int = 1) -> None:
    folder = root / "cifar-100-python"
    train_labels = [c for c in range(100) for _ in range(train_per_class)]
    test_labels = [c for c in range(100) for _ in range(test_per_class)]
    write_cifar_batch(folder / "train", 0, len(train_labels), "cifar100", train_labels)
    write_cifar_batch(folder / "test", len(train_labels), len(test_labels), "cifar100", test_labels)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": [n.encode() for n in cifar_fs.CIFAR100_NAMES]}, fh)


def test_cifar_fs_takes_bertinetto_classes_from_both_cifar100_files(tmp_path: Path) -> None:
    _cifar100_fixture(tmp_path)
    splits = {s: cifar_fs.load_cifar_fs(tmp_path, s) for s in ("train", "validation", "test")}
    assert [splits[s].num_classes for s in splits] == [64, 16, 20]
    names = [set(splits[s].class_names) for s in splits]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert set().union(*names) == set(cifar_fs.CIFAR100_NAMES)
    test = splits["test"]
    assert test.class_sizes().tolist() == [3] * 20 and test.images.shape == (60, 3, 32, 32)
    # "whale" is CIFAR-100 class 95: its training images are global images 190, 191 and its test image 200 + 95
    whale = test.images[test.labels == test.class_names.index("whale")]
    expected = [190, 191, 295]
    assert [int(img[0, 0, 0]) for img in whale] == [(i * 37) % 256 for i in expected]


def test_cifar_fs_checks_the_label_names_and_says_what_is_missing(tmp_path: Path) -> None:
    _cifar100_fixture(tmp_path)
    with open(tmp_path / "cifar-100-python" / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": [b"x"] * 100}, fh)
    with pytest.raises(DataCorruptError, match="alphabetical order"):
        cifar_fs.load_cifar_fs.__wrapped__(tmp_path, "train")
    with pytest.raises(DataMissingError, match=r"cifar100 not found: looked for .*cifar-100-python/train"):
        cifar_fs.locate(tmp_path / "elsewhere")


# ----------------------------------------------------------------------------- Omniglot


def _omniglot_fixture(root: Path) -> list[tuple[str, str, str]]:
    """Every one of the 1,623 character folders with one 105x105 PNG whose ink level encodes the class."""
    from PIL import Image

    made = []
    counts = {"images_background": (30, 964), "images_evaluation": (20, 659)}
    for half, (alphabets, characters) in counts.items():
        for k in range(characters):
            alphabet, character = f"Alphabet_{k % alphabets:02d}", f"character{k // alphabets + 1:02d}"
            folder = root / "omniglot-py" / half / alphabet / character
            folder.mkdir(parents=True)
            made.append((half, alphabet, character))
    order = sorted(made, key=lambda m: (m[0] != "images_background", m[1], m[2]))
    for number, (half, alphabet, character) in enumerate(order):
        ink = 255 - (number % 200)  # white background with a class-specific grey
        Image.fromarray(np.full((105, 105), ink, dtype=np.uint8)).save(
            root / "omniglot-py" / half / alphabet / character / f"{number:04d}_01.png")
    return order


def test_omniglot_reads_sorted_folders_and_splits_characters_like_learn2learn(tmp_path: Path) -> None:
    order = _omniglot_fixture(tmp_path)
    omniglot.locate(tmp_path)
    folders = omniglot.character_folders(tmp_path)
    assert [f.parent.parent.name for f in folders[:964]] == ["images_background"] * 964
    assert [(f.parent.name, f.name) for f in folders] == [(a, c) for _, a, c in order]
    parts = omniglot.split_characters(seed=0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 1100, "validation": 100, "test": 423}
    assert sorted(parts["train"] + parts["validation"] + parts["test"]) == list(range(1623))
    assert parts == omniglot.split_characters(seed=0) and parts != omniglot.split_characters(seed=1)
    test = omniglot.load_omniglot(tmp_path, "test", 0)
    assert test.num_classes == 423 and test.images.shape == (423, 1, 28, 28)
    for new, character in enumerate(parts["test"][:20]):  # inverted: ink 255 - c becomes c
        assert int(test.images[test.labels == new].float().mean().round()) == character % 200
        assert test.class_names[new] == f"{order[character][1]}/{order[character][2]}"


def test_omniglot_missing_or_incomplete_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError, match="omniglot-py/images_background"):
        omniglot.locate(tmp_path)
    (tmp_path / "omniglot-py" / "images_background" / "A" / "c").mkdir(parents=True)
    (tmp_path / "omniglot-py" / "images_evaluation").mkdir(parents=True)
    with pytest.raises(DataCorruptError, match="1 character folders, expected 1623"):
        omniglot.character_folders(tmp_path)


# ----------------------------------------------------------------------------- mini-ImageNet


def _mini_imagenet_fixture(root: Path, per_class: int = 2) -> None:
    for split, classes in mini_imagenet.CLASSES.items():
        count = classes * per_class
        images = np.zeros((count, 84, 84, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = np.arange(count) % 256  # the image's position in the file
        images[:, 0, 0, 1] = np.arange(count) % classes  # the class it is listed under (interleaved)
        class_dict = {f"n{split[:2]}{c:05d}": list(range(c, count, classes)) for c in range(classes)}
        with open(mini_imagenet.cache_file(root, split), "wb") as fh:
            pickle.dump({"image_data": images, "class_dict": class_dict}, fh)


def test_mini_imagenet_reads_learn2learn_caches(tmp_path: Path) -> None:
    _mini_imagenet_fixture(tmp_path)
    mini_imagenet.locate(tmp_path)
    split = mini_imagenet.load_mini_imagenet(tmp_path, "validation")
    assert split.num_classes == 16 and split.images.shape == (32, 3, 84, 84)
    assert split.class_names[3] == "nva00003"
    assert torch.equal(split.labels, split.images[:, 1, 0, 0].long())  # channels first, each image in its class
    assert split.images[:, 0, 0, 0].tolist() == list(range(32))


def test_mini_imagenet_missing_and_wrong_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError, match="mini-imagenet-cache-train.pkl.*learn2learn"):
        mini_imagenet.locate(tmp_path)
    _mini_imagenet_fixture(tmp_path)
    with open(mini_imagenet.cache_file(tmp_path, "test"), "wb") as fh:
        pickle.dump({"image_data": np.zeros((2, 32, 32, 3), np.uint8), "class_dict": {}}, fh)
    with pytest.raises(DataCorruptError, match=r"image_data of shape \(2, 32, 32, 3\)"):
        mini_imagenet.load_mini_imagenet(tmp_path, "test")


def test_dataset_facts_match_what_the_loaders_return() -> None:
    assert FASHION_MNIST_ROT.classes == {"train": 16, "validation": 8, "test": 16}
    assert cifar_fs.CIFAR_FS.classes == {"train": 64, "validation": 16, "test": 20}
    assert omniglot.OMNIGLOT.classes == {"train": 1100, "validation": 100, "test": 423}
    assert mini_imagenet.MINI_IMAGENET.input_shape == (3, 84, 84) and DIGITS.input_shape == (1, 28, 28)
