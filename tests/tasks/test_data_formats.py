"""tasks.data against its on-disk formats: Fashion-MNIST IDX, CIFAR pickles, ImageNet ImageFolder,
plus the fixed splits, the batch augmentation and the data module.

Fixtures are tiny files written here (see data_fixtures.py); the one exception is
the real Fashion-MNIST of the Debian package, loaded once and shared by two tests.
Nothing touches the network: downloads are replaced by fakes and sockets refuse
to connect.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import socket
import struct
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError

import data_fixtures as fx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import tasks.data.fashion_mnist as fm
from tasks.data import cifar
from tasks.data.config import DataConfig
from tasks.data.datamodule import ImageDataModule
from tasks.data.errors import DataCorruptError, DataError, DataMissingError
from tasks.data.idx import read_idx, write_idx
from tasks.data.imagenet import MEAN as IMAGENET_MEAN
from tasks.data.imagenet import STD as IMAGENET_STD
from tasks.data.registry import get_dataset_info, resolve_data_root
from tasks.data.splits import subset_indices, train_val_indices
from tasks.data.tensor_data import BatchTransform, TensorImageDataset, passthrough_collate, random_crop, random_flip

SMALL = {"train": 12, "test": 5}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(autouse=True)
def _clear_cifar_cache():
    cifar.load_cifar.cache_clear()
    yield
    cifar.load_cifar.cache_clear()


@pytest.fixture
def fm_env(monkeypatch, tmp_path):
    """Fashion-MNIST loader on tiny fixtures: small counts, a system dir under tmp (absent), a fake HOME."""
    fm.load_fashion_mnist.cache_clear()
    system = tmp_path / "system-fashion-mnist"
    monkeypatch.setattr(fm, "DEBIAN_DIR", system)
    for split, count in SMALL.items():
        images, labels, _ = fm.FILES[split]
        monkeypatch.setitem(fm.FILES, split, (images, labels, count))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    yield SimpleNamespace(root=tmp_path / "data", system=system)
    fm.load_fashion_mnist.cache_clear()


def _trust(monkeypatch, directory: Path) -> None:
    """Make fm.SHA256 hold the checksums of the fixture files in ``directory``."""
    for name in fm.SHA256:
        monkeypatch.setitem(fm.SHA256, name, fx.idx_sha256(directory / name))


def _offline(monkeypatch) -> list:
    """torchvision's MNIST downloader fails as without a network; returns the list of attempted calls."""
    import torchvision.datasets.mnist as tv_mnist

    calls = []

    def fail(url, download_root, filename=None, md5=None, **kwargs):
        calls.append((url, Path(download_root)))
        raise URLError("network disabled in tests")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", fail)
    return calls


def _regzip(path: Path, payload: bytes) -> None:
    with gzip.open(path, "wb") as fh:
        fh.write(payload)


def _payload(path: Path) -> bytes:
    with gzip.open(path, "rb") as fh:
        return fh.read()


# ============================================================================ IDX reader


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("shape", [(3, 28, 28), (7,), (2, 3, 4, 5)])
def test_read_idx_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"x-idx{suffix}"
    write_idx(path, array)
    raw = _payload(path) if suffix else path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, len(shape)])
    assert struct.unpack(f">{len(shape)}I", raw[4 : 4 + 4 * len(shape)]) == shape

    import hashlib

    out = read_idx(path, shape, sha256=hashlib.sha256(raw).hexdigest())
    assert out.dtype == torch.uint8
    assert tuple(out.shape) == shape
    assert np.array_equal(out.numpy(), array)
    out.view(-1)[0] = 1  # a writable copy, not a view of a read-only buffer


def test_read_idx_truncated_and_padded_payload(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    payload = _payload(path)
    expected = 16 + 4 * 28 * 28
    assert len(payload) == expected

    _regzip(path, payload[:-10])
    with pytest.raises(DataCorruptError) as info:
        read_idx(path, (4, 28, 28))
    msg = str(info.value)
    assert str(path) in msg and f"{expected - 10} bytes, expected {expected}" in msg and "truncated" in msg

    _regzip(path, payload + b"\0\0")
    with pytest.raises(DataCorruptError, match=f"{expected + 2} bytes, expected {expected}; the file is truncated or padded"):
        read_idx(path, (4, 28, 28))

    _regzip(path, b"")
    with pytest.raises(DataCorruptError, match=r"empty or truncated \(0 bytes\)"):
        read_idx(path, (4, 28, 28))


def test_read_idx_truncated_inside_the_dimensions_is_a_corrupt_error(tmp_path):
    """A payload cut inside the dimension words (header says 3-d, only 2 of 12 dimension bytes)."""
    path = tmp_path / "x-idx3-ubyte.gz"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    _regzip(path, _payload(path)[:6])
    with pytest.raises(DataCorruptError) as info:
        read_idx(path, (4, 28, 28))
    assert str(path) in str(info.value)


def test_read_idx_truncated_gzip_file(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    write_idx(path, fx.fashion_arrays(20, 0)[0])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataCorruptError, match="cannot be read .*delete it and fetch the data set again") as info:
        read_idx(path, (20, 28, 28))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "header, what",
    [
        (bytes([0, 1, 0x08, 3]), "magic"),
        (bytes([0, 0, 0x0D, 3]), "float dtype byte"),
        (bytes([0, 0, 0x08, 2]), "wrong number of dimensions"),
    ],
    ids=["magic", "dtype", "ndim"],
)
def test_read_idx_wrong_header(tmp_path, header, what):
    path = tmp_path / "x-idx3-ubyte.gz"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    _regzip(path, header + _payload(path)[4:])
    with pytest.raises(DataCorruptError) as info:
        read_idx(path, (4, 28, 28))
    msg = str(info.value)
    assert str(path) in msg
    assert "not an IDX file of 3-d unsigned bytes" in msg
    assert f"header {header.hex()}" in msg


