"""Domain-adaptation data against the real on-disk layouts (tiny fixtures written here) and Fashion-MNIST-M.

Each fixture's pixels encode where they come from, so a loader that puts a value
in the wrong place, flips a channel order or mislabels a class fails. The one
exception is Fashion-MNIST-M, built from the real Fashion-MNIST of the Debian
package (the embedded default).
"""

from __future__ import annotations

import bz2
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.data.errors import DataCorruptError, DataMissingError
from tasks.data.idx import write_idx
from tasks.uda import digits, fashion_mnist_m
from tasks.uda.config import UdaConfig, UdaDataConfig
from tasks.uda.datamodule import ImagesOnly, UdaDataModule
from tasks.uda.domains import get_domain
from tasks.uda.office import list_images

COUNTS = {"train": 30, "test": 12}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    digits.load_digits.cache_clear()
    yield
    digits.load_digits.cache_clear()


def value(i: np.ndarray, c: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pixel of image ``i``, channel ``c``, row ``y``, column ``x`` in every fixture."""
    return ((i * 31 + c * 70 + y * 5 + x * 3) % 256).astype(np.uint8)


def expected(count: int, channels: int, size: int, first: int = 0) -> np.ndarray:
    i, c, y, x = np.meshgrid(np.arange(first, first + count), np.arange(channels), np.arange(size), np.arange(size),
                             indexing="ij")
    return value(i, c, y, x)


def labels_of(count: int, first: int = 0) -> np.ndarray:
    return ((np.arange(first, first + count) * 7) % 10).astype(np.uint8)


# ------------------------------------------------------------------------------------------- fixture writers


def write_mnist(directory: Path, gz: bool = True) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for split, (images_name, labels_name) in digits.MNIST_FILES.items():
        first = 0 if split == "train" else 1000
        suffix = ".gz" if gz else ""
        write_idx(directory / f"{images_name}{suffix}", expected(COUNTS[split], 1, 28, first)[:, 0])
        write_idx(directory / f"{labels_name}{suffix}", labels_of(COUNTS[split], first))


def write_mnist_m(root: Path) -> None:
    from PIL import Image

    base = root / "mnist_m"
    for split, (folder, labels_file) in digits.MNIST_M_FILES.items():
        first = 0 if split == "train" else 1000
        (base / folder).mkdir(parents=True)
        images, labels = expected(COUNTS[split], 3, 28, first), labels_of(COUNTS[split], first)
        lines = []
        for k in range(COUNTS[split]):
            name = f"{k:08d}.png"
            Image.fromarray(images[k].transpose(1, 2, 0)).save(base / folder / name)
            lines.append(f"{name} {labels[k]}")
        (base / labels_file).write_text("\n".join(lines) + "\n")


def usps_pixels(count: int, first: int) -> np.ndarray:
    """Values in [-1, 1] on the 1/127.5 grid, a quarter of them exactly 0 (left out of the sparse file)."""
    raw = expected(count, 1, 16, first)[:, 0].reshape(count, 256).astype(np.float64)
    raw[:, ::4] = 127.5
    return raw / 127.5 - 1.0


def write_usps(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for split, name in digits.USPS_FILES.items():
        first = 0 if split == "train" else 1000
        pixels, labels = usps_pixels(COUNTS[split], first), labels_of(COUNTS[split], first)
        lines = []
        for row, label in zip(pixels, labels):
            features = " ".join(f"{j + 1}:{v:.6f}" for j, v in enumerate(row) if v != 0)
            lines.append(f"{int(label) + 1} {features}")
        with bz2.open(directory / name, "wt") as fh:
            fh.write("\n".join(lines) + "\n")


def write_svhn(directory: Path) -> None:
    from scipy.io import savemat

    directory.mkdir(parents=True, exist_ok=True)
    for split, name in digits.SVHN_FILES.items():
        first = 0 if split == "train" else 1000
        images, labels = expected(COUNTS[split], 3, 32, first), labels_of(COUNTS[split], first).astype(np.int64)
        savemat(directory / name, {"X": images.transpose(2, 3, 1, 0), "y": np.where(labels == 0, 10, labels)[:, None]})


def write_office(domain_dir: Path, classes: list[str], per_class: int = 3) -> None:
    from PIL import Image

    for c, name in enumerate(classes):
        (domain_dir / name).mkdir(parents=True)
        for k in range(per_class):
            colour = np.array([c * 40 % 256, k * 60, 200], dtype=np.uint8)
            Image.fromarray(np.broadcast_to(colour, (40, 48, 3)).copy()).save(domain_dir / name / f"frame_{k:04d}.jpg")


# ------------------------------------------------------------------------------------------------ digit loaders


@pytest.mark.parametrize("layout", ["mnist", "MNIST/raw"])
def test_mnist_idx_files_load_in_both_layouts(tmp_path: Path, layout: str) -> None:
    write_mnist(tmp_path / layout, gz=layout == "mnist")
    for split, first in (("train", 0), ("test", 1000)):
        images, labels = digits.load_digits("mnist", tmp_path, split)
        assert images.shape == (COUNTS[split], 1, 28, 28) and images.dtype == torch.uint8
        assert np.array_equal(images.numpy(), expected(COUNTS[split], 1, 28, first))
        assert labels.tolist() == labels_of(COUNTS[split], first).tolist()


def test_mnist_m_release_layout_loads_images_and_label_files(tmp_path: Path) -> None:
    write_mnist_m(tmp_path)
    images, labels = digits.load_digits("mnist_m", tmp_path, "test")
    assert images.shape == (12, 3, 28, 28)
    assert np.array_equal(images.numpy(), expected(12, 3, 28, 1000))  # PNG is lossless: RGB order kept
    assert labels.tolist() == labels_of(12, 1000).tolist()
    (tmp_path / "mnist_m" / "mnist_m_train_labels.txt").write_text("00000000.png five\n")
    with pytest.raises(DataCorruptError, match="mnist_m_train_labels.txt:1: expected '<file name> <label>'"):
        digits.load_digits("mnist_m", tmp_path, "train")


def test_usps_libsvm_files_load_with_omitted_zero_features(tmp_path: Path) -> None:
    write_usps(tmp_path / "usps")
    images, labels = digits.load_digits("usps", tmp_path, "train")
    assert images.shape == (30, 1, 16, 16)
    want = np.rint((usps_pixels(30, 0) + 1) * 127.5).astype(np.uint8).reshape(30, 1, 16, 16)
    assert np.array_equal(images.numpy(), want) and want[0, 0, 0, 0] == 128  # an omitted feature is mid-grey
    assert labels.tolist() == labels_of(30).tolist()  # files count 1..10; loaded 0..9
    with bz2.open(tmp_path / "usps" / "usps.t.bz2", "wt") as fh:
        fh.write("3 1:0.5 x\n")
    with pytest.raises(DataCorruptError, match="line 1 is not '<label> <index>:<value> ...'"):
        digits.load_digits("usps", tmp_path, "test")


def test_svhn_mat_files_load_channel_first_with_ten_meaning_zero(tmp_path: Path) -> None:
    write_svhn(tmp_path)  # torchvision puts the files in the root itself
    images, labels = digits.load_digits("svhn", tmp_path, "train")
    assert images.shape == (30, 3, 32, 32)
    assert np.array_equal(images.numpy(), expected(30, 3, 32, 0))
    assert labels.tolist() == labels_of(30).tolist() and 0 in labels.tolist()


@pytest.mark.parametrize("name, hint", [("mnist", "<data root>/mnist"), ("mnist_m", "mnist_m_train/"),
                                        ("usps", "usps.bz2 and usps.t.bz2"), ("svhn", "train_32x32.mat")])
def test_missing_digit_data_names_where_it_looked_and_how_to_get_it(tmp_path: Path, name: str, hint: str) -> None:
    with pytest.raises(DataMissingError, match=f"{name} \\(train split\\) not found: looked in {tmp_path}") as info:
        digits.locate_digits(name, tmp_path)
    assert hint in str(info.value) and "--data.root" in str(info.value)


# ----------------------------------------------------------------------------------------------- Office folders


def test_office31_and_office_home_folders_label_by_declared_class_order(tmp_path: Path) -> None:
    amazon, real_world = get_domain("amazon"), get_domain("real_world")
    write_office(tmp_path / "office31" / "amazon" / "images", ["trash_can", "back_pack", "mug"])
    samples = list_images(amazon, tmp_path)
    assert len(samples) == 9
    assert {p.parent.name: label for p, label in samples} == {"back_pack": 0, "mug": 17, "trash_can": 30}
    write_office(tmp_path / "OfficeHomeDataset_10072016" / "Real World", ["Webcam", "Alarm_Clock"], per_class=2)
    assert sorted({label for _, label in list_images(real_world, tmp_path)}) == [0, 64]
    write_office(tmp_path / "office31" / "dslr", ["back_pack", "laptop"])  # no images/ level; a stray folder
    with pytest.raises(DataCorruptError, match="'laptop' is not one of the 31 office31 classes"):
        list_images(get_domain("dslr"), tmp_path)
    with pytest.raises(DataMissingError, match="webcam \\(office31\\) not found: looked in .*office31/webcam/images"):
        list_images(get_domain("webcam"), tmp_path)


def test_office_data_module_decodes_images_and_hands_target_images_without_labels(tmp_path: Path) -> None:
    classes = list(get_domain("amazon").classes[:4])
    write_office(tmp_path / "office31" / "amazon" / "images", classes, per_class=4)
    write_office(tmp_path / "office31" / "webcam", classes, per_class=2)
    cfg = UdaConfig(method="dann", batch_size=4, data=UdaDataConfig(source="amazon", target="webcam", root=str(tmp_path),
                                                                     image_size=32, val_size=4, eval_batch_size=8))
    dm = UdaDataModule(cfg)
    dm.setup("fit")
    assert dm.input_shape == (3, 32, 32) and dm.num_classes == 31
    assert [len(dm.sets[k]) for k in ("labelled_train", "labelled_val", "source_test", "unlabelled_train", "target_test")] \
        == [12, 4, 4, 8, 8]
    target_batch = next(iter(dm.train_dataloader()))[0]["unlabelled"]
    assert isinstance(target_batch, torch.Tensor) and target_batch.shape == (4, 3, 32, 32)  # images, no labels
    images, labels = next(iter(dm.test_dataloader()[1]))
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32 and set(labels.tolist()) <= {0, 1, 2, 3}


# ------------------------------------------------------------------------------------------ the digit data module


def test_digit_pairs_share_geometry_and_never_hand_target_labels_to_training(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist")
    write_svhn(tmp_path / "svhn")
    write_usps(tmp_path / "usps")
    cfg = UdaConfig(method="dann", batch_size=4, data=UdaDataConfig(source="svhn", target="mnist", root=str(tmp_path),
                                                                     val_size=6))
    dm = UdaDataModule(cfg)
    dm.setup("fit")
    assert dm.input_shape == (3, 32, 32)  # colour and the larger native size
    assert isinstance(dm.sets["unlabelled_train"], ImagesOnly)
    combined = next(iter(dm.train_dataloader()))[0]
    assert set(combined) == {"labelled", "unlabelled"} and isinstance(combined["unlabelled"], torch.Tensor)
    assert combined["unlabelled"].shape == (4, 1, 32, 32)  # MNIST resized to 32; replicated on the device
    assert dm.transform(combined["unlabelled"], train=True).shape == (4, 3, 32, 32)
    loaders = dm.train_dataloader().iterables
    assert len(loaders["labelled"]) == len(loaders["unlabelled"]) == (30 - 6) // 4  # as many target batches as source
    mnist_usps = UdaDataModule(UdaConfig(batch_size=4, data=UdaDataConfig(source="mnist", target="usps", root=str(tmp_path),
                                                                          val_size=6)))
    mnist_usps.setup("fit")
    assert mnist_usps.input_shape == (1, 28, 28)  # two grey domains stay grey
    assert mnist_usps.sets["target_test"].images.shape == (12, 1, 28, 28)  # USPS upsampled from 16


# -------------------------------------------------------------------------------------------- Fashion-MNIST-M


def test_fashion_mnist_m_blends_by_absolute_difference_with_photo_crops() -> None:
    photos = fashion_mnist_m.sample_photos()
    assert photos.shape == (2, 427, 640, 3)
    black, white = np.zeros((6, 28, 28), np.uint8), np.full((6, 28, 28), 255, np.uint8)
    patches = fashion_mnist_m.build_images(black, "train")  # |patch - 0| is the patch itself
    assert np.array_equal(fashion_mnist_m.build_images(white, "train"), 255 - patches)
    for patch in patches.transpose(0, 2, 3, 1):  # every patch is a (possibly flipped) 28x28 window of a photo
        assert _is_photo_window(patch, photos)


def _is_photo_window(patch: np.ndarray, photos: np.ndarray) -> bool:
    for flipped in (patch, patch[::-1], patch[:, ::-1], patch[::-1, ::-1]):
        for photo in photos:
            ys, xs = np.nonzero((photo[:-27, :-27] == flipped[0, 0]).all(-1))
            if any(np.array_equal(photo[y:y + 28, x:x + 28], flipped) for y, x in zip(ys, xs)):
                return True
    return False


def test_fashion_mnist_m_is_deterministic_prefix_stable_and_seeded() -> None:
    grey = np.random.default_rng(0).integers(0, 256, (200, 28, 28), dtype=np.uint8)
    a = fashion_mnist_m.build_images(grey, "test")
    assert np.array_equal(a, fashion_mnist_m.build_images(grey, "test"))
    assert np.array_equal(a[:50], fashion_mnist_m.build_images(grey[:50], "test"))  # image i depends on i only
    assert not np.array_equal(a, fashion_mnist_m.build_images(grey, "train"))
    assert not np.array_equal(a, fashion_mnist_m.build_images(grey, "test", seed=fashion_mnist_m.SEED + 1))


def test_fashion_mnist_m_cache_has_a_checksum_and_a_damaged_cache_is_rebuilt(tmp_path: Path, caplog) -> None:
    load = fashion_mnist_m.load_fashion_mnist_m
    load.cache_clear()
    first, labels, checksum = load(None, tmp_path / "a", "test")
    load.cache_clear()
    again, _, checksum_b = load(None, tmp_path / "b", "test")  # an independent build, another folder
    assert first.shape == (10000, 3, 28, 28) and torch.equal(first, again) and checksum == checksum_b
    images_path, manifest_path = fashion_mnist_m.cache_paths(tmp_path / "a", "test")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["sha256"] == checksum and manifest["seed"] == fashion_mnist_m.SEED and len(labels) == 10000
    raw = bytearray(images_path.read_bytes())
    raw[-1] ^= 0xFF
    images_path.write_bytes(bytes(raw))
    load.cache_clear()
    with caplog.at_level("WARNING", logger="normbench"):
        rebuilt, _, checksum_c = load(None, tmp_path / "a", "test")
    assert "does not match its checksum; rebuilding it" in caplog.text
    assert torch.equal(rebuilt, first) and checksum_c == checksum
    assert np.array_equal(np.load(images_path), first.numpy())  # the damaged file was replaced
    load.cache_clear()
