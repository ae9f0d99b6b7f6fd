"""The NAS data: Fashion-MNIST padded to 32x32, the search's two disjoint halves, CIFAR from its on-disk format."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import data_fixtures as fx
import pytest
import torch

from tasks.data import cifar
from tasks.data.errors import DataMissingError
from tasks.nas.config import NasDataConfig
from tasks.nas.data import ARCH, WEIGHTS, NasDataModule
from tasks.nas.task import NAS
from tasks.runner.parse import parse_config

REPO = Path(__file__).resolve().parents[2]


def _rows(dataset) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) + bytes([int(lab)]) for img, lab in zip(dataset.images, dataset.labels)}


def test_search_halves_are_disjoint_padded_and_held_apart_from_validation() -> None:
    cfg = NasDataConfig(val_size=200, fraction=0.01, test_fraction=0.01)
    search = NasDataModule(cfg, 8, "search", train_portion=0.5)
    search.setup()
    weights, arch = search.train_sets[WEIGHTS], search.train_sets[ARCH]
    assert len(weights) == len(arch) == 299 and search.input_shape == (1, 32, 32)  # 1% of 59,800, halved
    assert weights.images.shape[1:] == (1, 32, 32) and weights.images.dtype == torch.uint8
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert weights.images[:, :, border].eq(0).all() and weights.images[:, :, 2:30, 2:30].any()  # 28x28 centred
    assert not _rows(weights) & _rows(arch) and not (_rows(weights) | _rows(arch)) & _rows(search.val_set)
    retrain = NasDataModule(cfg, 8, "retrain", cutout_length=16)
    retrain.setup()
    assert _rows(retrain.train_sets[WEIGHTS]) == _rows(weights) | _rows(arch)  # the retrain trains on both halves
    loader = search.train_dataloader()
    iter(loader)
    assert set(loader.iterables) == {WEIGHTS, ARCH} and len(loader) == 299 // 8  # full batches of each half
    batch = search.prepare_batch(next(iter(loader.iterables[WEIGHTS])), train=True)
    assert batch[0].shape == (8, 1, 32, 32) and batch[0].dtype == torch.float32
    # a search fraction keeps the same split, smaller
    part = NasDataModule(cfg, 8, "search", search_fraction=0.5)
    part.setup()
    assert len(part.train_sets[WEIGHTS]) == 149 and _rows(part.train_sets[WEIGHTS]) <= _rows(weights) | _rows(arch)


def test_retrain_batches_get_cutout_and_evaluation_batches_do_not() -> None:
    module = NasDataModule(NasDataConfig(val_size=100, fraction=0.002, augment="none"), 16, "retrain", cutout_length=16)
    module.setup()
    images = torch.full((16, 1, 32, 32), 200, dtype=torch.uint8)
    labels = torch.zeros(16, dtype=torch.long)
    train = module.prepare_batch((images, labels), train=True)[0]
    evaluation = module.prepare_batch((images, labels), train=False)[0]
    assert ((train == 0).view(16, -1).sum(1) >= 64).all() and not (evaluation == 0).any()


def test_cifar10_is_read_from_its_python_pickles_and_missing_data_is_named(tmp_path: Path) -> None:
    cifar.load_cifar.cache_clear()
    spans = fx.write_cifar(tmp_path, "cifar10", per_batch=20, test_count=10)
    try:
        cfg = parse_config(NAS, ["--config", str(REPO / "configs/nas/paper_cifar10.yaml"), "--data.root", str(tmp_path),
                                 "--data.val_size", "20"], raise_errors=True)
        NAS.locate_data(cfg)
        module = NasDataModule(dataclasses.replace(cfg.data, num_workers=0), 4, "search")
        module.setup()
        assert module.input_shape == (3, 32, 32) and len(module.train_sets[WEIGHTS]) == 40 == len(module.train_sets[ARCH])
        assert len(module.test_set) == spans["test"][1]
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(DataMissingError, match="cifar-10-batches-py"):
            NAS.locate_data(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(empty))))
    finally:
        cifar.load_cifar.cache_clear()