def test_read_idx_wrong_dimensions(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    write_idx(path, np.zeros((4, 28, 27), np.uint8))
    with pytest.raises(DataCorruptError, match=r"dimensions \(4, 28, 27\), expected \(4, 28, 28\)") as info:
        read_idx(path, (4, 28, 28))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", ["random", "compressible"])
def test_read_idx_corrupted_gzip_stream(tmp_path, content):
    path = tmp_path / "x-idx3-ubyte.gz"
    if content == "random":
        array = fx.fashion_arrays(50, 0)[0]
    else:
        array = (np.arange(50 * 28 * 28) // 97 % 7).reshape(50, 28, 28).astype(np.uint8)
    write_idx(path, array)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for j in range(8):
        data[middle + j] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataCorruptError, match="cannot be read") as info:
        read_idx(path, (50, 28, 28))
    assert str(path) in str(info.value)


# ============================================================================ Fashion-MNIST loader (fixtures)


def _assert_loaded(result, expected):
    images, labels = result
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert tuple(images.shape) == (len(expected[0]), 1, 28, 28)
    assert np.array_equal(images[:, 0].numpy(), expected[0])
    assert np.array_equal(labels.numpy(), expected[1].astype(np.int64))


def test_fashion_search_order(fm_env):
    root = fm_env.root
    own = fx.write_fashion(root / "fashion_mnist", SMALL, offset=1)
    tv = fx.write_fashion(root / "FashionMNIST" / "raw", SMALL, offset=2)
    system = fx.write_fashion(fm_env.system, SMALL, offset=3)
    assert fm.candidate_dirs(root) == [root / "fashion_mnist", root / "FashionMNIST" / "raw", fm_env.system]
    assert fm.candidate_dirs(None) == [fm_env.system]

    for split in ("train", "test"):
        _assert_loaded(fm.load_fashion_mnist(root, split, verify=False), own[split])
    _assert_loaded(fm.load_fashion_mnist(None, "train", verify=False), system["train"])

    shutil.rmtree(root / "fashion_mnist")
    fm.load_fashion_mnist.cache_clear()
    for split in ("train", "test"):
        _assert_loaded(fm.load_fashion_mnist(root, split, verify=False), tv[split])

    shutil.rmtree(root / "FashionMNIST")
    fm.load_fashion_mnist.cache_clear()
    _assert_loaded(fm.load_fashion_mnist(root, "test", verify=False), system["test"])


def test_fashion_checksum_verified_by_default(fm_env, monkeypatch):
    directory = fm_env.root / "fashion_mnist"
    expected = fx.write_fashion(directory, SMALL)
    _trust(monkeypatch, directory)
    _assert_loaded(fm.load_fashion_mnist(fm_env.root, "train"), expected["train"])

    # Alter one pixel: still a structurally valid IDX file of the right size.
    images = expected["train"][0].copy()
    images[3, 10, 10] ^= 0x55
    write_idx(directory / "train-images-idx3-ubyte.gz", images)
    fm.load_fashion_mnist.cache_clear()
    with pytest.raises(DataCorruptError, match="checksum does not match") as info:
        fm.load_fashion_mnist(fm_env.root, "train")
    assert str(directory / "train-images-idx3-ubyte.gz") in str(info.value)
    # verify=False skips only the checksum
    loaded, _ = fm.load_fashion_mnist(fm_env.root, "train", verify=False)
    assert loaded[3, 0, 10, 10] == images[3, 10, 10]


def test_fashion_truncated_file_through_loader(fm_env):
    directory = fm_env.root / "fashion_mnist"
    fx.write_fashion(directory, SMALL)
    path = directory / "t10k-labels-idx1-ubyte.gz"
    _regzip(path, _payload(path)[:-1])
    with pytest.raises(DataCorruptError, match="truncated") as info:
        fm.load_fashion_mnist(fm_env.root, "test", verify=False)
    assert str(path) in str(info.value)


def test_fashion_missing_everywhere_and_download_fails(fm_env, monkeypatch):
    calls = _offline(monkeypatch)
    root = fm_env.root
    root.mkdir()
    with pytest.raises(DataMissingError) as info:
        fm.load_fashion_mnist(root, "train", download=True)
    msg = str(info.value)
    for place in (root / "fashion_mnist", root / "FashionMNIST" / "raw", fm_env.system):
        assert str(place) in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "downloading it failed (RuntimeError" in msg and "network disabled in tests" in msg
    # the download went to torchvision's layout under the data root
    assert calls and all(target == root / "FashionMNIST" / "raw" for _, target in calls)
    assert "train-images-idx3-ubyte.gz" in calls[0][0]


def test_fashion_never_downloads_unless_allowed(fm_env, monkeypatch):
    calls = _offline(monkeypatch)
    fm_env.root.mkdir()
    with pytest.raises(DataMissingError, match="--data.download true") as info:
        fm.load_fashion_mnist(fm_env.root, "train")
    assert str(fm_env.root / "fashion_mnist") in str(info.value) and str(fm_env.system) in str(info.value)
    with pytest.raises(DataMissingError, match="apt-get install dataset-fashion-mnist"):
        fm.locate_fashion_mnist(fm_env.root, download=False)
    fm.locate_fashion_mnist(fm_env.root, download=True)  # allowed to fetch: nothing to refuse yet
    assert calls == []  # data.download false never reached the downloader


def test_fashion_without_root_downloads_into_user_cache(fm_env, monkeypatch):
    calls = _offline(monkeypatch)
    with pytest.raises(DataMissingError, match="apt-get install dataset-fashion-mnist") as info:
        fm.load_fashion_mnist(None, "test", download=True)
    assert str(fm_env.system) in str(info.value)
    cache = fm_env.root.parent / "home" / ".cache" / "normbench" / "data"
    assert calls[0][1] == cache / "FashionMNIST" / "raw"


def test_fashion_successful_download_is_read_from_torchvision_layout(fm_env, monkeypatch):
    """A (fake) torchvision download that leaves .gz and extracted files in <root>/FashionMNIST/raw."""
    import torchvision.datasets.mnist as tv_mnist

    staging = fm_env.root.parent / "server"
    served = fx.write_fashion(staging, SMALL, offset=7)

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        target = Path(download_root)
        shutil.copy(staging / filename, target / filename)
        (target / filename[: -len(".gz")]).write_bytes(_payload(staging / filename))

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", fake_download)
    fm_env.root.mkdir()
    _trust(monkeypatch, staging)
    _assert_loaded(fm.load_fashion_mnist(fm_env.root, "train", download=True), served["train"])
    assert (fm_env.root / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()


def test_fashion_torchvision_layout_with_extracted_files_only(fm_env, monkeypatch):
    """torchvision's own layout check (FashionMNIST._check_exists) looks for the extracted files;
    a <root>/FashionMNIST/raw holding just those is a complete torchvision copy and must load."""
    _offline(monkeypatch)
    expected = fx.write_fashion(fm_env.root / "FashionMNIST" / "raw", SMALL, offset=5, gz=False)
    _assert_loaded(fm.load_fashion_mnist(fm_env.root, "train", verify=False), expected["train"])


def test_fashion_system_dir_env_var(monkeypatch):
    """NORMBENCH_FASHION_MNIST_SYSTEM_DIR replaces the Debian location, read at call time."""
    target = Path("/nonexistent/normbench-test/fashion")
    assert fm.candidate_dirs(None) == [fm.DEBIAN_DIR]
    monkeypatch.setenv("NORMBENCH_FASHION_MNIST_SYSTEM_DIR", str(target))
    assert fm.system_dir() == target
    assert fm.candidate_dirs(None) == [target]
    assert fm.candidate_dirs(Path("/r"))[-1] == target


# ============================================================================ real Fashion-MNIST (Debian package)


def test_real_fashion_mnist():
    train_images, train_labels = fm.load_fashion_mnist(None, "train")  # verify=True: checksums of the real files
    test_images, test_labels = fm.load_fashion_mnist(None, "test")
    assert tuple(train_images.shape) == (60000, 1, 28, 28) and train_images.dtype == torch.uint8
    assert tuple(test_images.shape) == (10000, 1, 28, 28) and test_images.dtype == torch.uint8
    assert train_labels.dtype == torch.int64 and test_labels.dtype == torch.int64
    assert torch.equal(torch.bincount(train_labels, minlength=10), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(test_labels, minlength=10), torch.full((10,), 1000))
    assert int(train_labels.min()) == 0 and int(train_labels.max()) == 9
    # the registry's normalization constants are the training set's statistics
    info = get_dataset_info("fashion_mnist")
    pixels = train_images.float().div_(255)
    assert abs(pixels.mean().item() - info.mean[0]) < 5e-4
    assert abs(pixels.std().item() - info.std[0]) < 5e-4


def test_fashion_datamodule_real_data(monkeypatch):
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    cfg = DataConfig(val_size=1000, fraction=0.1, test_fraction=0.2)
    dm = ImageDataModule(cfg, batch_size=64)
    assert dm.root is None and dm.num_classes == 10 and dm.input_shape == (1, 28, 28)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (5900, 1000, 2000)

    images, labels = fm.load_fashion_mnist(None, "train")
    train_idx, val_idx = train_val_indices(60000, 1000, 0)
    train_idx = train_idx[subset_indices(59000, 0.1, 0)]
    assert torch.equal(dm.train_set.labels, labels[train_idx])
    assert torch.equal(dm.val_set.images, images[val_idx])
    test_images, test_labels = fm.load_fashion_mnist(None, "test")
    keep = subset_indices(10000, 0.2, 0)
    assert torch.equal(dm.test_set.labels, test_labels[keep])

    batch_images, batch_labels = next(iter(dm.test_dataloader()))
    assert batch_images.dtype == torch.uint8 and tuple(batch_images.shape) == (256, 1, 28, 28)
    expected = (batch_images.double() / 255 - 0.2860) / 0.3530

    out, out_labels = dm.on_after_batch_transfer((batch_images, batch_labels), 0)  # no trainer: eval
    assert out.dtype == torch.float32 and out_labels is batch_labels
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)

    dm.trainer = SimpleNamespace(training=False)
    out, _ = dm.on_after_batch_transfer((batch_images, batch_labels), 0)
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)

    dm.trainer = SimpleNamespace(training=True)  # standard augmentation: crop (padding 2) + flip
    out, _ = dm.on_after_batch_transfer((batch_images, batch_labels), 0)
    assert out.shape == batch_images.shape and out.dtype == torch.float32
    cands = _crop_flip_candidates(batch_images, 2)
    normalized = BatchTransform((0.2860,), (0.3530,))(cands.flatten(0, 1), train=False).view(cands.shape[:2] + out.shape[1:])
    matches = _matches(out, normalized)
    assert bool(matches.any(0).all()), "every augmented image is a normalized crop or mirrored crop of its input"
    assert not torch.equal(out, BatchTransform((0.2860,), (0.3530,))(batch_images, train=False))


# ============================================================================ CIFAR pickles


def _decode_index(images: torch.Tensor, n: int) -> list[int]:
    """Global fixture index of each image, read from its pixel (0, 0, 0)."""
    lookup = {int(fx.cifar_value(np.array(i), 0, 0, 0)): i for i in range(n)}
    assert len(lookup) == n
    return [lookup[int(v)] for v in images[:, 0, 0, 0]]


@pytest.mark.parametrize("name, per_batch, num_classes", [("cifar10", 4, 10), ("cifar100", 40, 100)])
def test_load_cifar_pixels_and_labels(tmp_path, name, per_batch, num_classes):
    spans = fx.write_cifar(tmp_path, name, per_batch=per_batch, test_count=6)
    for split, (first, count) in spans.items():
        images, labels = cifar.load_cifar(name, tmp_path, split)
        assert images.dtype == torch.uint8 and tuple(images.shape) == (count, 3, 32, 32)
        assert labels.dtype == torch.int64
        assert np.array_equal(images.numpy(), fx.cifar_expected_images(first, count))
        assert labels.tolist() == fx.cifar_labels(first, count, num_classes)
    train_images, train_labels = cifar.load_cifar(name, tmp_path, "train")
    rows = fx.cifar_rows(0, 2)
    # row r = R plane, G plane, B plane of 32x32, each row by row
    assert train_images[1, 0, 0, 0] == rows[1, 0]
    assert train_images[1, 1, 0, 0] == rows[1, 1024]
    assert train_images[1, 2, 5, 7] == rows[1, 2048 + 5 * 32 + 7]
    if name == "cifar100":
        assert int(train_labels.max()) == 99


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_datamodule(tmp_path, monkeypatch, name):
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    per_batch = 4 if name == "cifar10" else 20
    spans = fx.write_cifar(tmp_path, name, per_batch=per_batch, test_count=6)
    n_train = spans["train"][1]
    dm = ImageDataModule(DataConfig(name=name, root=str(tmp_path), val_size=5, eval_batch_size=4), batch_size=4)
    assert dm.root == tmp_path and dm.input_shape == (3, 32, 32)
    assert dm.num_classes == (10 if name == "cifar10" else 100)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (n_train - 5, 5, 6)

    train_ids = _decode_index(dm.train_set.images, n_train)
    val_ids = _decode_index(dm.val_set.images, n_train)
    assert set(train_ids).isdisjoint(val_ids) and sorted(train_ids + val_ids) == list(range(n_train))
    assert val_ids == train_val_indices(n_train, 5, 0)[1].tolist()
    num_classes = dm.num_classes
    assert dm.train_set.labels.tolist() == [fx.cifar_labels(i, 1, num_classes)[0] for i in train_ids]
    assert np.array_equal(dm.val_set.images.numpy(), fx.cifar_expected_images(0, n_train)[val_ids])

    train_batches = list(dm.train_dataloader())
    assert len(train_batches) == (n_train - 5) // 4  # drop_last
    for images, labels in train_batches:
        assert images.dtype == torch.uint8 and tuple(images.shape) == (4, 3, 32, 32) and labels.shape == (4,)
        ids = _decode_index(images, n_train)
        assert labels.tolist() == [fx.cifar_labels(i, 1, num_classes)[0] for i in ids]

    test_batches = list(dm.test_dataloader())
    assert [len(b[1]) for b in test_batches] == [4, 2]
    images, labels = test_batches[0]
    out, _ = dm.on_after_batch_transfer((images, labels), 0)
    info = get_dataset_info(name)
    mean = torch.tensor(info.mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float64).view(1, 3, 1, 1)
    expected = (torch.from_numpy(fx.cifar_expected_images(n_train, 4)).double() / 255 - mean) / std
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)


def test_cifar_missing_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    fx.write_cifar_batch(folder / "data_batch_1", 0, 4, "cifar10")
    fx.write_cifar_batch(folder / "test_batch", 4, 3, "cifar10")
    with pytest.raises(DataMissingError) as info:
        cifar.load_cifar("cifar10", tmp_path, "train")
    msg = str(info.value)
    for i in range(2, 6):
        assert str(folder / f"data_batch_{i}") in msg
    assert str(folder / "data_batch_1") not in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg and str(tmp_path) in msg
    assert "--data.download true" in msg
    assert len(cifar.load_cifar("cifar10", tmp_path, "test")[1]) == 3  # the test split is complete

    with pytest.raises(DataMissingError) as info:
        cifar.load_cifar("cifar100", tmp_path, "test")
    msg = str(info.value)
    assert str(tmp_path / "cifar-100-python" / "test") in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in msg


def test_cifar_missing_download_fails(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    calls = []

    def fail(url, download_root, **kwargs):
        calls.append(url)
        raise URLError("network disabled in tests")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", fail)
    with pytest.raises(DataMissingError, match="download into .* failed .*network disabled in tests") as info:
        cifar.load_cifar("cifar10", tmp_path, "train", download=True)
    assert str(tmp_path) in str(info.value)
    assert calls == [cifar.URLS["cifar10"]]


@pytest.mark.parametrize("defect", ["not a pickle", "missing labels", "wrong row length", "label count"])
def test_cifar_malformed_batch(tmp_path, defect):
    fx.write_cifar(tmp_path, "cifar10", per_batch=4, test_count=3)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    if defect == "not a pickle":
        path.write_bytes(b"\x89PNG this is not a pickle at all")
        pattern = "not a readable CIFAR batch"
    else:
        entry = {b"data": fx.cifar_rows(0, 4), b"labels": [0, 1, 2, 3]}
        if defect == "missing labels":
            del entry[b"labels"]
            pattern = "not a readable CIFAR batch"
        elif defect == "wrong row length":
            entry[b"data"] = entry[b"data"][:, :3000]
            pattern = r"data of shape \(4, 3000\) with 4 labels; expected \(N, 3072\)"
        else:
            entry[b"labels"] = [0, 1, 2]
            pattern = r"with 3 labels; expected \(N, 3072\)"
        path.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(DataCorruptError, match=pattern) as info:
        cifar.load_cifar("cifar10", tmp_path, "train")
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name, bad, limit", [("cifar10", 10, 9), ("cifar10", -1, 9), ("cifar100", 100, 99)])
def test_cifar_labels_out_of_range(tmp_path, name, bad, limit):
    fx.write_cifar(tmp_path, name, per_batch=4, test_count=3)
    path = tmp_path / fx.CIFAR_DIRS[name] / ("test_batch" if name == "cifar10" else "test")
    fx.write_cifar_batch(path, 100, 3, name, labels=[0, bad, 1])
    with pytest.raises(DataCorruptError, match=f"labels outside 0..{limit}") as info:
        cifar.load_cifar(name, tmp_path, "test")
    assert str(path) in str(info.value)


# ============================================================================ ImageNet (ImageFolder)

TRAIN_COLOURS = {
    "n01": [(255, 0, 0), (0, 255, 0), (0, 0, 255)],
    "n02": [(10, 20, 30), (200, 100, 50), (128, 128, 128)],
}
VAL_COLOURS = {"n01": [(1, 2, 3), (250, 240, 230)], "n02": [(60, 0, 190)]}  # + a two-tone n02/1.png


def _normalized(colour) -> torch.Tensor:
    c = torch.tensor(colour, dtype=torch.float64) / 255
    return ((c - torch.tensor(IMAGENET_MEAN, dtype=torch.float64)) / torch.tensor(IMAGENET_STD, dtype=torch.float64)).view(3, 1, 1)


@pytest.fixture
def imagenet_root(tmp_path, monkeypatch):
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    base = tmp_path / "imagenet"
    sizes = [(40, 30), (30, 50), (64, 64)]
    for cls, colours in TRAIN_COLOURS.items():
        for i, colour in enumerate(colours):
            fx.write_image(base / "train" / cls / f"{i}.png", fx.solid(colour, *sizes[i]))
    for cls, colours in VAL_COLOURS.items():
        for i, colour in enumerate(colours):
            fx.write_image(base / "val" / cls / f"{i}.png", fx.solid(colour, *sizes[i]))
    fx.write_image(base / "val" / "n02" / "1.png", fx.two_tone((255, 0, 0), (0, 0, 255)))
    return tmp_path


def _max_error(image: torch.Tensor, colour) -> float:
    return (image.double() - _normalized(colour)).abs().max().item()


def _assert_solid(image: torch.Tensor, colour) -> None:
    assert tuple(image.shape) == (3, 224, 224)
    assert _max_error(image, colour) < 1e-5, f"not the solid colour {colour}"


@pytest.mark.parametrize("direct", [False, True], ids=["root", "imagenet-dir"])
def test_imagenet_datamodule(imagenet_root, direct):
    root = imagenet_root / "imagenet" if direct else imagenet_root
    dm = ImageDataModule(DataConfig(name="imagenet", root=str(root), val_size=2, eval_batch_size=2), batch_size=2)
    assert dm.input_shape == (3, 224, 224)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (4, 2, 4)

    test_batches = list(dm.test_dataloader())
    assert len(test_batches) == 2
    (a, la), (b, lb) = test_batches
    assert a.dtype == torch.float32 and tuple(a.shape) == (2, 3, 224, 224)
    assert la.tolist() == [0, 0] and lb.tolist() == [1, 1]
    _assert_solid(a[0], VAL_COLOURS["n01"][0])
    _assert_solid(a[1], VAL_COLOURS["n01"][1])
    _assert_solid(b[0], VAL_COLOURS["n02"][0])
    # two-tone: red on the left, blue on the right (no flip in eval, RGB channel order)
    assert _max_error(b[1][:, :, :90], (255, 0, 0)) < 1e-5
    assert _max_error(b[1][:, :, -90:], (0, 0, 255)) < 1e-5
    out, out_labels = dm.on_after_batch_transfer((a, la), 0)  # float batches pass through untouched
    assert out is a and out_labels is la

    # validation images are held out of train/ but seen through the deterministic eval transforms
    eval_ops = [type(t).__name__ for t in dm.val_set.dataset.transform.transforms]
    assert eval_ops == ["Resize", "CenterCrop", "ToTensor", "Normalize"]
    train_dir = imagenet_root / "imagenet" / "train"
    assert Path(dm.val_set.dataset.root) == Path(dm.train_set.dataset.root) == train_dir

    all_train = [(cls, i) for cls in TRAIN_COLOURS for i in range(3)]
    train_idx, val_idx = train_val_indices(6, 2, 0)
    (va, vla), = list(dm.val_dataloader())
    for image, label, k in zip(va, vla, val_idx.tolist()):
        cls, i = all_train[k]
        assert label == (0 if cls == "n01" else 1)
        _assert_solid(image, TRAIN_COLOURS[cls][i])

    train_colours = {TRAIN_COLOURS[all_train[k][0]][all_train[k][1]]: all_train[k][0] for k in train_idx.tolist()}
    seen = []
    for images, labels in dm.train_dataloader():
        assert images.dtype == torch.float32 and tuple(images.shape) == (2, 3, 224, 224)
        for image, label in zip(images, labels):
            colour = min(train_colours, key=lambda c: _max_error(image[:, 112:113, 112:113], c))
            assert label == (0 if train_colours[colour] == "n01" else 1)
            _assert_solid(image, colour)  # random resized crop + flip of a solid image: still solid
            seen.append(colour)
    assert sorted(seen) == sorted(train_colours)


def test_imagenet_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    dm = ImageDataModule(DataConfig(name="imagenet", root=str(tmp_path), val_size=2), batch_size=2)
    with pytest.raises(DataMissingError) as info:
        dm.setup("fit")
    msg = str(info.value)
    assert f"in {tmp_path / 'imagenet'} and {tmp_path}" in msg and "ImageFolder layout" in msg

    fx.write_image(tmp_path / "imagenet" / "train" / "a" / "0.png", fx.solid((1, 2, 3), 8, 8))  # no val/
    with pytest.raises(DataMissingError, match="looked for train/ and val/"):
        ImageDataModule(DataConfig(name="imagenet", root=str(tmp_path), val_size=1), batch_size=2).setup("fit")


def test_imagenet_test_labels_follow_training_classes(tmp_path, monkeypatch):
    """A val/ that lacks a class must not shift the labels of the classes after it."""
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    base = tmp_path / "imagenet"
    for k, cls in enumerate(["a", "b", "c"]):
        for i in range(2):
            fx.write_image(base / "train" / cls / f"{i}.png", fx.solid((k * 80, i, 0), 8, 8))
    for cls in ["a", "c"]:
        fx.write_image(base / "val" / cls / "0.png", fx.solid((0, 0, 0), 8, 8))
    dm = ImageDataModule(DataConfig(name="imagenet", root=str(tmp_path), val_size=1, eval_batch_size=2), batch_size=2)
    try:
        dm.setup("fit")
    except DataError:
        return  # refusing the inconsistent layout is fine too
    train_classes = dm.train_set.dataset.class_to_idx
    _, labels = next(iter(dm.test_dataloader()))
    assert labels.tolist() == [train_classes["a"], train_classes["c"]] == [0, 2]


# ============================================================================ splits


def test_train_val_split_disjoint_covering_and_fixed():
    train, val = train_val_indices(50, 7, seed=3)
    assert len(val) == 7 and len(train) == 43
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(50))

    torch.manual_seed(123)
    state = torch.get_rng_state()
    again = train_val_indices(50, 7, seed=3)
    assert torch.equal(torch.get_rng_state(), state), "the split must not consume the global RNG"
    torch.manual_seed(999)
    third = train_val_indices(50, 7, seed=3)
    for other in (again, third):
        assert torch.equal(other[0], train) and torch.equal(other[1], val)
    assert not torch.equal(train_val_indices(50, 7, seed=4)[1], val)


@pytest.mark.parametrize(
    "n, fraction, size", [(59000, 0.1, 5900), (10000, 0.2, 2000), (10, 0.01, 1), (9, 0.3, 3), (40, 1.0, 40)]
)
def test_subset_indices_sizes(n, fraction, size):
    keep = subset_indices(n, fraction, seed=0)
    assert len(keep) == size
    assert len(set(keep.tolist())) == size and int(keep.min()) >= 0 and int(keep.max()) < n
    assert torch.equal(keep, keep.sort().values)
    torch.manual_seed(5)
    assert torch.equal(subset_indices(n, fraction, seed=0), keep)
    if fraction == 1.0:
        assert torch.equal(keep, torch.arange(n))


def test_subset_seed_changes_subset():
    assert not torch.equal(subset_indices(1000, 0.1, seed=0), subset_indices(1000, 0.1, seed=1))


@pytest.mark.parametrize("val_size", [0, -1, 20, 25])
def test_bad_val_size(val_size):
    with pytest.raises(ValueError, match=rf"val_size={val_size} must be between 1 and 19 \(the training set has 20 images\)"):
        train_val_indices(20, val_size, 0)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"fraction=.* must be in \(0, 1\]"):
        subset_indices(20, fraction, 0)


def test_datamodule_bad_split_config(tmp_path, monkeypatch):
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    fx.write_cifar(tmp_path, "cifar10", per_batch=2, test_count=2)
    with pytest.raises(ValueError, match="val_size=10 must be between 1 and 9"):
        ImageDataModule(DataConfig(name="cifar10", root=str(tmp_path), val_size=10), 2).setup("fit")
    with pytest.raises(ValueError, match="data.augment='bogus'"):
        ImageDataModule(DataConfig(name="cifar10", root=str(tmp_path), augment="bogus"), 2)


# ============================================================================ batch augmentation


def _windows(images: torch.Tensor, p: int) -> torch.Tensor:
    """All (2p+1)^2 crops of the zero-padded batch: (K, N, C, H, W), K in row-major (dy, dx) order."""
    h, w = images.shape[-2:]
    padded = F.pad(images, (p,) * 4)
    return torch.stack([padded[..., dy : dy + h, dx : dx + w] for dy in range(2 * p + 1) for dx in range(2 * p + 1)])


def _crop_flip_candidates(images: torch.Tensor, p: int) -> torch.Tensor:
    windows = _windows(images, p)
    return torch.cat([windows, windows.flip(-1)])


def _matches(out: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(K, N) booleans: sample n of ``out`` equals candidate k of sample n."""
    return (candidates == out.unsqueeze(0)).flatten(2).all(-1)


def _images(n: int, c: int, h: int, w: int) -> torch.Tensor:
    return torch.randint(1, 256, (n, c, h, w), dtype=torch.uint8)  # no zeros: padding is recognizable


def test_normalization_exact_without_augmentation():
    images = _images(16, 3, 5, 6)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    transform = BatchTransform(mean, std, "none")
    m = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    expected = (images.double() / 255 - m) / s
    for train in (False, True):
        out = transform(images, train=train)
        assert out.dtype == torch.float32 and out.shape == images.shape
        torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)
    assert images.dtype == torch.uint8  # input untouched
    floats = torch.rand(2, 3, 4, 4)
    assert transform(floats, train=True) is floats
    with pytest.raises(ValueError, match="augment='rotate'"):
        BatchTransform(mean, std, "rotate")


def test_random_crop_is_a_window_of_the_padded_input():
    p = 2
    images = _images(300, 2, 6, 5)
    out = random_crop(images, p)
    assert out.shape == images.shape and out.dtype == torch.uint8
    matches = _matches(out, _windows(images, p))
    assert bool(matches.any(0).all()), "every output is a window of the zero-padded input"
    offsets = matches.float().argmax(0)
    assert set(offsets.tolist()) == set(range((2 * p + 1) ** 2)), "all offsets occur, chosen per sample"
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(random_crop(images, p, generator=g1), random_crop(images, p, generator=g2))


def test_random_flip_mirror_or_identity():
    images = _images(200, 3, 4, 7)
    out = random_flip(images)
    same = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all())
    assert 50 < int(mirrored.sum()) < 150


def test_batch_transform_crop_flip_train_and_eval():
    p = 3
    images = _images(600, 3, 8, 8)
    mean, std = (0.5, 0.4, 0.3), (0.25, 0.2, 0.15)
    transform = BatchTransform(mean, std, "crop_flip", padding=p)
    plain = BatchTransform(mean, std, "none")
    cands = _crop_flip_candidates(images, p)
    normalized = plain(cands.flatten(0, 1), train=False).view(cands.shape[:2] + images.shape[1:])
    out = transform(images, train=True)
    matches = _matches(out, normalized)
    assert bool(matches.any(0).all())
    chosen = matches.float().argmax(0)
    k = (2 * p + 1) ** 2
    assert bool((chosen >= k).any()) and bool((chosen < k).any()), "both flipped and unflipped crops"
    assert {int(c) % k for c in chosen} == set(range(k)), "the padding of the transform is used"
    assert torch.equal(transform(images, train=False), plain(images, train=False))
    for augment in ("flip", "crop"):
        assert torch.equal(BatchTransform(mean, std, augment, p)(images, train=False), plain(images, train=False))


def test_tensor_dataset_and_passthrough_loader():
    n = 10
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    labels = torch.arange(n) * 10
    ds = TensorImageDataset(images, labels)
    batch_images, batch_labels = ds.__getitems__([7, 2, 2])
    assert torch.equal(batch_images, images[[7, 2, 2]]) and batch_labels.tolist() == [70, 20, 20]
    assert len(ds) == n and ds[3][1] == 30
    with pytest.raises(ValueError, match="expected uint8"):
        TensorImageDataset(images.float(), labels)
    with pytest.raises(ValueError, match="expected uint8"):
        TensorImageDataset(images, labels[:-1])

    train = list(DataLoader(ds, batch_size=4, shuffle=True, drop_last=True, collate_fn=passthrough_collate))
    assert len(train) == 2
    seen = []
    for x, y in train:
        assert x.dtype == torch.uint8 and tuple(x.shape) == (4, 1, 4, 4)
        assert torch.equal(y, x[:, 0, 0, 0].long() * 10)
        seen += y.tolist()
    assert len(set(seen)) == 8
    evaluation = list(DataLoader(ds, batch_size=4, shuffle=False, drop_last=False, collate_fn=passthrough_collate))
    assert [len(y) for _, y in evaluation] == [4, 4, 2]
    assert torch.equal(torch.cat([y for _, y in evaluation]), labels)


# ============================================================================ data root


def test_resolve_data_root(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NORMBENCH_DATA", raising=False)
    fashion, cifar10, imagenet = (get_dataset_info(n) for n in ("fashion_mnist", "cifar10", "imagenet"))

    missing = tmp_path / "typo"
    with pytest.raises(DataMissingError) as info:
        resolve_data_root(str(missing), cifar10)
    assert str(missing) in str(info.value) and "--data.root" in str(info.value)
    assert resolve_data_root("~/data", cifar10) == home / "data"

    assert resolve_data_root(None, fashion) is None
    assert resolve_data_root("", fashion) is None
    for info_ in (cifar10, imagenet):
        assert resolve_data_root(None, info_) == home / ".cache" / "normbench" / "data"

    monkeypatch.setenv("NORMBENCH_DATA", str(missing))
    with pytest.raises(DataMissingError) as info:
        resolve_data_root(None, fashion)
    assert str(missing) in str(info.value) and "$NORMBENCH_DATA" in str(info.value)
    assert resolve_data_root(str(tmp_path), fashion) == tmp_path  # an explicit root wins

    monkeypatch.setenv("NORMBENCH_DATA", str(home / "data"))
    assert resolve_data_root(None, fashion) == home / "data"
    assert resolve_data_root(None, cifar10) == home / "data"

    with pytest.raises(DataMissingError, match="--data.root"):
        ImageDataModule(DataConfig(name="cifar10", root=str(missing)), batch_size=2)
